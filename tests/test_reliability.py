"""Reliability: bad inputs get clear errors, extreme inputs work, fits are reproducible,
and saved models are self-contained."""

import pickle
import subprocess
import sys
import warnings

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import InvalidParameterError
from threadpoolctl import threadpool_limits

from sklearn_bp import BackpropClassifier, _threads


def _data(n_samples=20, n_features=3, seed=0):
    rng = np.random.RandomState(seed)
    return rng.normal(size=(n_samples, n_features)), np.arange(n_samples) % 2


X0, y0 = _data()
_nan_X = X0.copy()
_nan_X[3, 1] = np.nan
_inf_X = X0.copy()
_inf_X[4, 0] = np.inf
_nan_y = y0.astype(float)
_nan_y[2] = np.nan

# (case, X, y, fit keyword arguments, estimator parameters, error type, message pattern)
BAD_INPUTS = [
    ("NaN in X", _nan_X, y0, {}, {}, ValueError, "Input X contains NaN"),
    ("inf in X", _inf_X, y0, {}, {}, ValueError, "Input X contains infinity"),
    ("NaN in y", X0, _nan_y, {}, {}, ValueError, "Input y contains NaN"),
    ("continuous y", X0, np.linspace(0, 1, 20), {}, {}, ValueError,
     "Unknown label type: continuous"),
    ("a single class", X0, np.zeros(20), {}, {}, ValueError,
     "at least 2 classes.*only one class: 0.0"),
    ("0 samples", X0[:0], y0[:0], {}, {}, ValueError, "0 sample\\(s\\)"),
    ("0 features", X0[:, :0], y0, {}, {}, ValueError, "0 feature\\(s\\)"),
    ("1 sample", X0[:1], y0[:1], {}, {}, ValueError, "at least 2 classes"),
    ("3-D X", X0.reshape(20, 3, 1), y0, {}, {}, ValueError, "dim 3"),
    ("complex X", X0 + 1j, y0, {}, {}, ValueError, "Complex data not supported"),
    ("string X", np.full((20, 3), "a", dtype=object), y0, {}, {}, ValueError,
     "could not convert string to float"),
    ("X and y lengths differ", X0, y0[:-1], {}, {}, ValueError,
     "inconsistent numbers of samples"),
    ("sample_weight length differs", X0, y0, {"sample_weight": np.ones(19)}, {},
     ValueError, "sample_weight.shape == \\(19,\\), expected \\(20,\\)"),
    ("negative sample_weight", X0, y0, {"sample_weight": -np.ones(20)}, {}, ValueError,
     "Negative values in data passed to `sample_weight`"),
    ("NaN sample_weight", X0, y0, {"sample_weight": np.full(20, np.nan)}, {}, ValueError,
     "Input sample_weight contains NaN"),
    ("all-zero sample_weight", X0, y0, {"sample_weight": np.zeros(20)}, {}, ValueError,
     "at least one non-zero"),
    ("several multiclass outputs", X0, np.column_stack([np.arange(20) % 3] * 2), {}, {},
     ValueError, "MultiOutputClassifier"),
    ("hidden_layer_sizes=(0,)", X0, y0, {}, {"hidden_layer_sizes": (0,)}, ValueError,
     "hidden_layer_sizes must be >= 1"),
    ("hidden_layer_sizes=(-3,)", X0, y0, {}, {"hidden_layer_sizes": (-3,)}, ValueError,
     "got \\(-3,\\): hidden layer 1 has -3 units"),
    ("hidden_layer_sizes=(4, -3)", X0, y0, {}, {"hidden_layer_sizes": (4, -3)}, ValueError,
     "got \\(4, -3\\): hidden layer 2 has -3 units. Give it at least one unit, or "
     "remove it."),
    ("hidden_layer_sizes=[[2]]", X0, y0, {}, {"hidden_layer_sizes": [[2]]}, ValueError,
     "a sequence of positive ints \\(\\(\\) for no hidden layer\\)"),
    ("hidden_layer_sizes=(2.5,)", X0, y0, {}, {"hidden_layer_sizes": (2.5,)}, ValueError,
     "positive ints"),
    ("negative alpha", X0, y0, {}, {"alpha": -1.0}, InvalidParameterError,
     "'alpha' parameter .* range \\[0.0, inf\\)"),
    ("max_iter=0", X0, y0, {}, {"max_iter": 0}, InvalidParameterError,
     "'max_iter' parameter"),
    ("unknown activation", X0, y0, {}, {"activation": "sigmoid"}, InvalidParameterError,
     "'activation' parameter"),
    ("negative tol", X0, y0, {}, {"tol": -1e-4}, InvalidParameterError, "'tol' parameter"),
    ("softmax for multilabel", X0, np.column_stack([y0, 1 - y0, y0]), {},
     {"output_activation": "softmax"}, ValueError, "output_activation='logistic'"),
]


