"""BackpropClassifier: targets, fitted attributes, warnings, and use in scikit-learn."""

import io
import warnings
from contextlib import redirect_stdout

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_digits, load_iris, make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from sklearn_bp import BackpropClassifier, _kernel, _targets, _threads, backprop
from sklearn_bp._loss import NetworkLoss
from sklearn_bp.backprop import cost_and_gradient, pack
from test_loss import fit_data


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _quiet_fit(model, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(*args, **kwargs)


def test_fitted_attributes_multiclass(digits):
    X, y = digits
    model = BackpropClassifier(hidden_layer_sizes=(25, 12), alpha=1.0, max_iter=30,
                               random_state=0)
    _quiet_fit(model, X[:300], y[:300])
    np.testing.assert_array_equal(model.classes_, np.arange(10))
    assert model.n_features_in_ == 64
    assert [W.shape for W in model.coefs_] == [(64, 25), (25, 12), (12, 10)]
    assert [b.shape for b in model.intercepts_] == [(25,), (12,), (10,)]
    assert model.n_layers_ == 4 and model.n_outputs_ == 10
    assert model.out_activation_ == "logistic"
    assert 1 <= model.n_iter_ <= 30
    assert len(model.loss_curve_) == model.n_iter_
    # loss_curve_ is the cost after each iteration: it ends at loss_ and never rises.
    assert model.loss_curve_[-1] == pytest.approx(model.loss_, rel=1e-12)
    assert np.all(np.diff(model.loss_curve_) <= 1e-12)
    # loss_ is the objective (C1) at the fitted weights.
    Y = (y[:300, None] == model.classes_).astype(float)
    cost, _ = cost_and_gradient(pack(model.coefs_, model.intercepts_), X[:300], Y,
                                (64, 25, 12, 10), alpha=1.0)
    assert cost == pytest.approx(model.loss_, rel=1e-12)


@pytest.mark.parametrize("output_activation", ["logistic", "softmax"])
def test_binary(output_activation):
    X, y = make_classification(200, 6, random_state=0)
    labels = np.array(["no", "yes"])[y]
    model = BackpropClassifier(hidden_layer_sizes=(8,), output_activation=output_activation,
                               random_state=0).fit(X, labels)
    proba = model.predict_proba(X)
    assert proba.shape == (200, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-14)
    # Ours is computed from the logits; log(proba) loses the digits of 1 - tiny.
    np.testing.assert_allclose(model.predict_log_proba(X), np.log(proba), rtol=1e-10,
                               atol=1e-15)
    decision = model.decision_function(X)
    assert decision.shape == (200,)
    np.testing.assert_array_equal(model.predict(X), labels[0:0].tolist() or
                                  np.where(decision > 0, "yes", "no"))
    assert model.predict(X).dtype.kind == labels.dtype.kind
    assert model.n_outputs_ == (1 if output_activation == "logistic" else 2)
    assert roc_auc_score(labels == "yes", proba[:, 1]) > 0.95
    assert model.score(X, labels) > 0.9


def test_multiclass_logistic_outputs_are_normalised():
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    model = BackpropClassifier(hidden_layer_sizes=(10,), random_state=0).fit(X, y)
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-14)
    # Normalised sigmoids: proba_k = sigma(z_k) / sum_j sigma(z_j).
    s = 1 / (1 + np.exp(-model.decision_function(X)))
    np.testing.assert_allclose(proba, s / s.sum(axis=1, keepdims=True), rtol=1e-12)
    # Ours is computed from the logits; log(proba) loses the digits of 1 - tiny.
    np.testing.assert_allclose(model.predict_log_proba(X), np.log(proba), rtol=1e-10,
                               atol=1e-15)
    np.testing.assert_array_equal(model.predict(X), np.argmax(proba, axis=1))
    assert model.score(X, y) > 0.95


