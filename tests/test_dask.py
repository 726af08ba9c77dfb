"""DaskBackpropClassifier, and BackpropClassifier under joblib's dask backend.

One LocalCluster (2 worker processes, 1 thread each, on 127.0.0.1, no dashboard) serves
the whole module. The oracle is the in-process computation of the same sums and fits.
"""

import pickle
import warnings

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

import joblib  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.preprocessing import StandardScaler, label_binarize  # noqa: E402

import sklearn_bp.dask as sklearn_bp_dask  # noqa: E402
from sklearn_bp import BackpropClassifier, BackpropRegressor, backprop  # noqa: E402
from sklearn_bp.dask import DaskBackpropClassifier, DaskBackpropRegressor  # noqa: E402


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None,
    ) as cluster, distributed.Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=3000, n_features=12, n_informative=6,
                               n_classes=3, random_state=0)
    X = StandardScaler().fit_transform(X)
    sample_weight = np.random.default_rng(0).uniform(0.5, 2.0, size=y.shape[0])
    return X, y, sample_weight


def _dask(X, y, sample_weight=None):
    """Uneven row chunks for X, other chunks for y and the weights (rechunked in fit)."""
    dX = da.from_array(X, chunks=(700, 5))
    dy = da.from_array(y, chunks=500)
    dw = None if sample_weight is None else da.from_array(sample_weight, chunks=1000)
    return dX, dy, dw


