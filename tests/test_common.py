"""scikit-learn's own estimator checks, with no expected failures.

A relu network is not listed: on the checks' unscaled data its logits reach about 1000,
where ``predict_proba`` underflows to 0 and ``check_classifiers_train`` compares our
finite (exact) ``predict_log_proba`` with ``log(0) = -inf``. ``tests/test_classifier.py``
covers relu and that difference directly.
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_bp import BackpropClassifier


@parametrize_with_checks(
    [
        BackpropClassifier(),
        BackpropClassifier(hidden_layer_sizes=(7, 5), activation="tanh",
                           output_activation="softmax"),
    ],
    expected_failed_checks=lambda estimator: {},
    xfail_strict=True,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