def test_multiclass_logistic_proba_where_every_sigmoid_underflows(monkeypatch):
    X, y = load_iris(return_X_y=True)
    model = _quiet_fit(BackpropClassifier(hidden_layer_sizes=(3,), max_iter=5,
                                          random_state=0), X, y)
    Z = np.array([[-1000.0, -1001.0, -1002.0], [40.0, 0.0, -800.0]])
    # these logits for the two rows, as the forward pass's one block gives them
    monkeypatch.setattr(_kernel, "forward_block",
                        lambda coefs, intercepts, X, out, *args: np.copyto(out, Z))
    proba = model.predict_proba(X[:2])
    # sigma(z) is e^z to double precision below z = -37; the first row's sigmoids all
    # underflow to 0, but their ratios do not.
    first = np.exp([0.0, -1.0, -2.0]) / np.exp([0.0, -1.0, -2.0]).sum()
    second = np.array([1.0, 0.5, 0.0]) / 1.5  # sigma(40) = 1 - 4e-18 and e^-800 = 0
    np.testing.assert_allclose(proba, [first, second], rtol=1e-15, atol=0)
    np.testing.assert_allclose(np.log(proba[0]), model.predict_log_proba(X[:2])[0],
                               rtol=1e-13)


@pytest.mark.parametrize("y", [
    np.array([3, 1, 2, 1, 3]), np.array([0, 1, 1, 0]), np.array([-1.0, 2.0, -1.0]),
    np.array(["b", "a", "c", "a"]), np.array(["spam", "ham"], dtype=object),
    np.array([[1, 0, 1], [0, 0, 1]]),
])
def test_targets_are_encoded_as_label_binarizer_does(y):
    """The targets the loss object fits (one small integer a row, or a bool matrix for
    multilabel y) are those of the indicator matrix Y of F3's targets, and classes_ too:
    LabelBinarizer, the oracle."""
    from sklearn.preprocessing import LabelBinarizer

    _, classes, targets, n_outputs = BackpropClassifier()._targets(y)
    binarizer = LabelBinarizer().fit(y)
    np.testing.assert_array_equal(classes, binarizer.classes_)
    expected = binarizer.transform(y)
    assert n_outputs == expected.shape[1]
    np.testing.assert_array_equal(_targets.indicator(targets, n_outputs), expected)
    # compact: one signed byte a row for single labels, a bool a label for multilabel
    assert targets.dtype == (bool if y.ndim == 2 else np.int8)
    assert targets.shape == (y.shape if y.ndim == 2 else (y.shape[0],))


_MULTILABEL = np.array([[1, 0, 1], [0, 0, 1], [1, 1, 0], [0, 1, 1], [0, 0, 0], [1, 0, 0]])


@pytest.mark.parametrize("y, output_activation", [
    *((y, out) for y in (np.array([3, 1, 2, 1, 3, 2]),
                         np.array(["no", "yes", "yes", "no", "no", "no"]))
      for out in ("logistic", "softmax")),
    (_MULTILABEL, "logistic"),  # softmax outputs refuse multilabel targets
])
def test_a_block_of_labels_is_encoded_against_all_classes(y, output_activation):
    """The dask estimator encodes each block of y against the classes of all of y: the
    same rows as encoding y at once, even for a block that lacks some classes."""
    from sklearn.preprocessing import LabelBinarizer
    from sklearn.utils.multiclass import type_of_target

    from sklearn_bp._targets import indicator_matrix

    y_type = type_of_target(y)
    binarizer = LabelBinarizer().fit(y)
    expected = binarizer.transform(y)
    if y_type == "binary" and output_activation == "softmax":
        expected = np.hstack([1 - expected, expected])
    classes, Y = indicator_matrix(y, y_type, output_activation)
    np.testing.assert_array_equal(classes, binarizer.classes_)
    np.testing.assert_array_equal(Y, expected)
    assert Y.dtype == np.float64
    for block in (slice(0, 2), slice(2, 6), slice(4, 5)):
        block_classes, Y_block = indicator_matrix(y[block], y_type, output_activation,
                                                   classes)
        assert block_classes is classes
        np.testing.assert_array_equal(Y_block, expected[block])