def _fit_quietly(model, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(*args, **kwargs)


KWARGS = dict(hidden_layer_sizes=(10,), alpha=1e-2, max_iter=30, random_state=0)


@pytest.fixture(scope="module")
def fitted(client, data):
    """A distributed fit and the in-process fit of the same data."""
    X, y, sample_weight = data
    dX, dy, dw = _dask(X, y, sample_weight)
    model = _fit_quietly(DaskBackpropClassifier(client, **KWARGS), dX, dy,
                         sample_weight=dw)
    reference = _fit_quietly(BackpropClassifier(**KWARGS), X, y,
                             sample_weight=sample_weight)
    return model, reference


def _relative_difference(a, b):
    return float(np.linalg.norm(np.ravel(a) - np.ravel(b)) / np.linalg.norm(np.ravel(b)))


@pytest.mark.parametrize("tree", [False, True], ids=["gathered", "tree-reduced"])
@pytest.mark.parametrize("output_activation", ["logistic", "softmax"])
def test_partial_sums_equal_in_process_blocks(client, data, monkeypatch, tree,
                                              output_activation):
    X, y, sample_weight = data
    if tree:
        monkeypatch.setattr(sklearn_bp_dask, "_TREE_REDUCE_BYTES", 0)
    kwargs = dict(activation="tanh", output_activation=output_activation)
    model = DaskBackpropClassifier(client, alpha=0.1, **kwargs)
    blocks = model._persist_blocks(client, *_dask(X, y, sample_weight))
    layer_sizes = (12, 7, 3)
    loss = model._network_loss(layer_sizes, blocks.dtype)
    objective = sklearn_bp_dask.BlockObjective(loss, blocks)
    theta = np.random.default_rng(1).normal(scale=0.5, size=backprop.n_params(layer_sizes))
    parts = objective.partial_sums(theta)
    assert len(parts) == (1 if tree else 5)
    loss_sum = sum(part.loss for part in parts)
    grad_sum = sum(part.gradient for part in parts)

    # The same sums in this process, block by block over the row chunks of X, in order.
    Y = label_binarize(y, classes=[0, 1, 2]).astype(float)
    expected_loss, expected_grad = 0.0, np.zeros_like(theta)
    for start in range(0, 3000, 700):
        rows = slice(start, start + 700)
        block_loss, block_grad = backprop.partial_sums(
            theta, X[rows], Y[rows], layer_sizes, sample_weight=sample_weight[rows],
            **kwargs,
        )
        expected_loss += block_loss
        expected_grad += block_grad
    assert len(blocks.futures) == 5
    # each block holds its labels as one small integer a row (issue 20), not an
    # indicator matrix
    _, block_targets, _ = blocks.futures[0].result()
    assert block_targets.dtype == np.int8 and block_targets.shape == (700,)
    assert blocks.n_features == 12 and blocks.dtype == np.float64
    assert blocks.weight_sum == pytest.approx(sample_weight.sum(), rel=1e-14)
    assert loss_sum == pytest.approx(expected_loss, rel=1e-12)
    assert _relative_difference(grad_sum, expected_grad) <= 1e-12

    # Finished once, they are the cost and gradient of all of the data.
    with objective:
        cost, grad = objective(theta)
    expected_cost, expected = backprop.cost_and_gradient(
        theta, X, Y, layer_sizes, alpha=model.alpha, sample_weight=sample_weight, **kwargs
    )
    assert cost == pytest.approx(expected_cost, rel=1e-12)
    assert _relative_difference(grad, expected) <= 1e-12


def test_fit_equals_in_process_fit(fitted):
    model, reference = fitted
    assert model.n_iter_ == reference.n_iter_ == 30
    for name in ("coefs_", "intercepts_"):
        for ours, theirs in zip(getattr(model, name), getattr(reference, name)):
            assert _relative_difference(ours, theirs) <= 1e-9
    assert model.loss_ == pytest.approx(reference.loss_, rel=1e-9)
    np.testing.assert_allclose(model.loss_curve_, reference.loss_curve_, rtol=1e-9)
    np.testing.assert_array_equal(model.classes_, reference.classes_)
    assert model.n_features_in_ == 12 and model.n_outputs_ == 3 and model.n_layers_ == 3


def test_dataframe_and_in_memory_inputs_fit_like_in_process(client):
    """dask DataFrame columns (feature names, float32, one-column y) and numpy multilabel
    targets go through the same validation and give the in-process fit."""
    X, y = make_classification(n_samples=1200, n_features=6, random_state=1)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)]).assign(label=y)
    ddf = dd.from_pandas(frame, npartitions=3)
    kwargs = dict(hidden_layer_sizes=(5,), max_iter=10, random_state=0)
    with pytest.warns(Warning, match="column-vector y"):
        model = _fit_quietly(DaskBackpropClassifier(**kwargs),  # the default client
                             ddf.drop(columns="label"), ddf[["label"]])
    reference = _fit_quietly(BackpropClassifier(**kwargs), frame.drop(columns="label"), y)
    assert model.coefs_[0].dtype == np.float32
    np.testing.assert_array_equal(model.feature_names_in_, reference.feature_names_in_)
    np.testing.assert_allclose(model.loss_curve_, reference.loss_curve_, rtol=1e-5)

    Y = np.column_stack([y, 1 - y, X[:, 0] > 0]).astype(int)
    X64 = X.astype(np.float64)
    model = _fit_quietly(DaskBackpropClassifier(client, **kwargs), X64, Y)
    reference = _fit_quietly(BackpropClassifier(**kwargs), X64, Y)
    assert model._y_type == "multilabel-indicator"
    np.testing.assert_array_equal(model.classes_, [0, 1, 2])
    for ours, theirs in zip(model.coefs_, reference.coefs_):
        assert _relative_difference(ours, theirs) <= 1e-9


def test_pickle_clone_and_to_local_round_trip(fitted, data):
    model, _ = fitted
    X = data[0]
    expected = model.predict_proba(X)

    restored = pickle.loads(pickle.dumps(model))
    assert type(restored) is DaskBackpropClassifier and restored.client is None
    np.testing.assert_array_equal(restored.predict_proba(X), expected)

    copy = clone(model)
    assert copy.client is model.client and not hasattr(copy, "coefs_")
    assert copy.get_params()["hidden_layer_sizes"] == KWARGS["hidden_layer_sizes"]

    local = model.to_local()
    assert type(local) is BackpropClassifier
    params = model.get_params()
    del params["client"]
    assert local.get_params() == params
    for ours, theirs in zip(local.coefs_ + local.intercepts_,
                            model.coefs_ + model.intercepts_):
        np.testing.assert_array_equal(ours, theirs)
        assert not np.shares_memory(ours, theirs)
    np.testing.assert_array_equal(local.predict_proba(X), expected)
    np.testing.assert_array_equal(local.predict(X), model.predict(X))
    local = pickle.loads(pickle.dumps(local))
    np.testing.assert_array_equal(local.predict_proba(X), expected)


