"""The cases whose numbers a restructuring must keep, bit for bit.

Each case gives ``cost_and_gradient`` on fixed weights, a fit's ``coefs_`` and
``intercepts_``, and its ``predict_proba``. ``tests/data/same_bits.npz`` holds them as
computed at commit 22b5b36, before the package was restructured around its loss object;
``tests/test_same_bits.py`` recomputes them and compares.

Rounding depends on the BLAS library, its kernels for the CPU and the number of cores
(a fit splits its sums by the cores), so the record also stores that environment: where
it is the same, the numbers must be the same bits; elsewhere (other machines, the floor
versions of CI) they must agree to a tolerance that rounding explains.

Record again, only on purpose (a change that moves the numbers must say why)::

    python tests/_same_bits_cases.py
"""

import os
import platform
import sys
import warnings
from pathlib import Path

import numpy as np
import scipy
import scipy.sparse as sp
import sklearn
from sklearn.exceptions import ConvergenceWarning

RECORD = Path(__file__).resolve().parent / "data" / "same_bits.npz"


def _data(n, n_features, n_classes, seed, multilabel=False):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, n_features))
    if multilabel:
        y = (X[:, :n_classes] + 0.5 * rng.normal(size=(n, n_classes)) > 0).astype(int)
    else:
        y = (X[:, :n_classes] + 0.5 * rng.normal(size=(n, n_classes))).argmax(axis=1)
        if n_classes == 1:
            y = (X[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(int)
    return X, y


# name: (data arguments, estimator parameters, fit extras)
CASES = {
    "binary": ((120, 5, 1, 0), dict(hidden_layer_sizes=(7,)), {}),
    "binary-softmax": ((120, 5, 1, 1), dict(hidden_layer_sizes=(6,),
                                              output_activation="softmax"), {}),
    "multilabel": ((150, 6, 3, 2, True), dict(hidden_layer_sizes=(8,)), {}),
    "multiclass-softmax": ((200, 6, 4, 3), dict(hidden_layer_sizes=(9,),
                                                  output_activation="softmax"), {}),
    "multiclass-logistic": ((200, 6, 4, 4), dict(hidden_layer_sizes=(9,)), {}),
    "tanh": ((150, 5, 3, 5), dict(hidden_layer_sizes=(8,), activation="tanh"), {}),
    "relu": ((150, 5, 3, 6), dict(hidden_layer_sizes=(8,), activation="relu",
                                  output_activation="softmax"), {}),
    "deep": ((180, 6, 3, 7), dict(hidden_layer_sizes=(7, 6, 5), activation="tanh"), {}),
    "class-weight": ((160, 5, 3, 8), dict(hidden_layer_sizes=(6,),
                                           class_weight="balanced"), {}),
    "sample-weight": ((160, 5, 3, 9), dict(hidden_layer_sizes=(6,),
                                            output_activation="softmax"),
                      {"sample_weight": True}),
    "float32": ((160, 5, 3, 10), dict(hidden_layer_sizes=(6,)), {"float32": True}),
    "sparse": ((160, 30, 3, 11), dict(hidden_layer_sizes=(6,)), {"sparse": True}),
    "early-stopping": ((300, 5, 3, 12), dict(hidden_layer_sizes=(6,), early_stopping=True,
                                              n_iter_no_change=3), {}),
    # Large enough for several row blocks, partial sums and threads.
    "threads": ((20_000, 40, 5, 13), dict(hidden_layer_sizes=(60,),
                                           output_activation="softmax"), {}),
    "threads-logistic": ((20_000, 40, 5, 14), dict(hidden_layer_sizes=(60, 20)), {}),
}


def case_data(name):
    """``(X, y, sample_weight, parameters)`` of a case."""
    from sklearn_bp import BackpropClassifier  # noqa: F401 (the estimator's parameters)

    data, params, extras = CASES[name]
    X, y = _data(*data)
    sample_weight = None
    if extras.get("sample_weight"):
        sample_weight = np.random.RandomState(99).randint(0, 4, X.shape[0]).astype(float)
    if extras.get("float32"):
        X = X.astype(np.float32)
    if extras.get("sparse"):
        X = np.where(np.abs(X) > 1.2, X, 0.0)
        X = sp.csr_matrix(X)
    return X, y, sample_weight, dict(params, alpha=0.01, max_iter=25, random_state=0)


def compute(name):
    """The numbers of one case: a dict of arrays."""
    from sklearn_bp import BackpropClassifier
    from sklearn_bp.backprop import cost_and_gradient, pack

    X, y, sample_weight, params = case_data(name)
    model = BackpropClassifier(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y, sample_weight=sample_weight)
    out = {}
    for l, (W, b) in enumerate(zip(model.coefs_, model.intercepts_)):
        out[f"coef{l}"], out[f"intercept{l}"] = W, b
    rows = slice(None, None, max(1, X.shape[0] // 200))
    out["predict_proba"] = model.predict_proba(X)[rows]
    out["predict_log_proba"] = model.predict_log_proba(X)[rows]
    # The cost and gradient at fixed weights (a perturbation of the fitted ones), on the
    # indicator matrix the fit used, with the public function's defaults.
    theta = pack(model.coefs_, model.intercepts_).astype(np.float64)
    theta = theta + 0.1 * np.sin(np.arange(theta.size))
    if model._y_type == "multilabel-indicator":
        Y = np.asarray(y, dtype=float)
    else:
        Y = (np.asarray(y)[:, None] == model.classes_).astype(float)
        if Y.shape[1] == 2 and model.n_outputs_ == 1:
            Y = Y[:, 1:]
    layer_sizes = (X.shape[1], *model.hidden_layer_sizes, Y.shape[1])
    for alpha in (0.0, 0.3):
        cost, grad = cost_and_gradient(
            theta.astype(X.dtype), X, Y, layer_sizes, alpha=alpha,
            sample_weight=sample_weight, activation=model.activation,
            output_activation=model.output_activation)
        out[f"cost{alpha}"], out[f"grad{alpha}"] = np.float64(cost), grad
    return out


def environment():
    """What rounding depends on, as one string."""
    from threadpoolctl import threadpool_info

    blas = sorted(
        f"{lib.get('internal_api')} {lib.get('version')} {lib.get('architecture')}"
        for lib in threadpool_info() if lib.get("user_api") == "blas"
    )
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    return "; ".join([
        f"python {platform.python_version()}", f"machine {platform.machine()}",
        f"numpy {np.__version__}", f"scipy {scipy.__version__}",
        f"cores {cores}", *blas,
    ])


def record():
    arrays = {"environment": np.array(environment())}
    for name in CASES:
        for key, value in compute(name).items():
            arrays[f"{name}/{key}"] = np.asarray(value)
    RECORD.parent.mkdir(exist_ok=True)
    np.savez_compressed(RECORD, **arrays)
    print(f"recorded {len(CASES)} cases in {RECORD.name}, on {arrays['environment']}")
    print(f"(scikit-learn {sklearn.__version__})")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    record()