def test_multilabel():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(150, 5))
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] + X[:, 2] > 0, X[:, 3] < 0.5]).astype(int)
    model = BackpropClassifier(hidden_layer_sizes=(20,), random_state=0).fit(X, Y)
    proba = model.predict_proba(X)
    assert proba.shape == (150, 3)
    assert not np.allclose(proba.sum(axis=1), 1.0)  # independent labels
    np.testing.assert_array_equal(model.predict(X), (proba > 0.5).astype(int))
    assert model.score(X, Y) > 0.9
    with pytest.raises(ValueError, match="multilabel"):
        BackpropClassifier(output_activation="softmax").fit(X, Y)


def test_initial_weights_depend_only_on_shapes_and_seed():
    """Glorot-uniform drawn exactly as MLPClassifier draws it, independent of the data."""
    rng = np.random.RandomState(3)
    X1, X2 = rng.normal(size=(30, 4)), 100 * rng.uniform(size=(30, 4))
    y = np.arange(30) % 3
    kwargs = dict(hidden_layer_sizes=(6,), max_iter=1, random_state=7)
    ours = [_quiet_fit(BackpropClassifier(**kwargs), X, y) for X in (X1, X2)]
    theirs = _quiet_fit(MLPClassifier(solver="lbfgs", activation="logistic", **kwargs), X1, y)
    # After one iteration the weights differ, so compare the initial draws instead.
    from sklearn_bp._base import glorot_init

    theta0 = glorot_init((4, 6, 3), "logistic", np.float64, np.random.RandomState(7))
    mlp_rng = np.random.RandomState(7)
    expected = []
    for fan_in, fan_out in [(4, 6), (6, 3)]:
        bound = np.sqrt(2 / (fan_in + fan_out))
        expected.append((mlp_rng.uniform(-bound, bound, (fan_in, fan_out)),
                         mlp_rng.uniform(-bound, bound, fan_out)))
    np.testing.assert_array_equal(
        theta0, pack([w for w, _ in expected], [b for _, b in expected]))
    assert all(W.shape == V.shape for W, V in zip(ours[0].coefs_, theirs.coefs_))


@pytest.mark.parametrize("hidden_layer_sizes", [(5,), ()])
@pytest.mark.parametrize("dataset", ["iris", "breast_cancer"])
def test_identity_units_and_no_hidden_layer_fit_as_mlpclassifier(dataset,
                                                                  hidden_layer_sizes):
    """activation="identity" and hidden_layer_sizes=() as MLPClassifier has them: the
    same initial weights (Glorot factor 6 for identity units), the same objective, so
    on these small problems the same L-BFGS-B path (both at one BLAS thread). For 20
    iterations: two linear layers leave directions the cost hardly sees, along which
    the last bits of the two evaluations grow (after 50 iterations on iris, 3e-7 apart
    for some initial weights; after 20, below 1e-12 for each of 20)."""
    from sklearn.datasets import load_breast_cancer

    X, y = {"iris": load_iris, "breast_cancer": load_breast_cancer}[dataset](
        return_X_y=True)
    X = StandardScaler().fit_transform(X)
    kwargs = dict(hidden_layer_sizes=hidden_layer_sizes, activation="identity",
                  alpha=1.0, max_iter=20, random_state=0)
    output_activation = "softmax" if dataset == "iris" else "logistic"
    with threadpool_limits(limits=1, user_api="blas"):
        ours = _quiet_fit(BackpropClassifier(output_activation=output_activation,
                                             **kwargs), X, y)
        mlp = _quiet_fit(MLPClassifier(solver="lbfgs", **kwargs), X, y)
    assert ours.n_iter_ == mlp.n_iter_ and len(ours.coefs_) == len(hidden_layer_sizes) + 1
    assert ours.loss_ == pytest.approx(mlp.loss_, rel=1e-10)
    for a, b in zip(ours.coefs_ + ours.intercepts_, mlp.coefs_ + mlp.intercepts_):
        np.testing.assert_allclose(a, b, atol=1e-9)
    np.testing.assert_allclose(ours.predict_proba(X), mlp.predict_proba(X), atol=1e-9)