def test_other_solvers_fit_like_in_process(client, data):
    X, y, _ = data
    kwargs = dict(hidden_layer_sizes=(4,), solver="cg", max_iter=8, random_state=0)
    model = _fit_quietly(DaskBackpropClassifier(client, **kwargs), *_dask(X, y)[:2])
    reference = _fit_quietly(BackpropClassifier(**kwargs), X, y)
    assert model.n_iter_ == reference.n_iter_
    for ours, theirs in zip(model.coefs_, reference.coefs_):
        assert _relative_difference(ours, theirs) <= 1e-9


@pytest.mark.parametrize("options", [
    {},
    {"weighted": True},
    {"weighted": True, "class_weight": "balanced"},
    {"multilabel": True},
])
def test_early_stopping_fits_like_in_process(client, unbalanced, options):
    """The same held-out rows, scores, stopping iteration and kept weights."""
    X, y, sample_weight = unbalanced
    if options.get("multilabel"):
        y = label_binarize(y, classes=["ant", "bee", "cat"])
        y[::7, 0] = 1  # some rows with two labels
    sample_weight = np.where(sample_weight > 0, sample_weight, 0.5) if options.get(
        "weighted") else None
    kwargs = dict(hidden_layer_sizes=(10,), alpha=1e-3, max_iter=200, random_state=0,
                  early_stopping=True, validation_fraction=0.2, n_iter_no_change=3,
                  class_weight=options.get("class_weight"))
    dX = da.from_array(X, chunks=(400, 8))
    dy = da.from_array(y, chunks=(400,) + y.shape[1:])
    dw = None if sample_weight is None else da.from_array(sample_weight, chunks=400)
    model = _fit_quietly(DaskBackpropClassifier(client, **kwargs), dX, dy,
                         sample_weight=dw)
    reference = _fit_quietly(BackpropClassifier(**kwargs), X, y,
                             sample_weight=sample_weight)
    assert reference.n_iter_ < kwargs["max_iter"]  # it did stop early
    assert model.n_iter_ == reference.n_iter_
    assert model.validation_scores_ == pytest.approx(reference.validation_scores_,
                                                     rel=1e-12)
    assert model.best_validation_score_ == pytest.approx(
        reference.best_validation_score_, rel=1e-12)
    assert model.loss_curve_ == pytest.approx(reference.loss_curve_, rel=1e-9)
    for ours, theirs in zip(model.coefs_, reference.coefs_):
        assert _relative_difference(ours, theirs) <= 1e-9


def test_early_stopping_errors_as_in_process(client, unbalanced):
    """Held-out rows that all weigh 0 leave the score undefined, in both."""
    X, y, _ = unbalanced
    from sklearn_bp import _monitor

    _, held_out = _monitor.validation_split(y.shape[0], y, 0.1, 0)
    sample_weight = np.ones(y.shape[0])
    sample_weight[held_out] = 0.0
    kwargs = dict(early_stopping=True, random_state=0, max_iter=5)
    with pytest.raises(ValueError, match="validation score is undefined"):
        BackpropClassifier(**kwargs).fit(X, y, sample_weight=sample_weight)
    with pytest.raises(ValueError, match="validation score is undefined"):
        DaskBackpropClassifier(client, **kwargs).fit(*_dask(X, y, sample_weight))


@pytest.fixture(scope="module")
def unbalanced():
    X, y = make_classification(n_samples=1500, n_features=8, n_informative=5,
                               n_classes=3, weights=[0.7, 0.2, 0.1], random_state=1)
    X = StandardScaler().fit_transform(X)
    labels = np.array(["ant", "bee", "cat"])[y]
    # Integer weights with zeros: "balanced" counts only the samples that weigh.
    sample_weight = np.random.default_rng(1).integers(0, 4, size=y.shape[0]).astype(float)
    return X, labels, sample_weight


