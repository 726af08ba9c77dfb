"""BackpropRegressor: targets, fitted attributes, MLPRegressor parity, use in scikit-learn."""

import pickle
import warnings

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from _mlp_oracle import MLP_HAS_POISSON
from sklearn_bp import BackpropRegressor
from sklearn_bp.backprop import cost_and_gradient, pack


def _quiet_fit(model, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(*args, **kwargs)


@pytest.fixture(scope="module")
def diabetes():
    """Standardised X and y, as the issue's comparison asks."""
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X), (y - y.mean()) / y.std()


def _counts(n_samples=300, n_outputs=1, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n_samples, 5))
    rates = np.exp(0.6 * X[:, :n_outputs] - 0.3 * X[:, n_outputs:n_outputs + 1] + 0.5)
    y = rng.poisson(rates).astype(float)
    return X, (y[:, 0] if n_outputs == 1 else y)


@pytest.mark.parametrize("loss, out", [("squared_error", "identity"), ("poisson", "exp")])
@pytest.mark.parametrize("n_outputs", [1, 3])
def test_fitted_attributes_and_loss(loss, out, n_outputs):
    X, y = _counts(n_outputs=n_outputs)
    model = _quiet_fit(BackpropRegressor(hidden_layer_sizes=(6, 4), loss=loss, alpha=0.5,
                                         max_iter=40, random_state=0), X, y)
    assert model.out_activation_ == out
    assert model.n_outputs_ == n_outputs and model.n_layers_ == 4
    assert [W.shape for W in model.coefs_] == [(5, 6), (6, 4), (4, n_outputs)]
    assert 1 <= model.n_iter_ <= 40 and len(model.loss_curve_) == model.n_iter_
    assert model.validation_scores_ is None and model.best_validation_score_ is None
    # loss_ is the objective (C1) with (C4) or (C5) at the fitted weights.
    cost, _ = cost_and_gradient(pack(model.coefs_, model.intercepts_), X,
                                y.reshape(len(y), -1), (5, 6, 4, n_outputs), alpha=0.5,
                                output_activation=out)
    assert cost == pytest.approx(model.loss_, rel=1e-12)
    prediction = model.predict(X)
    assert prediction.shape == y.shape and prediction.dtype == np.float64
    if loss == "poisson":
        assert np.all(prediction > 0)
    assert model.score(X, y) > 0.3


def test_a_column_y_warns_and_predicts_a_column():
    X, y = _counts()
    with pytest.warns(Warning, match="column-vector y"):
        model = _quiet_fit(BackpropRegressor(hidden_layer_sizes=(3,), max_iter=5,
                                             random_state=0), X, y[:, None])
    assert model.predict(X).shape == (len(y),)


def test_the_fit_is_mlpregressors_for_one_output(diabetes):
    """For one output the objective is MLPRegressor's and so are the initial weights and
    the optimiser: the same fit, up to the rounding of the evaluations."""
    X, y = diabetes
    kwargs = dict(hidden_layer_sizes=(8,), activation="logistic", alpha=0.1, max_iter=60,
                  random_state=0)
    ours = _quiet_fit(BackpropRegressor(**kwargs), X, y)
    theirs = _quiet_fit(MLPRegressor(solver="lbfgs", **kwargs), X, y)
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-8)
    # 60 iterations carry the rounding along (3e-8 apart with numpy 1.23's BLAS)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-6, atol=1e-6)


@pytest.mark.skipif(not MLP_HAS_POISSON,
                    reason="MLPRegressor has loss='poisson' from scikit-learn 1.7 on")
def test_the_poisson_fit_is_mlpregressors_for_one_output():
    X, y = _counts(seed=1)
    kwargs = dict(hidden_layer_sizes=(5,), activation="tanh", alpha=0.1, max_iter=40,
                  random_state=0, loss="poisson")
    ours = _quiet_fit(BackpropRegressor(**kwargs), X, y)
    theirs = _quiet_fit(MLPRegressor(solver="lbfgs", **kwargs), X, y)
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-8)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-6)