@pytest.mark.parametrize(
    "X, y, fit_params, params, error, pattern",
    [case[1:] for case in BAD_INPUTS],
    ids=[case[0] for case in BAD_INPUTS],
)
def test_bad_inputs_raise_clear_errors(X, y, fit_params, params, error, pattern):
    with pytest.raises(error, match=pattern):
        BackpropClassifier(**{"max_iter": 5, **params}).fit(X, y, **fit_params)


def test_predict_with_wrong_number_of_features():
    model = BackpropClassifier(hidden_layer_sizes=(3,), random_state=0).fit(X0, y0)
    for method in ("predict", "predict_proba", "decision_function"):
        with pytest.raises(ValueError, match="X has 2 features, but BackpropClassifier "
                                             "is expecting 3 features"):
            getattr(model, method)(X0[:, :2])


def _extreme_cases():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(120, 5))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    unbalanced = np.zeros(120, dtype=int)
    unbalanced[:3] = 1
    return [
        ("scaled by 1e6", X * 1e6, y),
        ("scaled by 1e-6", X * 1e-6, y),
        ("constant columns", np.column_stack([X, np.ones(120), np.full(120, -7.0)]), y),
        ("duplicated rows", np.vstack([X, X]), np.concatenate([y, y])),
        ("10000 features on 20 samples", rng.normal(size=(20, 10_000)), np.arange(20) % 2),
        ("100 classes", rng.normal(size=(300, 8)), np.arange(300) % 100),
        ("very unbalanced classes", X, unbalanced),
        ("float32", X.astype(np.float32), y),
        ("int", np.round(X * 10).astype(np.int64), y),
        ("Fortran order", np.asfortranarray(X), y),
        ("sparse CSR", sp.csr_matrix(np.where(np.abs(X) > 1, X, 0)), y),
        ("sparse CSC", sp.csc_matrix(np.where(np.abs(X) > 1, X, 0)), y),
    ]


@pytest.mark.parametrize("X, y", [case[1:] for case in _extreme_cases()],
                         ids=[case[0] for case in _extreme_cases()])