@pytest.mark.parametrize("class_weight", ["balanced", {"ant": 0.5, "cat": 3.0}])
@pytest.mark.parametrize("weighted", [False, True])
def test_class_weight_fits_like_in_process(client, unbalanced, class_weight, weighted):
    """The class totals of the blocks add up to those of the whole of y, so the fit is
    the in-process one."""
    X, y, sample_weight = unbalanced
    sample_weight = sample_weight if weighted else None
    kwargs = dict(KWARGS, class_weight=class_weight)
    model = _fit_quietly(DaskBackpropClassifier(client, **kwargs),
                         *_dask(X, y, sample_weight))
    reference = _fit_quietly(BackpropClassifier(**kwargs), X, y,
                             sample_weight=sample_weight)
    assert model.n_iter_ == reference.n_iter_
    assert abs(model.loss_ - reference.loss_) <= 1e-9 * reference.loss_
    for ours, theirs in zip(model.coefs_, reference.coefs_):
        assert _relative_difference(ours, theirs) <= 1e-9
    # and the class weights matter: without them the fit is another one
    plain = _fit_quietly(BackpropClassifier(**KWARGS), X, y, sample_weight=sample_weight)
    assert _relative_difference(plain.coefs_[0], reference.coefs_[0]) > 1e-3


@pytest.mark.parametrize("class_weight, match", [
    ({"ant": 1.0, "dog": 2.0}, "not classes of y"),
    ({"ant": -1.0}, "non-negative"),
    ({"ant": 0.0, "bee": 0.0, "cat": 0.0}, "nothing to fit"),
])
def test_class_weight_errors_as_in_process(client, unbalanced, class_weight, match):
    X, y, _ = unbalanced
    for model in (DaskBackpropClassifier(client, class_weight=class_weight),
                  BackpropClassifier(class_weight=class_weight)):
        data = _dask(X, y)[:2] if isinstance(model, DaskBackpropClassifier) else (X, y)
        with pytest.raises(ValueError, match=match):
            model.fit(*data)


def test_class_weight_refused_for_multilabel(client, data):
    X, y, _ = data
    Y = label_binarize(y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="multilabel"):
        DaskBackpropClassifier(client, class_weight="balanced").fit(
            da.from_array(X, chunks=(700, 12)), da.from_array(Y, chunks=(700, 3)))


def test_parameters_are_those_of_backprop_classifier():
    ours = DaskBackpropClassifier().get_params()
    assert ours.pop("client") is None
    assert ours == BackpropClassifier().get_params()


@pytest.mark.parametrize(
    "method", ["predict", "predict_proba", "predict_log_proba", "decision_function"]
)
def test_prediction_is_lazy_on_dask_input(fitted, data, method):
    model, _ = fitted
    X = data[0]
    dX = da.from_array(X, chunks=(700, 5))
    lazy = getattr(model, method)(dX)
    assert isinstance(lazy, da.Array)
    local = model.to_local()
    expected = getattr(local, method)(X)  # eager, on numpy
    assert lazy.shape == expected.shape and lazy.dtype == expected.dtype
    atol = 1e-300
    if method == "decision_function":
        # A logit sums terms a_j w_jk and b_k with 0 < a_j < 1, so its rounding is
        # absolute: a few eps times sum_j |w_jk| + |b_k|. (numpy 1.22's BLAS rounds
        # 700-row chunks and the whole block differently: a logit of 1.6e-3 came out
        # 1.8e-15 apart, 1.1e-12 relative.)
        W, b = np.abs(local.coefs_[-1]), np.abs(local.intercepts_[-1])
        atol = 8 * np.finfo(np.float64).eps * float(np.max(W.sum(axis=0) + b))
    np.testing.assert_allclose(lazy.compute(), expected, rtol=1e-12, atol=atol)
    np.testing.assert_allclose(getattr(model, method)(X), expected, rtol=0)