@pytest.mark.parametrize("dataset", ["iris", "breast_cancer"])
def test_no_hidden_layer_is_logistic_regression(dataset):
    """hidden_layer_sizes=() fits LogisticRegression(C=1/alpha): our cost, the mean
    cross-entropy plus alpha/(2n) ||W||^2, is LogisticRegression's C sum + ||w||^2 / 2
    divided by C n, the intercepts unpenalised in both. Softmax output against the
    multinomial model (iris), one logistic unit against the binary one (breast cancer).

    LogisticRegression's weights, solved tight, are a stationary point of our objective
    (largest gradient component below 1e-7). BFGS stops on the gradient alone and
    reaches one below tol=1e-8 (no ConvergenceWarning), so the costs agree to 1e-11 and
    the weights to 1e-4, LogisticRegression's own accuracy (measured over 30 initial
    weights: 5e-6 at most). L-BFGS-B, the default, also stops on scipy's ftol, which
    left the weights up to 1.6e-3 apart for some initial weights."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import LabelBinarizer

    X, y = {"iris": load_iris, "breast_cancer": load_breast_cancer}[dataset](
        return_X_y=True)
    X = StandardScaler().fit_transform(X)
    output_activation = "softmax" if dataset == "iris" else "logistic"
    alpha = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # the gradient reached tol
        ours = BackpropClassifier(hidden_layer_sizes=(), solver="bfgs", tol=1e-8,
                                  max_iter=1000, output_activation=output_activation,
                                  alpha=alpha, random_state=0).fit(X, y)
    lr = LogisticRegression(C=1 / alpha, tol=1e-12, max_iter=10_000).fit(X, y)
    assert ours.n_layers_ == 2 and ours.coefs_[0].shape == lr.coef_.T.shape

    Y = LabelBinarizer().fit_transform(y).astype(float)
    layer_sizes = (X.shape[1], Y.shape[1])

    def cost_and_grad(coefs, intercepts):
        return cost_and_gradient(pack(coefs, intercepts), X, Y, layer_sizes, alpha=alpha,
                                 output_activation=output_activation)

    theirs_cost, theirs_grad = cost_and_grad([lr.coef_.T], [lr.intercept_])
    ours_cost, ours_grad = cost_and_grad(ours.coefs_, ours.intercepts_)
    assert np.abs(theirs_grad).max() < 1e-7
    assert np.abs(ours_grad).max() < 1e-8
    assert abs(ours_cost - theirs_cost) < 1e-11
    np.testing.assert_allclose(ours.coefs_[0], lr.coef_.T, atol=1e-4)
    # A softmax's intercepts are defined up to a common shift: compare them centred.
    centred = [b - b.mean() if output_activation == "softmax" else b
               for b in (ours.intercepts_[0], lr.intercept_)]
    np.testing.assert_allclose(*centred, atol=1e-4)
    np.testing.assert_allclose(ours.predict_proba(X), lr.predict_proba(X), atol=1e-5)


def test_convergence_warnings_name_the_limit(digits):
    X, y = digits
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        model = BackpropClassifier(hidden_layer_sizes=(10,), max_iter=3).fit(X, y)
    assert model.n_iter_ == 3
    with pytest.warns(ConvergenceWarning, match="max_fun"):
        model = BackpropClassifier(hidden_layer_sizes=(10,), max_fun=5).fit(X, y)
    assert model.n_iter_ <= 5


@pytest.mark.parametrize("solver", ["lbfgs", "cg", "bfgs", "tnc"])
def test_convergence_warnings_read_as_sentences(solver):
    """scipy's messages end with a period of their own: the warning adds none."""
    X, y = load_iris(return_X_y=True)
    with pytest.warns(ConvergenceWarning) as caught:
        BackpropClassifier(hidden_layer_sizes=(3,), solver=solver, max_iter=2,
                           random_state=0).fit(X, y)
    for warning in caught:
        message = str(warning.message)
        assert ".." not in message and message.endswith(" to reach convergence.")