def test_extreme_but_valid_inputs(X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = BackpropClassifier(hidden_layer_sizes=(10,), max_iter=60,
                                   random_state=0).fit(X, y)
        proba = model.predict_proba(X)
        log_proba = model.predict_log_proba(X)
    assert all(np.all(np.isfinite(W)) for W in model.coefs_ + model.intercepts_)
    assert np.all(np.isfinite(proba)) and np.all((proba >= 0) & (proba <= 1))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    assert np.all(np.isfinite(log_proba)) and np.all(log_proba <= 0)
    assert proba.shape == (X.shape[0], len(np.unique(y)))


def test_read_only_memmap_input(tmp_path):
    X, y = _data(60, 4)
    path = tmp_path / "X.npy"
    np.save(path, X)
    X_memmap = np.load(path, mmap_mode="r")
    assert not X_memmap.flags.writeable
    kwargs = dict(hidden_layer_sizes=(5,), random_state=0, max_iter=30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        from_memmap = BackpropClassifier(**kwargs).fit(X_memmap, y)
        from_array = BackpropClassifier(**kwargs).fit(X, y)
    np.testing.assert_array_equal(from_memmap.coefs_[0], from_array.coefs_[0])
    np.testing.assert_array_equal(from_memmap.predict_proba(X_memmap),
                                  from_array.predict_proba(X))


_labels = st.sampled_from(["int", "str", "bool", "float", "negative int", "continuous"])


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    n_samples=st.integers(0, 40),
    n_features=st.integers(0, 6),
    n_classes=st.integers(1, 6),
    label_kind=_labels,
    dtype=st.sampled_from([np.float64, np.float32, np.int32, np.int64, np.bool_]),
    scale=st.sampled_from([1e-8, 1.0, 1e8]),
    hidden=st.lists(st.integers(1, 4), min_size=0, max_size=2),
    activation=st.sampled_from(["logistic", "tanh", "relu", "identity"]),
    output_activation=st.sampled_from(["logistic", "softmax"]),
    alpha=st.sampled_from([0.0, 1e-4, 10.0]),
    weights=st.sampled_from([None, "ones", "random", "zeros-some"]),
    seed=st.integers(0, 2**16),
)
# Found by this test: the float32 gradient's norm overflowed float32 (a RuntimeWarning).
@example(n_samples=4, n_features=1, n_classes=2, label_kind="int", dtype=np.float32,
         scale=1e8, hidden=[1, 2], activation="relu", output_activation="logistic",
         alpha=0.0, weights=None, seed=32503)
def test_fuzz_fit_either_works_or_says_why(n_samples, n_features, n_classes, label_kind,
                                           dtype, scale, hidden, activation,
                                           output_activation, alpha, weights, seed):
    rng = np.random.RandomState(seed)
    X = (rng.normal(size=(n_samples, n_features)) * scale).astype(dtype)
    codes = rng.randint(0, n_classes, n_samples)
    y = {
        "int": codes,
        "negative int": codes - 2,
        "str": np.array(["cat", "dog", "emu", "fox", "gnu", "hen"])[codes],
        "bool": codes % 2 == 1,
        "float": codes * 0.5,
        "continuous": rng.normal(size=n_samples),
    }[label_kind]
    sample_weight = {
        None: None,
        "ones": np.ones(n_samples),
        "random": rng.uniform(0, 3, n_samples),
        "zeros-some": (rng.uniform(size=n_samples) < 0.5).astype(float),
    }[weights]
    model = BackpropClassifier(hidden_layer_sizes=tuple(hidden), activation=activation,
                               output_activation=output_activation, alpha=alpha,
                               max_iter=15, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            model.fit(X, y, sample_weight=sample_weight)
        except (ValueError, TypeError) as error:
            assert str(error)  # every refusal says why
            event(f"refused: {str(error)[:40]}")
            return
        proba = model.predict_proba(X)
        predictions = model.predict(X)
    event("fitted")
    assert np.all(np.isfinite(proba)) and np.all((proba >= 0) & (proba <= 1))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    assert set(np.unique(predictions)) <= set(np.unique(y))
    assert predictions.dtype.kind == np.asarray(y).dtype.kind


def _fit_coefs(X, y, blas_threads):
    with threadpool_limits(limits=blas_threads, user_api="blas"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = BackpropClassifier(hidden_layer_sizes=(30,), max_iter=40,
                                       random_state=3).fit(X, y)
    return model.coefs_ + model.intercepts_


@pytest.mark.parametrize("n_sums", [None, 3])
def test_same_random_state_gives_bit_identical_weights(monkeypatch, n_sums):
    """Whatever the BLAS thread limit around the fit, and so whatever number of threads
    the estimator takes: the same weights, to the bit. With ``n_sums=3`` the evaluations
    are split into three partial sums (as on a machine whose cores make that worth it),
    which one thread or several then compute."""
    if n_sums is not None:
        monkeypatch.setattr(_threads, "useful_threads",
                            lambda X, layer_sizes, gradient=True: n_sums)
    rng = np.random.RandomState(0)
    X = rng.normal(size=(3000, 20))
    y = (X[:, :3].sum(axis=1) > 0).astype(int) + (X[:, 3] > 1)
    reference = _fit_coefs(X, y, blas_threads=1)
    for threads in (1, 2, None):
        for a, b in zip(reference, _fit_coefs(X, y, blas_threads=threads)):
            np.testing.assert_array_equal(a, b)


def test_fit_does_not_modify_its_inputs():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(40, 4))
    y = np.arange(40) % 3
    sample_weight = rng.uniform(0.5, 2, 40)
    copies = X.copy(), y.copy(), sample_weight.copy()
    for data in (X, sp.csr_matrix(X)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            BackpropClassifier(hidden_layer_sizes=(4,), max_iter=20).fit(
                data, y, sample_weight=sample_weight)
    np.testing.assert_array_equal(X, copies[0])
    np.testing.assert_array_equal(y, copies[1])
    np.testing.assert_array_equal(sample_weight, copies[2])


def _fitted(n_samples=500):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(n_samples, 6))
    y = np.array(["a", "b", "c"])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 1)]
    return BackpropClassifier(hidden_layer_sizes=(7,), random_state=0).fit(X, y), X


def test_fitted_model_keeps_no_training_data_or_initial_weights():
    model, X = _fitted()
    n_weights = sum(W.size for W in model.coefs_ + model.intercepts_)
    for name, value in vars(model).items():
        arrays = value if isinstance(value, list) else [value]
        for array in arrays:
            if isinstance(array, np.ndarray):
                assert X.shape[0] not in array.shape, name
    # The pickle holds one copy of the weights plus small metadata: no initial weights,
    # no training data, no optimiser state.
    size = len(pickle.dumps(model))
    assert size < 8 * n_weights + 3000


def test_joblib_round_trip_in_a_fresh_process(tmp_path):
    """Loading needs only the file: a new process predicts identically without X_train."""
    model, X = _fitted()
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    X_new = np.random.RandomState(1).normal(size=(5, 6))
    np.save(tmp_path / "X_new.npy", X_new)
    script = (
        "import joblib, numpy as np, sys; "
        "m = joblib.load(sys.argv[1]); "
        "np.save(sys.argv[3], m.predict_proba(np.load(sys.argv[2])))"
    )
    subprocess.run([sys.executable, "-c", script, str(path), str(tmp_path / "X_new.npy"),
                    str(tmp_path / "proba.npy")], check=True)
    np.testing.assert_array_equal(np.load(tmp_path / "proba.npy"),
                                  model.predict_proba(X_new))


def test_skops_round_trip_predicts_identically(tmp_path):
    sio = pytest.importorskip("skops.io")
    model, X = _fitted()
    path = tmp_path / "model.skops"
    sio.dump(model, path)
    assert sio.get_untrusted_types(file=path) == ["sklearn_bp._classifier.BackpropClassifier"]
    loaded = sio.load(path, trusted=[BackpropClassifier])
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
