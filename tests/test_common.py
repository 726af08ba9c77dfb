"""scikit-learn's own estimator checks, with no expected failures.

A relu network is not listed: on the checks' unscaled data its logits reach about 1000,
where ``predict_proba`` underflows to 0 and ``check_classifiers_train`` compares our
finite (exact) ``predict_log_proba`` with ``log(0) = -inf``. ``tests/test_classifier.py``
covers relu and that difference directly.
"""

import inspect

from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_bp import BackpropClassifier, BackpropRegressor

# An unexpected pass fails too (xfail_strict exists from scikit-learn 1.8 on; with no
# expected failures listed, older versions run the same checks).
STRICT = (
    {"xfail_strict": True}
    if "xfail_strict" in inspect.signature(parametrize_with_checks).parameters
    else {}
)


@parametrize_with_checks(
    [
        BackpropClassifier(),
        BackpropClassifier(hidden_layer_sizes=(7, 5), activation="tanh",
                           output_activation="softmax"),
    ],
    expected_failed_checks=lambda estimator: {},
    **STRICT,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


# scikit-learn's check_regressor_multioutput fits make_regression's targets, of both signs,
# without honouring the positive_only tag (it does not call _enforce_estimator_tags_y, as
# the other regressor checks do), so a Poisson regressor that supports several outputs
# and refuses negative targets fails it with its own ValueError. The same Poisson fit on
# those targets made positive passes tests/test_regressor.py's multi-output tests.
POISSON_MULTIOUTPUT = {
    "check_regressor_multioutput": (
        "scikit-learn's check draws negative targets for a positive_only regressor; "
        "loss='poisson' rightly refuses them"
    ),
}


@parametrize_with_checks(
    [
        BackpropRegressor(),
        BackpropRegressor(hidden_layer_sizes=(7, 5), activation="tanh"),
        BackpropRegressor(hidden_layer_sizes=(6,), loss="poisson"),
    ],
    expected_failed_checks=lambda estimator: (
        POISSON_MULTIOUTPUT if estimator.loss == "poisson" else {}),
    **STRICT,
)
def test_regressor_sklearn_compatible(estimator, check):
    check(estimator)