def test_non_finite_objective_raises_a_clear_error():
    """An unbounded relu network on data near float64's maximum overflows to inf - inf."""
    rng = np.random.RandomState(0)
    X = np.finfo(np.float64).max * rng.uniform(size=(10, 2))
    y = np.arange(10) % 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(ValueError, match="non-finite.*StandardScaler"):
            BackpropClassifier(hidden_layer_sizes=(3, 3), activation="relu",
                               random_state=0).fit(X, y)
    # The logistic network saturates instead and fits finite weights.
    model = BackpropClassifier(hidden_layer_sizes=(3,), random_state=0).fit(X, y)
    assert all(np.all(np.isfinite(W)) for W in model.coefs_)


def test_verbose_prints_one_line_per_iteration():
    X, y = load_iris(return_X_y=True)
    out = io.StringIO()
    with redirect_stdout(out):
        model = _quiet_fit(BackpropClassifier(hidden_layer_sizes=(5,), max_iter=7,
                                              verbose=1, random_state=0), X, y)
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == model.n_iter_ == 7
    assert lines[0].startswith("Iteration 1, loss = ")
    assert "max |gradient| = " in lines[0] and "nan" not in lines[-1]
    assert float(lines[-1].split("loss = ")[1].split(",")[0]) == pytest.approx(
        model.loss_, rel=1e-7)


@pytest.mark.parametrize("solver", ["lbfgs", "cg", "bfgs"])
def test_verbose_prints_what_tol_is_compared_with(solver):
    """The line's gradient is its largest absolute component at the iterate, the
    quantity the solver compares with tol (L-BFGS-B: of the projected gradient, the
    gradient itself without bounds): a fit that converges on it ends on a line below
    tol."""
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    out = io.StringIO()
    with redirect_stdout(out):
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            model = BackpropClassifier(hidden_layer_sizes=(3,), alpha=1.0, tol=1e-4,
                                       solver=solver, verbose=1, random_state=0).fit(X, y)
    last = out.getvalue().strip().splitlines()[-1]
    printed = float(last.split("max |gradient| = ")[1])
    Y = (y[:, None] == model.classes_).astype(float)
    _, grad = cost_and_gradient(pack(model.coefs_, model.intercepts_), X, Y,
                                model._layer_sizes(), alpha=1.0)
    assert printed == pytest.approx(np.abs(grad).max(), rel=1e-3)
    assert printed <= model.tol < np.linalg.norm(grad)  # not the 2-norm


def test_sparse_and_dense_fits_agree():
    X, y = make_classification(120, 10, random_state=1)
    X[np.abs(X) < 0.8] = 0.0
    kwargs = dict(hidden_layer_sizes=(6,), random_state=0, max_iter=50)
    dense = _quiet_fit(BackpropClassifier(**kwargs), X, y)
    for fmt in (sp.csr_matrix, sp.csc_matrix):
        sparse = _quiet_fit(BackpropClassifier(**kwargs), fmt(X), y)
        np.testing.assert_array_equal(sparse.predict(fmt(X)), dense.predict(X))
        # 50 iterations carry the products' rounding along: 1.6e-6 apart measured with
        # numpy 1.23's BLAS, 1e-9 with numpy 2.4's
        np.testing.assert_allclose(sparse.predict_proba(X), dense.predict_proba(X),
                                   atol=1e-5)


def test_float32_is_fitted_in_float32(digits):
    X, y = digits
    model = _quiet_fit(BackpropClassifier(hidden_layer_sizes=(10,), max_iter=20,
                                          random_state=0), X.astype(np.float32), y)
    assert all(W.dtype == np.float32 for W in model.coefs_ + model.intercepts_)
    reference = _quiet_fit(BackpropClassifier(hidden_layer_sizes=(10,), max_iter=20,
                                              random_state=0), X, y)
    assert np.mean(model.predict(X) == reference.predict(X)) > 0.97