def test_cross_validated_r2_on_diabetes_at_least_mlpregressors(diabetes):
    """5-fold R^2 on the diabetes data (standardised X and y, hidden (10,), alpha=1):
    at least MLPRegressor(solver="lbfgs", activation="logistic")'s, minus 0.02."""
    X, y = diabetes
    kwargs = dict(hidden_layer_sizes=(10,), alpha=1.0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = cross_val_score(BackpropRegressor(**kwargs), X, y, cv=5).mean()
        theirs = cross_val_score(
            MLPRegressor(solver="lbfgs", activation="logistic", **kwargs), X, y, cv=5
        ).mean()
    assert ours >= theirs - 0.02, (ours, theirs)
    assert ours > 0.4


def test_poisson_refuses_negative_targets_with_the_fix():
    X, y = _counts()
    with pytest.raises(ValueError, match="non-negative targets.*loss='squared_error'"):
        BackpropRegressor(loss="poisson").fit(X, y - 10)


def test_sample_weight_equals_repeated_rows(diabetes):
    """Integer weights give the cost of the repeated rows, so the same fit to the
    rounding. Both fits run until the gradient is below tol (BFGS, no ftol stop; no
    ConvergenceWarning): L-BFGS-B's stop on the relative decrease left the two 1e-4
    apart for most initial weights, by where the rounding made each path stop."""
    X, y = diabetes
    X, y = X[:60], y[:60]
    weights = np.random.RandomState(0).randint(0, 3, 60)
    kwargs = dict(hidden_layer_sizes=(4,), alpha=1.0, random_state=0, solver="bfgs",
                  tol=1e-8, max_iter=1000)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        weighted = BackpropRegressor(**kwargs).fit(X, y, sample_weight=weights)
        repeated = BackpropRegressor(**kwargs).fit(np.repeat(X, weights, axis=0),
                                                   np.repeat(y, weights))
    # measured over 20 initial weights: at most 8e-9 apart
    np.testing.assert_allclose(weighted.predict(X), repeated.predict(X), rtol=0,
                               atol=1e-6)


def test_float32_is_fitted_in_float32_and_sparse_as_dense():
    X, y = _counts()
    kwargs = dict(hidden_layer_sizes=(4,), max_iter=20, random_state=0)
    single = _quiet_fit(BackpropRegressor(**kwargs), X.astype(np.float32), y)
    assert all(W.dtype == np.float32 for W in single.coefs_ + single.intercepts_)
    X = np.where(np.abs(X) > 0.8, X, 0.0)
    dense = _quiet_fit(BackpropRegressor(**kwargs), X, y)
    sparse = _quiet_fit(BackpropRegressor(**kwargs), sp.csr_matrix(X), y)
    np.testing.assert_allclose(sparse.predict(sp.csr_matrix(X)), dense.predict(X),
                               rtol=1e-9)


def test_early_stopping_on_held_out_r2(diabetes):
    X, y = diabetes
    model = _quiet_fit(BackpropRegressor(hidden_layer_sizes=(20,), alpha=1e-4,
                                         early_stopping=True, n_iter_no_change=5,
                                         max_iter=300, random_state=0), X, y)
    scores = model.validation_scores_
    assert len(scores) == model.n_iter_ < 300
    assert model.best_validation_score_ == max(scores)
    # the kept weights are those of the best score, which is the held-out R^2
    from sklearn.model_selection import train_test_split

    _, held_out = train_test_split(np.arange(len(y)), test_size=0.1, random_state=0)
    assert model.score(X[held_out], y[held_out]) == pytest.approx(
        model.best_validation_score_, rel=1e-9)


def test_warm_start_continues_and_checks_the_outputs():
    X, y = _counts(n_outputs=2)
    model = _quiet_fit(BackpropRegressor(hidden_layer_sizes=(4,), max_iter=5,
                                         warm_start=True, random_state=0), X, y)
    first = model.loss_
    _quiet_fit(model, X, y)
    assert model.loss_ < first
    with pytest.raises(ValueError, match="same network"):
        model.fit(X, y[:, 0])


def test_in_pipeline_grid_search_transformed_target_and_persistence(diabetes, tmp_path):
    X, y = load_diabetes(return_X_y=True)
    model = TransformedTargetRegressor(
        make_pipeline(StandardScaler(), BackpropRegressor(hidden_layer_sizes=(5,),
                                                          random_state=0)),
        transformer=StandardScaler())
    search = GridSearchCV(model, {"regressor__backpropregressor__alpha": [0.1, 1.0]},
                          cv=3)
    _quiet_fit(search, X, y)
    best = search.best_estimator_
    assert search.best_score_ > 0.3
    expected = best.predict(X)
    assert np.array_equal(pickle.loads(pickle.dumps(best)).predict(X), expected)
    joblib.dump(best, tmp_path / "model.joblib")
    assert np.array_equal(joblib.load(tmp_path / "model.joblib").predict(X), expected)
    sio = pytest.importorskip("skops.io")
    regressor = best.regressor_[-1]
    sio.dump(regressor, tmp_path / "model.skops")
    assert sio.get_untrusted_types(file=tmp_path / "model.skops") == [
        "sklearn_bp._regressor.BackpropRegressor"]
    loaded = sio.load(tmp_path / "model.skops", trusted=[BackpropRegressor])
    Xs = best.regressor_[0].transform(X)
    assert np.array_equal(loaded.predict(Xs), regressor.predict(Xs))


def test_no_hidden_layer_is_ridge_regression(diabetes):
    """hidden_layer_sizes=() leaves the affine map and half the squared error: (C1) is
    then Ridge(alpha)'s objective divided by 2 n, with the same minimiser.

    BFGS stops on the gradient alone (largest component below tol), so its distance to
    Ridge's solution is at most sqrt(p + 1) tol / mu, mu the least eigenvalue of the
    cost's Hessian: a bound that holds whatever the machine's rounding. (L-BFGS-B also
    stops when the cost's relative decrease falls below scipy's ftol; on these collinear
    features that leaves coefficients 1e-5 to 1e-3 from Ridge's, by the rounding and the
    initial weights, which is why the default solver is not the one compared here.)
    """
    from sklearn.linear_model import Ridge

    X, y = diabetes
    n, p = X.shape
    alpha, tol = 3.0, 1e-8
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # the gradient reached tol
        ours = BackpropRegressor(hidden_layer_sizes=(), alpha=alpha, solver="bfgs",
                                 tol=tol, max_iter=1000, random_state=0).fit(X, y)
    ridge = Ridge(alpha=alpha).fit(X, y)
    A = np.column_stack([X, np.ones(n)])
    hessian = (A.T @ A + np.diag([alpha] * p + [0.0])) / n
    bound = np.sqrt(p + 1) * tol / np.linalg.eigvalsh(hessian)[0]
    theta = np.r_[ours.coefs_[0].ravel(), ours.intercepts_[0]]
    assert np.linalg.norm(theta - np.r_[ridge.coef_, ridge.intercept_]) <= bound
    np.testing.assert_allclose(ours.predict(X), ridge.predict(X),
                               atol=np.linalg.norm(A, 2) * bound)