def test_prediction_on_dask_dataframe_checks_feature_names(client):
    X, y = make_classification(n_samples=400, n_features=4, random_state=0)
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    ddf = dd.from_pandas(frame, npartitions=2)
    model = _fit_quietly(DaskBackpropClassifier(client, hidden_layer_sizes=(3,),
                                                max_iter=5, random_state=0), ddf, y)
    lazy = model.predict(ddf)
    assert isinstance(lazy, da.Array)
    np.testing.assert_array_equal(lazy.compute(), model.predict(frame))
    with pytest.raises(ValueError, match="feature names"):
        model.predict(ddf.rename(columns={"a": "z"}))


def _poisoned(n_rows=100, n_columns=3):
    """A dask array that raises if anything computes it."""

    def explode(block):
        raise AssertionError("the dask collection was computed")

    return da.zeros((n_rows, n_columns), chunks=50).map_blocks(explode, dtype=float)


@pytest.mark.parametrize("argument", ["X", "y", "sample_weight"])
def test_plain_classifier_rejects_dask_collections_without_computing(argument):
    X, y = np.zeros((100, 3)), np.arange(100) % 2
    arrays = dict(X=X, y=y, sample_weight=None)
    arrays[argument] = _poisoned() if argument == "X" else _poisoned()[:, 0]
    with pytest.raises(TypeError, match=r"sklearn_bp\.dask\.DaskBackpropClassifier"):
        BackpropClassifier().fit(arrays["X"], arrays["y"],
                                 sample_weight=arrays["sample_weight"])


def test_invalid_blocks_raise_the_in_process_errors(client, data):
    X, y, _ = data
    dX, dy, _ = _dask(X, y)
    model = DaskBackpropClassifier(client, max_iter=1)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        model.fit(da.where(dX > 3, np.nan, dX), dy)
    with pytest.raises(ValueError, match="at least 2 classes"):
        model.fit(dX, da.zeros_like(dy))
    with pytest.raises(ValueError, match="Negative values in data passed to"):
        model.fit(dX, dy, sample_weight=-da.ones(3000, chunks=700))
    with pytest.raises(ValueError, match="y has 2000 rows but X has 3000"):
        model.fit(dX, y[:2000])


def test_grid_search_with_dask_joblib_backend_matches_sequential(client, data):
    X, y, _ = data
    X, y = X[:600], y[:600]
    search = GridSearchCV(
        BackpropClassifier(max_iter=20, random_state=0),
        {"hidden_layer_sizes": [(4,), (8,)], "alpha": [1e-3, 1.0]},
        cv=3, n_jobs=-1,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with joblib.parallel_config(backend="dask"):
            distributed_search = clone(search).fit(X, y)
        sequential = clone(search).set_params(n_jobs=None).fit(X, y)
    ours, theirs = distributed_search.cv_results_, sequential.cv_results_
    assert set(ours) == set(theirs)
    for key in theirs:
        if key.endswith("_time"):
            continue
        if key == "params":
            assert ours[key] == theirs[key]
        else:
            np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)


class _EndRecorder:
    """A FitCallback that keeps the fitted estimator shown at the end of each task."""

    def __init__(self):
        self.ends = []

    def setup(self, estimator, context):
        pass

    def teardown(self, estimator, context):
        pass

    def on_fit_task_begin(self, estimator, context, *, fitted_estimator=None):
        pass

    def on_fit_task_end(self, estimator, context, *, X=None, fitted_estimator=None):
        self.ends.append((context.task_name, fitted_estimator))


def test_callbacks_see_each_iteration(client, data):
    """scikit-learn's callbacks are called as for BackpropClassifier (without data):
    the estimator shown after iteration k is the in-process fit with max_iter=k."""
    pytest.importorskip("sklearn.callback", reason="scikit-learn < 1.9 has no callbacks")
    X, y, _ = data
    kwargs = dict(hidden_layer_sizes=(4,), max_iter=6, random_state=0)
    recorder = _EndRecorder()
    model = _fit_quietly(DaskBackpropClassifier(client, **kwargs).set_callbacks(recorder),
                         *_dask(X, y)[:2])
    ends = [est for task, est in recorder.ends if task == "lbfgs-iter"]
    assert len(ends) >= model.n_iter_ == 6
    for k in (1, 6):
        alone = _fit_quietly(BackpropClassifier(**dict(kwargs, max_iter=k)), X, y)
        assert ends[k - 1].n_iter_ == k
        assert _relative_difference(ends[k - 1].coefs_[0], alone.coefs_[0]) <= 1e-9