def test_relu_log_proba_stays_finite_where_proba_underflows():
    X, y = make_classification(100, 4, random_state=0)
    model = BackpropClassifier(hidden_layer_sizes=(5,), activation="relu",
                               random_state=0).fit(X, y)
    X_far = 1e5 * X[:5]
    log_proba = model.predict_log_proba(X_far)
    assert np.all(np.isfinite(log_proba))
    with np.errstate(divide="ignore"):
        naive = np.log(model.predict_proba(X_far))
    assert np.isinf(naive).any()  # what log(predict_proba) would give
    finite = np.isfinite(naive)
    np.testing.assert_allclose(log_proba[finite], naive[finite], rtol=1e-10)


def test_pipeline_grid_search_and_joblib(tmp_path, digits):
    X, y = load_digits(return_X_y=True)
    pipe = Pipeline([("scale", StandardScaler()),
                     ("net", BackpropClassifier(max_iter=40, random_state=0))])
    search = GridSearchCV(pipe, {"net__alpha": [1e-2, 1.0],
                                 "net__hidden_layer_sizes": [(10,), (20,)]}, cv=3)
    _quiet_fit(search, X[:600], y[:600])
    assert search.best_score_ > 0.85
    assert set(search.cv_results_["param_net__alpha"]) == {1e-2, 1.0}
    path = tmp_path / "model.joblib"
    joblib.dump(search.best_estimator_, path)
    loaded = joblib.load(path)
    np.testing.assert_array_equal(loaded.predict_proba(X[600:]),
                                  search.best_estimator_.predict_proba(X[600:]))


def test_digits_cross_validated_accuracy():
    """The issue's yardstick: 5-fold CV on standardised digits, hidden (25,), alpha=1."""
    X, y = load_digits(return_X_y=True)
    model = make_pipeline(StandardScaler(), BackpropClassifier(
        hidden_layer_sizes=(25,), alpha=1.0, random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        scores = cross_val_score(model, X, y, cv=5)
    assert scores.mean() >= 0.93


# ----------------------------------------------------------------------------------------
# What the speed-ups of the fit and the predictions must not change
# ----------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_the_layout_of_x_does_not_change_a_fit_in_one_block():
    """Data that fit in one row block are evaluated from a column-major copy (faster
    products): a C- or F-ordered X gives the very same fit."""
    X, y = fit_data()
    X = X[:1500]
    assert _kernel.block_rows((30, 20, 3), len(X)) == len(X)
    fits = [BackpropClassifier(hidden_layer_sizes=(20,), max_iter=15, random_state=0).fit(
        data, y[:1500]) for data in (np.ascontiguousarray(X), np.asfortranarray(X))]
    for a, b in zip(fits[0].coefs_ + fits[0].intercepts_,
                    fits[1].coefs_ + fits[1].intercepts_):
        np.testing.assert_array_equal(a, b)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_repeated_fits_are_bit_identical():
    X, y = fit_data()
    kwargs = dict(hidden_layer_sizes=(30,), max_iter=8, random_state=0)
    first = BackpropClassifier(**kwargs).fit(X, y)
    second = BackpropClassifier(**kwargs).fit(X, y)
    for a, b in zip(first.coefs_ + first.intercepts_, second.coefs_ + second.intercepts_):
        np.testing.assert_array_equal(a, b)
    # One thread or all: the same fit up to rounding.
    with threadpool_limits(limits=1, user_api="blas"):
        single = BackpropClassifier(**kwargs).fit(X, y)
    np.testing.assert_allclose(single.loss_, first.loss_, rtol=1e-9)


def test_float32_is_fitted_and_kept_in_float32():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 6)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    model = BackpropClassifier(hidden_layer_sizes=(5,), max_iter=30, random_state=0)
    model.fit(X, y)
    assert all(W.dtype == np.float32 for W in model.coefs_)
    assert all(b.dtype == np.float32 for b in model.intercepts_)


def _record_forward_threads(monkeypatch):
    """A list that gets ``(n_threads, BLAS at one thread)`` for every forward pass of
    the loss object from now on, as it starts computing."""
    calls = []
    run = NetworkLoss._forward

    def recorded(self, coefs, intercepts, X, out, rows, n_threads, output=None):
        calls.append((n_threads, _threads.blas_single_threaded()))
        return run(self, coefs, intercepts, X, out, rows, n_threads, output)

    monkeypatch.setattr(NetworkLoss, "_forward", recorded)
    return calls


def test_predictions_take_threads_by_the_forward_flops(monkeypatch):
    """Prediction takes threads of its own (BLAS at one meanwhile) when its forward
    pass is worth it, within the BLAS budget, and predicts the same bits."""
    X, y = fit_data()
    wide = np.repeat(X, 4, axis=0)  # 80 000 rows: 1.6e8 forward flops
    model = BackpropClassifier(hidden_layer_sizes=(30,), max_iter=5,
                               random_state=0).fit(X[:2000], y[:2000])
    calls = _record_forward_threads(monkeypatch)
    with threadpool_limits(limits=1, user_api="blas"):
        one = model.predict_proba(wide)
    default = model.predict_proba(wide)
    np.testing.assert_array_equal(default, one)
    budget = _threads.default_n_threads(wide, (30, 30, 3), gradient=False)
    assert calls == [(1, True), (budget, True)]


def test_early_stopping_scores_with_the_threads_of_predictions(monkeypatch):
    """Early stopping's forward pass over the held-out rows takes threads as predictions
    do, as many as the BLAS budget allows when the fit starts (the fit then holds BLAS
    at one thread), and scores the same with any number."""
    X, y = fit_data()  # 20 000 rows: 5000 held out, three blocks of the forward pass
    calls = _record_forward_threads(monkeypatch)
    fits = {}
    for n_threads in (1, 3):
        monkeypatch.setattr(_threads, "default_n_threads",
                            lambda X, layer_sizes, gradient=True, n=n_threads:
                            n if not gradient else 1)
        calls.clear()
        fits[n_threads] = BackpropClassifier(
            hidden_layer_sizes=(30,), early_stopping=True, validation_fraction=0.25,
            n_iter_no_change=50, max_iter=6, random_state=0).fit(X, y)
        assert calls == [(n_threads, True)] * fits[n_threads].n_iter_
    assert fits[3].validation_scores_ == fits[1].validation_scores_
    np.testing.assert_array_equal(fits[3].coefs_[0], fits[1].coefs_[0])


# ----------------------------------------------------------------------------------------
# Many classes (issue 20): no n x k float array in a fit, predictions block by block
# ----------------------------------------------------------------------------------------


def _many_classes(n=60_000, n_features=10, n_classes=100, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, n_features))
    return X, rng.integers(0, n_classes, n)


def _traced_peak(call):
    """``(peak bytes traced during call(), its result)``."""
    import tracemalloc

    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        result = call()
        return tracemalloc.get_traced_memory()[1] - before, result
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("output_activation", ["softmax", "logistic"])
@pytest.mark.parametrize("early_stopping", [False, True])
def test_a_fit_allocates_no_n_by_k_float_array(output_activation, early_stopping):
    """The fit hands the loss object one small integer per row, and the kernel reads
    them block by block: its traced peak stays under half of one n x k float64 matrix
    (a third of it with early stopping, which copies X's rows and draws a stratified
    split; a tenth without); the indicator matrix and its column-major copy of earlier
    versions took two of them."""
    X, y = _many_classes()
    n_by_k = X.shape[0] * 100 * 8  # 46 MiB
    model = BackpropClassifier(hidden_layer_sizes=(8,), output_activation=output_activation,
                               early_stopping=early_stopping, max_iter=2, random_state=0)
    peak, _ = _traced_peak(lambda: _quiet_fit(model, X, y))
    assert peak < n_by_k / 2


def test_multilabel_and_regression_fits_keep_their_targets_compact():
    """Multilabel targets stay a bool matrix, regression targets the caller's float
    matrix: no float copy of either in the fit."""
    from sklearn_bp import BackpropRegressor

    X, _ = _many_classes(n=30_000)
    rng = np.random.default_rng(1)
    n_by_k = X.shape[0] * 100 * 8
    Y = (rng.random((X.shape[0], 100)) < 0.3).astype(np.int8)
    peak, _ = _traced_peak(lambda: _quiet_fit(BackpropClassifier(
        hidden_layer_sizes=(8,), max_iter=2, random_state=0), X, Y))
    assert peak < n_by_k / 2  # the bool matrix is an eighth of it
    values = rng.standard_normal((X.shape[0], 100))
    peak, _ = _traced_peak(lambda: _quiet_fit(BackpropRegressor(
        hidden_layer_sizes=(8,), max_iter=2, random_state=0), X, values))
    assert peak < n_by_k / 2