# ----------------------------------------------------------------------------------------
# DaskBackpropRegressor
# ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def counts():
    """Counts of two outputs, with weights, as a regression problem of both losses."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(2500, 6))
    rates = np.exp(0.5 * X[:, :2] - 0.3 * X[:, 2:3] + 0.4)
    return X, rng.poisson(rates).astype(float), rng.uniform(0.5, 2.0, 2500)


@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
@pytest.mark.parametrize("n_outputs", [1, 2])
def test_regressor_fit_equals_in_process_fit(client, counts, loss, n_outputs):
    X, Y, sample_weight = counts
    y = Y[:, 0] if n_outputs == 1 else Y
    kwargs = dict(hidden_layer_sizes=(6,), loss=loss, alpha=1e-2, max_iter=30,
                  random_state=0)
    model = _fit_quietly(DaskBackpropRegressor(client, **kwargs),
                         *_dask(X, y, sample_weight))
    reference = _fit_quietly(BackpropRegressor(**kwargs), X, y,
                             sample_weight=sample_weight)
    assert model.n_iter_ == reference.n_iter_
    assert model.out_activation_ == reference.out_activation_
    assert model.loss_ == pytest.approx(reference.loss_, rel=1e-9)
    for ours, theirs in zip(model.coefs_, reference.coefs_):
        assert _relative_difference(ours, theirs) <= 1e-9
    # Lazy predictions, block by block, and the local model's
    dX = da.from_array(X, chunks=(700, 6))
    lazy = model.predict(dX)
    assert isinstance(lazy, da.Array) and lazy.shape == y.shape
    expected = reference.predict(X)  # weights 1e-9 apart: predictions near 0 absolutely
    np.testing.assert_allclose(lazy.compute(), expected, rtol=1e-8,
                               atol=1e-8 * np.abs(expected).max())
    local = model.to_local()
    assert type(local) is BackpropRegressor
    np.testing.assert_array_equal(local.predict(X), model.predict(X))
    assert pickle.loads(pickle.dumps(model)).client is None


def test_regressor_early_stopping_fits_like_in_process(client, counts):
    """The same held-out rows, and their R^2 formed from the blocks' squared residuals
    equals scikit-learn's r2_score of the in-process fit."""
    X, Y, sample_weight = counts
    kwargs = dict(hidden_layer_sizes=(8,), alpha=1e-4, early_stopping=True,
                  n_iter_no_change=4, max_iter=200, random_state=0)
    model = _fit_quietly(DaskBackpropRegressor(client, **kwargs),
                         *_dask(X, Y, sample_weight))
    reference = _fit_quietly(BackpropRegressor(**kwargs), X, Y,
                             sample_weight=sample_weight)
    assert model.n_iter_ == reference.n_iter_ < 200
    assert model.validation_scores_ == pytest.approx(reference.validation_scores_,
                                                     rel=1e-9)
    assert model.best_validation_score_ == pytest.approx(
        reference.best_validation_score_, rel=1e-9)


def test_regressor_refuses_what_the_in_process_one_refuses(client, counts):
    X, Y, _ = counts
    with pytest.raises(ValueError, match="non-negative targets"):
        DaskBackpropRegressor(client, loss="poisson").fit(*_dask(X, Y[:, 0] - 5))
    with pytest.raises(TypeError, match="DaskBackpropRegressor"):
        BackpropRegressor().fit(da.from_array(X), Y[:, 0])


def test_regressor_parameters_are_those_of_backprop_regressor():
    ours = set(DaskBackpropRegressor().get_params()) - {"client"}
    assert ours == set(BackpropRegressor().get_params())