@pytest.mark.parametrize("output_activation", ["softmax", "logistic"])
def test_predictions_allocate_their_output_only(output_activation):
    """predict_proba, predict_log_proba and decision_function allocate their output and
    a few blocks' scratch; predict one label a row (no probabilities)."""
    X, y = _many_classes()
    n_by_k = X.shape[0] * 100 * 8
    model = _quiet_fit(BackpropClassifier(hidden_layer_sizes=(8,), max_iter=2,
                                          output_activation=output_activation,
                                          random_state=0), X, y)
    for method in ("predict_proba", "predict_log_proba", "decision_function"):
        peak, result = _traced_peak(lambda: getattr(model, method)(X))
        assert result.shape == (X.shape[0], 100) and result.dtype == np.float64
        assert peak - result.nbytes < n_by_k / 8, method
    peak, result = _traced_peak(lambda: model.predict(X))
    assert peak < n_by_k / 8


@pytest.mark.parametrize("n_classes, output_activation", [
    (2, "logistic"), (2, "softmax"), (3, "logistic"), (10, "softmax"), (50, "softmax"),
    (100, "softmax"), (100, "logistic"), ("multilabel", "logistic")])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_blocked_predictions_are_the_functions_of_the_logits(n_classes, output_activation,
                                                            dtype):
    """Block by block, in any number of threads, the predictions are the public
    functions of the whole logits (backprop.softmax, log_softmax, sigmoid, ...) to the
    bit, and predict is the largest probability's class."""
    X, y = _many_classes(n=3001, n_classes=2 if n_classes == "multilabel" else n_classes)
    if n_classes == "multilabel":
        y = np.column_stack([y, X[:, 0] > 0, X[:, 1] > 0.5]).astype(int)
    X = X.astype(dtype)
    model = _quiet_fit(BackpropClassifier(hidden_layer_sizes=(7,), max_iter=3,
                                          output_activation=output_activation,
                                          random_state=0), X, y)
    loss = NetworkLoss(model._layer_sizes(), activation="logistic", dtype=dtype)
    Z = loss.forward(model.coefs_, model.intercepts_, X).astype(np.float64)
    if model._y_type == "multilabel-indicator":
        expected = backprop.sigmoid(Z), backprop.log_sigmoid(Z)
        labels = (Z > 0).astype(int)
    elif output_activation == "softmax":
        expected = backprop.softmax(Z), backprop.log_softmax(Z)
        labels = model.classes_[np.argmax(Z, axis=1)]
    elif Z.shape[1] == 1:
        z = Z[:, 0]
        expected = (np.column_stack([backprop.sigmoid(-z), backprop.sigmoid(z)]),
                    np.column_stack([backprop.log_sigmoid(-z), backprop.log_sigmoid(z)]))
        labels = model.classes_[(z > 0).astype(int)]
    else:
        expected = (backprop.softmax(backprop.log_sigmoid(Z)),
                    backprop.log_softmax(backprop.log_sigmoid(Z)))
        labels = model.classes_[np.argmax(Z, axis=1)]
    for limit in (1, 2):
        with threadpool_limits(limits=limit, user_api="blas"):
            np.testing.assert_array_equal(model.predict_proba(X), expected[0])
            np.testing.assert_array_equal(model.predict_log_proba(X), expected[1])
            np.testing.assert_array_equal(model.predict(X), labels)
    scores = model.decision_function(X)
    if model._y_type == "binary":
        Z = Z[:, 1] - Z[:, 0] if Z.shape[1] == 2 else Z[:, 0]
    np.testing.assert_array_equal(scores, Z)
