"""BackpropClassifier against MLPClassifier(solver="lbfgs", activation="logistic"), and
BackpropRegressor against MLPRegressor(solver="lbfgs", activation="logistic").

Both fit the same network: the same layer sizes, logistic hidden units, and MLPClassifier's
output layer (a softmax for multiclass targets, one logistic unit for binary ones), with
alpha=1e-4, the same initial weights and the same max_iter. For each case it measures,
side by side in one run and as medians of interleaved repetitions (in a shuffled order):

* the time of one cost-and-gradient evaluation, ours (the estimator's own objective, as
  ``fit`` calls it) and scikit-learn's (``MLPClassifier._loss_grad_lbfgs`` on the same
  packed weights and the same data), MLPClassifier at its default BLAS threads and at one
  BLAS thread. Each repetition times a batch of consecutive evaluations lasting at least
  ``BATCH_SECONDS`` (one evaluation, for all but the narrow case), as in a fit, where
  evaluations follow each other; a single call after a pause (the interleaving, the
  pause that lets BLAS threads stop spinning) would time a cold cache instead. In the
  float32 cases, ours is also timed on the same data in float64, interleaved with the
  rest, for the float32 speed-up;
* the time of ``predict_proba`` and ``predict_log_proba`` on the case's data, ours and
  MLPClassifier's, each at its default BLAS threads and at one thread (targets at 2, 10
  and 200 classes, issue 20; they also guard against slow predictions such as the one
  that scipy's and numpy's BLAS thread pools once caused, 10x slower);
* the time of a whole fit with the same ``max_iter``, and the number of evaluations;
* the GFLOP/s achieved by the matrix products of an evaluation, next to a plain dense
  matrix product measured in the same run;
* the extra peak memory of a fit, each in a fresh subprocess that loads the data from
  ``.npy`` files: the peak resident set size during the fit minus the resident set size
  before it (on Linux the high-water mark ``VmHWM`` is reset just before the fit by
  writing 5 to ``/proc/self/clear_refs``; ``ru_maxrss`` alone would not do, as a child
  process starts with its parent's high-water mark), and the peak of ``tracemalloc``
  (which sees numpy's allocations) during the fit; then, in the same subprocess, the
  same two of ``predict_proba`` and ``predict_log_proba`` on the fit's rows (their output
  counted in);
* our fit at its default threads and under ``threadpoolctl.threadpool_limits`` of one
  thread and of all cores; our evaluation at 1 thread, at all cores for BLAS, and at all
  cores as threads over row blocks with BLAS at 1.

Run from the project's root::

    python benchmarks/run.py            # every case, about 16 minutes on 2 cores
    python benchmarks/run.py --quick    # small data, about 2 minutes
    python benchmarks/run.py --cases narrow medium10 --repeat 9
    python benchmarks/run.py --no-fit --cases medium2 medium10 many50 many200 large10
                                        # issue 20's targets, about 8 minutes

It prints tables and writes ``benchmarks/results/run-<time>.json`` (and ``latest.json``).
Timings on a shared machine are noisy: compare the ratios, which are measured in the same
run with the repetitions interleaved.
"""

import argparse
import contextlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from threadpoolctl import ThreadpoolController, threadpool_info

RESULTS = Path(__file__).resolve().parent / "results"
# The checkout this script belongs to is the one measured, whatever is installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
N_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()

# name: (description, data, hidden, dtype, per-eval repeats, fit max_iter, fit repeats)
CASES = {
    "narrow": dict(data="digits", hidden=25, dtype="float64"),
    "medium2": dict(data="medium", n_classes=2, hidden=100, dtype="float64"),
    "medium10": dict(data="medium", n_classes=10, hidden=100, dtype="float64"),
    "medium2-f32": dict(data="medium", n_classes=2, hidden=100, dtype="float32"),
    "medium10-f32": dict(data="medium", n_classes=10, hidden=100, dtype="float32"),
    "wide": dict(data="wide", n_classes=10, hidden=256, dtype="float64"),
    "large": dict(data="large", n_classes=2, hidden=100, dtype="float64"),
    "sparse": dict(data="sparse", n_classes=3, hidden=50, dtype="float64"),
    # regression: BackpropRegressor against MLPRegressor, identity outputs
    "reg1": dict(data="regression", n_outputs=1, hidden=100, dtype="float64"),
    "reg10": dict(data="regression", n_outputs=10, hidden=100, dtype="float64"),
    # many classes (issue 20): softmax outputs of 50 and 200 units, timed per evaluation
    # and per prediction, not fitted; and 10 classes on a million rows, for the memory
    # of a fit's targets only
    "many50": dict(data="medium", n_classes=50, hidden=100, dtype="float64",
                   settings="many"),
    "many200": dict(data="many", n_classes=200, hidden=100, dtype="float64",
                    settings="many"),
    "large10": dict(data="large", n_classes=10, hidden=100, dtype="float64",
                    settings="memory"),
}
SIZES = {  # rows (full, quick)
    "medium": (100_000, 10_000),
    "wide": (20_000, 2_000),
    "large": (1_000_000, 100_000),
    "sparse": (20_000, 4_000),
    "regression": (100_000, 10_000),
    "many": (300_000, 30_000),
}
SETTINGS = {  # (eval repeats, fit max_iter, fit repeats), full and quick
    "narrow": ((41, 100, 21), (9, 30, 2)),
    "medium": ((9, 10, 3), (3, 5, 1)),
    "wide": ((7, 5, 3), (3, 3, 1)),
    "large": ((3, 0, 0), (1, 0, 0)),
    "sparse": ((7, 10, 3), (3, 5, 1)),
    "regression": ((9, 10, 3), (3, 5, 1)),
    "many": ((5, 0, 0), (2, 0, 0)),
    "memory": ((0, 0, 0), (0, 0, 0)),  # the memory subprocesses only
}
# The predictions' ratio to MLPClassifier at its faster threads, at most (issue 20): 0.7
# at 200 classes; at 2 and 10 classes, the median of three runs of the code before
# issue 20 (runs B1 to B3 of benchmarks/levers.rst), so that they are no slower than
# they were.
PREDICTION_LIMITS = {
    "medium2": {"predict_proba": 0.40, "predict_log_proba": 0.40},
    "medium10": {"predict_proba": 0.41, "predict_log_proba": 0.44},
    "many200": {"predict_proba": 0.70, "predict_log_proba": 0.70},
}
MEMORY_MAX_ITER = 2  # iterations of the fits in the memory subprocesses
BATCH_SECONDS = 0.02  # per timed repetition of an evaluation (see interleaved)
RNG = np.random.default_rng(0)  # order of the interleaved runs


# ----------------------------------------------------------------------------------------
# Data and models
# ----------------------------------------------------------------------------------------


def make_data(case, quick):
    from sklearn.datasets import load_digits, make_classification, make_regression
    from sklearn.preprocessing import StandardScaler

    spec = CASES[case]
    if spec["data"] == "regression":
        X, y = make_regression(SIZES["regression"][quick], 100, n_informative=50,
                               n_targets=spec["n_outputs"], noise=10.0, random_state=0)
        y = (y - y.mean(axis=0)) / y.std(axis=0)  # standardised targets, as users fit
        return np.ascontiguousarray(X, dtype=spec["dtype"]), y
    if spec["data"] == "digits":
        X, y = load_digits(return_X_y=True)
        X = StandardScaler().fit_transform(X)
    elif spec["data"] == "sparse":
        # Like bag-of-words features: 5000 columns, 1 % nonzero (50 per row), and
        # classes from a random linear rule on them.
        import scipy.sparse as sp

        rng = np.random.default_rng(0)
        X = sp.random(SIZES["sparse"][quick], 5000, density=0.01, format="csr",
                      random_state=rng, dtype=spec["dtype"])
        y = np.argmax(X @ rng.standard_normal((5000, spec["n_classes"])), axis=1)
        return X, y
    else:
        n = SIZES[spec["data"]][quick]
        n_features = {"medium": 100, "wide": 784, "large": 50, "many": 50}[spec["data"]]
        X, y = make_classification(
            n, n_features, n_informative=min(50, n_features // 2),
            n_classes=spec["n_classes"], random_state=0,
        )
    return np.ascontiguousarray(X, dtype=spec["dtype"]), y


def output_activation(y):
    """MLPClassifier's output layer for these targets: one softmax for multiclass, one
    logistic unit for binary; for regression targets (floats), MLPRegressor's identity.
    Ours is given the same, so that both fit the same model."""
    if np.issubdtype(np.asarray(y).dtype, np.floating):
        return "identity"
    return "softmax" if len(np.unique(y)) > 2 else "logistic"


def ours(hidden, max_iter, output="logistic"):
    from sklearn_bp import BackpropClassifier, BackpropRegressor

    common = dict(hidden_layer_sizes=(hidden,), alpha=1e-4, max_iter=max_iter,
                  random_state=0)
    if output == "identity":
        return BackpropRegressor(**common)
    return BackpropClassifier(output_activation=output, **common)


def mlp(hidden, max_iter, output="logistic"):
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    estimator = MLPRegressor if output == "identity" else MLPClassifier
    return estimator(hidden_layer_sizes=(hidden,), solver="lbfgs", activation="logistic",
                     alpha=1e-4, max_iter=max_iter, random_state=0)


def counting(model):
    """Wrap the objective of a fitted-to-be model so that evaluations are counted.

    For ours, wrap the objective that the estimator's ``_minimize`` receives; for
    MLPClassifier, its
    ``_loss_grad_lbfgs``. Returns a list that gets one entry per evaluation and, in
    ``probe``, the first objective seen (ours) or the arguments of the first call (MLP).
    """
    calls = []
    probe = {}
    if hasattr(model, "_fit_objective"):
        from sklearn_bp._loss import Objective

        class Counted(Objective):
            """The fit's objective, counting its evaluations."""

            def __init__(self, objective):
                self.objective = objective
                self.loss, self.weight_sum = objective.loss, objective.weight_sum

            def partial_sums(self, theta):
                calls.append(1)
                return self.objective.partial_sums(theta)

            def close(self):
                self.objective.close()

        inner = model._minimize

        def _minimize(theta0, objective, **kwargs):
            probe.setdefault("evaluate", objective)
            probe.setdefault("theta", np.array(theta0, copy=True))
            return inner(theta0, Counted(objective), **kwargs)

        model._minimize = _minimize
    else:
        inner = model._loss_grad_lbfgs

        def _loss_grad_lbfgs(packed, *args):
            probe.setdefault("args", args)
            probe.setdefault("theta", np.array(packed, copy=True))
            calls.append(1)
            return inner(packed, *args)

        model._loss_grad_lbfgs = _loss_grad_lbfgs
    return calls, probe


_CONTROLLER = []


def blas_threads(n):
    """``None``: the libraries' defaults; an int: ``threadpool_limits(n)`` for BLAS.

    One ``ThreadpoolController`` is reused: making one scans the loaded libraries, which
    takes milliseconds, as long as a whole evaluation on small data.
    """
    if n is None:
        return contextlib.nullcontext()
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0].limit(limits=n, user_api="blas")


def quiet_fit(model, X, y):
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y)


def matmul_flops(layer_sizes, n):
    """Flops of the matrix products of one evaluation: forward, hidden deltas, gradient."""
    pairs = [a * b for a, b in zip(layer_sizes[:-1], layer_sizes[1:])]
    return 2 * n * (3 * sum(pairs) - pairs[0])


# ----------------------------------------------------------------------------------------
# Measurements
# ----------------------------------------------------------------------------------------


def settle(threads):
    """After a run with BLAS at several threads, wait until OpenBLAS's idle threads stop
    spinning (they busy-wait for a while), so that they do not slow the next run down.
    Our own objective and fit hold BLAS at one thread, so they need no pause."""
    if threads is None or threads > 1:
        time.sleep(0.15)


def interleaved(functions, repeat, batch_seconds=0.0):
    """Median seconds per call of each ``(blas_threads, function)``, the repetitions
    interleaved (after one warm-up); the thread limit is set outside the timed region.

    A repetition times ``calls`` consecutive calls, as many as last `batch_seconds`
    (measured on the warm-up; at least one), and counts their mean."""
    calls = {}
    for name, (threads, f) in functions.items():
        with blas_threads(threads):
            start = time.perf_counter()
            f()
            calls[name] = max(1, round(batch_seconds / (time.perf_counter() - start)))
        settle(threads)
    times = {name: [] for name in functions}
    order = list(functions)
    for _ in range(repeat):
        RNG.shuffle(order)  # no function always follows the same one
        for name in order:
            threads, f = functions[name]
            with blas_threads(threads):
                start = time.perf_counter()
                for _ in range(calls[name]):
                    f()
                times[name].append((time.perf_counter() - start) / calls[name])
            settle(threads)
    return {name: statistics.median(t) for name, t in times.items()}


def dense_matmul_gflops(X, hidden, repeat):
    """GFLOP/s of dense products in the dtype of X, at 1 thread and at all cores: a
    square 2048 product and the case's own first-layer product ``X @ W``."""
    rng = np.random.default_rng(0)
    dtype = X.dtype
    square = rng.standard_normal((2048, 2048)).astype(dtype)
    W = rng.standard_normal((X.shape[1], hidden)).astype(dtype)
    out_square = np.empty_like(square)
    out_first = np.empty((X.shape[0], hidden), dtype)
    result = {}
    for threads in (1, N_CORES):
        t = interleaved({
            "square": (threads, lambda: np.matmul(square, square, out=out_square)),
            "first": (threads, lambda: np.matmul(X, W, out=out_first)),
        }, max(3, repeat // 3), BATCH_SECONDS)
        result[f"square_{threads}"] = 2 * 2048**3 / t["square"] / 1e9
        result[f"first_layer_{threads}"] = 2 * X.shape[0] * X.shape[1] * hidden / t["first"] / 1e9
    result["best"] = max(result.values())
    return result


def per_evaluation(X, y, hidden, repeat):
    """Median ms per evaluation for ours (default and variants) and MLPClassifier."""
    from sklearn_bp._loss import Workspace

    def our_objective(X):
        """The estimator's objective on `X`, built exactly as fit builds it (a fit of
        one iteration), and the weights it first saw."""
        model = ours(hidden, 1, out)
        _, probe = counting(model)
        quiet_fit(model, X, y)
        return probe["evaluate"], probe["theta"]

    out = output_activation(y)
    evaluate, theta = our_objective(X)

    reference = mlp(hidden, 1, out)
    _, mlp_probe = counting(reference)
    quiet_fit(reference, X, y)
    mlp_args = mlp_probe["args"]
    packed = theta.astype(X.dtype)  # the same weights, in the same layout

    # the targets as the estimator hands them to the loss object
    Y = evaluate.targets
    loss = evaluate.loss  # the fit's own, to time it with other thread settings
    layer_sizes = loss.layer_sizes
    workspaces = {}

    def variant(n_threads):
        if n_threads not in workspaces:
            rows, _, _ = loss.plan(X, n_sums=n_threads, n_threads=n_threads)
            workspaces[n_threads] = Workspace(layer_sizes, rows, X.dtype,
                                              n_threads=n_threads)
        return lambda: loss.loss_gradient(theta, X, Y, n_threads=n_threads,
                                          workspace=workspaces[n_threads])

    functions = {
        "ours": (1, lambda: evaluate(theta)),  # BLAS at 1 thread, as in fit's minimize
        "ours_1thread": (1, variant(1)),
        f"ours_blas{N_CORES}": (N_CORES, variant(1)),
        f"ours_{N_CORES}threads": (1, variant(N_CORES)),
        "mlp_default": (None, lambda: reference._loss_grad_lbfgs(packed, *mlp_args)),
        "mlp_1thread": (1, lambda: reference._loss_grad_lbfgs(packed, *mlp_args)),
    }
    if X.dtype == np.float32:
        # The same objective on the same data in float64, interleaved with the rest: the
        # float32 speed-up is a ratio of measurements taken side by side.
        evaluate64, _ = our_objective(X.astype(np.float64))
        functions["ours_float64"] = (1, lambda: evaluate64(theta))
    times = interleaved(functions, repeat, BATCH_SECONDS)
    return {name: 1e3 * t for name, t in times.items()}, layer_sizes


def per_prediction(X, y, hidden, repeat):
    """Median ms per ``predict_proba(X)`` (``predict(X)`` for regressors) and, for
    classifiers, per ``predict_log_proba(X)``, ours and scikit-learn's, each at its
    default BLAS threads and at one BLAS thread (weights from a fit of one iteration),
    all interleaved. Returns ``{"predict_ms": ..., "log_proba_ms": ...}`` (the second
    for classifiers), each ``{"ours_default": ms, ...}``."""
    out = output_activation(y)
    model = quiet_fit(ours(hidden, 1, out), X, y)
    reference = quiet_fit(mlp(hidden, 1, out), X, y)
    methods = {"predict_ms": "predict_proba" if hasattr(model, "predict_proba")
               else "predict"}
    if hasattr(model, "predict_log_proba"):
        methods["log_proba_ms"] = "predict_log_proba"
    functions = {}
    for key, method in methods.items():
        for who, estimator in (("ours", model), ("mlp", reference)):
            predict = getattr(estimator, method)
            functions[key, f"{who}_default"] = (None, lambda p=predict: p(X))
            functions[key, f"{who}_1thread"] = (1, lambda p=predict: p(X))
    times = interleaved(functions, repeat, BATCH_SECONDS)
    return {key: {name: 1e3 * t for (k, name), t in times.items() if k == key}
            for key in methods}


def per_fit(X, y, hidden, max_iter, repeat):
    """Median seconds per fit and evaluations per fit, ours at three thread settings and
    MLPClassifier at two, with the same max_iter (tol as default for both)."""
    runs = {
        "ours": ("ours", None),
        "ours_1thread": ("ours", 1),
        f"ours_{N_CORES}threads": ("ours", N_CORES),
        "mlp_default": ("mlp", None),
        "mlp_1thread": ("mlp", 1),
    }
    times = {name: [] for name in runs}
    nfev, n_iter, dtypes = {}, {}, {}
    order = list(runs)
    for warm_up in [True] + [False] * repeat:
        RNG.shuffle(order)
        for name in order:
            kind, threads = runs[name]
            iterations = 1 if warm_up else max_iter
            model = (ours(hidden, iterations, output_activation(y)) if kind == "ours"
                     else mlp(hidden, iterations, output_activation(y)))
            calls, _ = counting(model)
            with blas_threads(threads):  # entered outside the timed region
                start = time.perf_counter()
                quiet_fit(model, X, y)
                seconds = time.perf_counter() - start
            if kind == "mlp":  # ours holds BLAS at one thread inside fit
                settle(threads)
            if not warm_up:
                times[name].append(seconds)
                nfev[name], n_iter[name] = len(calls), int(model.n_iter_)
                dtypes[name] = str(model.coefs_[0].dtype)
    return {
        name: {"seconds": statistics.median(t), "nfev": nfev[name], "n_iter": n_iter[name],
               "ms_per_eval": 1e3 * statistics.median(t) / max(nfev[name], 1),
               "coefs_dtype": dtypes[name]}
        for name, t in times.items()
    }


MEMORY_CHILD = r"""
import json, resource, sys, tracemalloc
import numpy as np
X = np.load(sys.argv[1]); y = np.load(sys.argv[2])
kind, hidden, max_iter = sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
sys.path.insert(0, sys.argv[6])
from run import mlp, ours, output_activation, quiet_fit
make = lambda: (ours(hidden, max_iter, output_activation(y)) if kind == "ours"
                else mlp(hidden, max_iter, output_activation(y)))
quiet_fit(make(), X[:200], y[:200])  # imports and first-call allocations, before measuring
model = make()

def status(field):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(field + ":"))

try:  # Linux: the high-water mark can be reset to the current RSS ("5" > clear_refs)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    method = "VmHWM after reset"
except OSError:  # elsewhere ru_maxrss, which may start at the parent's RSS
    method = "ru_maxrss"

def extra(call):  # the extra peak RSS and traced MiB of call(), and its result's MiB
    if method != "ru_maxrss":
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = status("VmRSS")
    else:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    start = tracemalloc.get_traced_memory()[0]
    result = call()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    after = (status("VmHWM") if method != "ru_maxrss"
             else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return ((after - before) / 1024, (peak - start) / 2**20,
            getattr(result, "nbytes", 0) / 2**20)

rss, traced, _ = extra(lambda: quiet_fit(model, X, y))
report = {"rss_extra_mib": rss, "rss_method": method, "traced_extra_mib": traced}
# Then the predictions on the same rows, each measured from the memory before it (the
# fitted model's, the previous result freed): the output itself is counted in.
for name in ("predict_proba", "predict_log_proba"):
    if hasattr(model, name):
        rss, traced, output = extra(lambda: getattr(model, name)(X))
        report[name] = {"rss_extra_mib": rss, "traced_extra_mib": traced,
                        "output_mib": output}
print(json.dumps(report))
"""


def peak_memory(X, y, hidden, tmpdir):
    """Extra peak memory of a fit (MiB), ours and MLPClassifier, in fresh subprocesses."""
    x_path, y_path = Path(tmpdir) / "X.npy", Path(tmpdir) / "y.npy"
    np.save(x_path, X)
    np.save(y_path, y)
    result = {}
    for kind in ("ours", "mlp"):
        out = subprocess.run(
            [sys.executable, "-c", MEMORY_CHILD, str(x_path), str(y_path), kind,
             str(hidden), str(MEMORY_MAX_ITER), str(Path(__file__).resolve().parent)],
            capture_output=True, text=True, check=True,
        )
        result[kind] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# ----------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------


def run_case(case, args, tmpdir):
    spec = CASES[case]
    group = spec.get("settings", spec["data"] if spec["data"] != "digits" else "narrow")
    eval_repeat, max_iter, fit_repeat = SETTINGS[group][args.quick]
    eval_repeat = (args.repeat or eval_repeat) if eval_repeat else 0
    fit_repeat = args.fit_repeat if args.fit_repeat is not None else fit_repeat
    max_iter = args.max_iter or max_iter
    X, y = make_data(case, args.quick)
    regression = output_activation(y) == "identity"
    targets = (f"{y.shape[1] if y.ndim == 2 else 1} regression outputs" if regression
               else f"{len(np.unique(y))} classes")
    print(f"== {case}: X {X.shape} {X.dtype}, {targets}, hidden ({spec['hidden']},)",
          flush=True)
    started = time.perf_counter()
    sparse = not isinstance(X, np.ndarray)
    x_bytes = (X.data.nbytes + X.indices.nbytes + X.indptr.nbytes) if sparse else X.nbytes
    result = {"case": case, "n_samples": X.shape[0], "n_features": X.shape[1],
              "n_classes": None if regression else int(len(np.unique(y))),
              "n_outputs": (y.shape[1] if y.ndim == 2 else 1) if regression else None,
              "hidden": spec["hidden"],
              "dtype": str(X.dtype), "X_mib": x_bytes / 2**20, "sparse": sparse}
    if eval_repeat:
        evals, layer_sizes = per_evaluation(X, y, spec["hidden"], eval_repeat)
        result["layer_sizes"] = layer_sizes
        result["eval_ms"] = evals
        if not sparse:  # dense products' flops; sparse ones do other (and less) work
            flops = matmul_flops(layer_sizes, X.shape[0])
            result["matmul_gflop_per_eval"] = flops / 1e9
            result["gflops"] = {name: flops / (ms / 1e3) / 1e9
                                for name, ms in evals.items()}
            result["dense_matmul_gflops"] = dense_matmul_gflops(X, spec["hidden"],
                                                                eval_repeat)
        result.update(per_prediction(X, y, spec["hidden"], eval_repeat))
    # a memory-only case (no evaluations) is not fitted whatever --max-iter says: its
    # rows in the fit tables would need the evaluations' times
    if eval_repeat and fit_repeat and max_iter and not args.no_fit:
        result["fit"] = per_fit(X, y, spec["hidden"], max_iter, fit_repeat)
        result["fit_max_iter"] = max_iter
    if not args.no_memory and not sparse and (spec["data"] == "large" or not args.quick):
        result["memory"] = peak_memory(X, y, spec["hidden"], tmpdir)
    result["seconds"] = time.perf_counter() - started
    return result


def ratio(a, b):
    return a / b if b else float("nan")


def vs_mlp(times, ours="ours", measure=None):
    """Ours / MLPClassifier's at its faster BLAS setting, from a dict of timings keyed
    by who ran them (or of results, whose `measure` is the timing)."""
    def get(who):
        return times[who] if measure is None else times[who][measure]
    return ratio(get(ours), min(get("mlp_default"), get("mlp_1thread")))


def summarise(results):
    """Tables (as lists of rows) and the issue's targets, from the raw results."""
    by_case = {r["case"]: r for r in results}
    evals, fits, threads, memory, targets, predictions = [], [], [], [], [], []
    log_predictions, predict_memory = [], []
    for r in results:
        e = r.get("eval_ms")  # None: a case measured for its memory only
        if e is not None:
            if "gflops" in r:
                g = r["dense_matmul_gflops"]["best"]
                # The case's own first-layer product X @ W alone, at its better thread
                # setting: what this shape allows, next to the square product's best.
                first = max(v for k, v in r["dense_matmul_gflops"].items()
                            if k.startswith("first_layer"))
                flops = [f"{r['gflops']['ours']:.1f}", f"{r['gflops']['mlp_1thread']:.1f}",
                         f"{g:.1f}", f"{ratio(r['gflops']['ours'], g):.0%}",
                         f"{first:.1f}", f"{ratio(r['gflops']['ours'], first):.0%}"]
            else:  # sparse: no dense flop count
                flops = ["-"] * 6
            evals.append([
                r["case"], f"{e['ours']:.2f}", f"{e['mlp_1thread']:.2f}",
                f"{e['mlp_default']:.2f}", f"{vs_mlp(e):.2f}", *flops,
            ])
        for key, table in (("predict_ms", predictions), ("log_proba_ms", log_predictions)):
            if key in r:
                p = r[key]
                table.append([
                    r["case"], *(f"{p[k]:.2f}" for k in (
                        "ours_default", "ours_1thread", "mlp_default", "mlp_1thread")),
                    f"{vs_mlp(p, 'ours_default'):.2f}",
                ])
        if "fit" in r:
            f = r["fit"]
            fits.append([
                r["case"], str(r["fit_max_iter"]),
                f"{f['ours']['seconds']:.3f} ({f['ours']['nfev']})",
                f"{f['mlp_1thread']['seconds']:.3f} ({f['mlp_1thread']['nfev']})",
                f"{f['mlp_default']['seconds']:.3f} ({f['mlp_default']['nfev']})",
                f"{vs_mlp(f, measure='seconds'):.2f}",
                f"{vs_mlp(f, measure='ms_per_eval'):.2f}",
            ])
            explicit = {k: f[k]["seconds"] for k in f if k.startswith("ours_")}
            threads.append([
                r["case"], f"{f['ours']['seconds']:.3f}",
                *[f"{v:.3f}" for v in explicit.values()],
                f"{ratio(f['ours']['seconds'], min(explicit.values())):.2f}",
                f"{e['ours_1thread']:.2f}", f"{e[f'ours_blas{N_CORES}']:.2f}",
                f"{e[f'ours_{N_CORES}threads']:.2f}",
            ])
        if "memory" in r:
            m = r["memory"]
            memory.append([
                r["case"], f"{r['X_mib']:.0f}",
                f"{m['ours']['rss_extra_mib']:.0f}", f"{m['ours']['traced_extra_mib']:.0f}",
                f"{m['mlp']['rss_extra_mib']:.0f}", f"{m['mlp']['traced_extra_mib']:.0f}",
                f"{ratio(m['ours']['rss_extra_mib'], r['X_mib']):.2f}",
            ])
            if "predict_proba" in m["ours"]:
                predict_memory.append([
                    r["case"], f"{m['ours']['predict_proba']['output_mib']:.0f}",
                    *(f"{m[who][name]['rss_extra_mib']:.0f}"
                      for name in ("predict_proba", "predict_log_proba")
                      for who in ("ours", "mlp")),
                ])

    def target(name, value, limit, ok, unit="x"):
        targets.append([name, f"{value:.2f}{unit}", limit, "met" if ok else "NOT MET"])

    for case in ("narrow", "medium2", "medium10", "reg1", "reg10"):
        if case in by_case:
            v = vs_mlp(by_case[case]["eval_ms"])
            target(f"{case}: time/eval vs MLP (its faster threads)", v, "<= 0.50x", v <= 0.5)
    if "wide" in by_case:
        r = by_case["wide"]
        v = vs_mlp(r["eval_ms"])
        target("wide: time/eval vs MLP (its faster threads)", v, "<= 0.90x", v <= 0.9)
        v = ratio(r["gflops"]["ours"], r["dense_matmul_gflops"]["best"])
        target("wide: GFLOP/s vs best dense matmul", 100 * v, ">= 60%", v >= 0.6, "%")
    for classes in ("2", "10"):
        b = by_case.get(f"medium{classes}-f32")
        if b:
            e = b["eval_ms"]
            v = ratio(e["ours_float64"], e["ours"])
            target(f"medium{classes}: float32 speed-up per eval", v, ">= 1.70x", v >= 1.7)
            if "fit" in b:
                dtype = b["fit"]["ours"]["coefs_dtype"]
                targets.append([f"medium{classes}-f32: coefs_ dtype", dtype, "float32",
                                "met" if dtype == "float32" else "NOT MET"])
    for case, limit in (("large", 0.5), ("many200", 0.5), ("large10", 0.1)):
        if case in by_case and "memory" in by_case[case]:
            r = by_case[case]
            v = ratio(r["memory"]["ours"]["rss_extra_mib"], r["X_mib"])
            target(f"{case}: extra peak RSS during fit / size of X", v, f"<= {limit:.2f}x",
                   v <= limit)
    # Many classes (issue 20): at 200 classes, an evaluation at most half of
    # MLPClassifier's time and the predictions at most 0.7 of it; at 2 and 10 classes
    # the predictions no slower than before (the ratios of the median of three runs of
    # the code before issue 20, benchmarks/levers.rst).
    if "many200" in by_case and "eval_ms" in by_case["many200"]:
        v = vs_mlp(by_case["many200"]["eval_ms"])
        target("many200: time/eval vs MLP (its faster threads)", v, "<= 0.50x", v <= 0.5)
    for case, limits in PREDICTION_LIMITS.items():
        for key, method in (("predict_ms", "predict_proba"),
                            ("log_proba_ms", "predict_log_proba")):
            if case in by_case and key in by_case[case]:
                v = vs_mlp(by_case[case][key], "ours_default")
                limit = limits[method]
                target(f"{case}: {method} vs MLP (its faster threads)", v,
                       f"<= {limit:.2f}x", v <= limit)
    for regression, classification in (("reg1", "medium2"), ("reg10", "medium10")):
        # The regressor's extra fit memory, as small as the classifier's on data of the
        # same shape (within 2 MiB of noise).
        r, c = by_case.get(regression), by_case.get(classification)
        if r and c and "memory" in r and "memory" in c:
            ours_r = r["memory"]["ours"]["rss_extra_mib"]
            ours_c = c["memory"]["ours"]["rss_extra_mib"]
            target(f"{regression}: extra fit RSS vs {classification}'s", ours_r - ours_c,
                   "<= +2 MiB", ours_r <= ours_c + 2, " MiB")
    for case in ("narrow", "medium2", "medium10"):
        if case in by_case and "fit" in by_case[case]:
            f = by_case[case]["fit"]
            best = min(f[k]["seconds"] for k in f if k.startswith("ours_"))
            v = ratio(f["ours"]["seconds"], best)
            target(f"{case}: default fit vs best explicit threads", v, "<= 1.10x", v <= 1.1)
    return {
        "per evaluation (ms, median; ratio = ours / MLP at its faster threads)": (
            ["case", "ours", "MLP 1 thr", "MLP default", "ratio", "GF/s ours",
             "GF/s MLP 1thr", "GF/s matmul", "ours/matmul", "GF/s X@W", "ours/X@W"],
            evals),
        "per fit (s, median; evaluations in brackets; same max_iter)": (
            ["case", "max_iter", "ours", "MLP 1 thr", "MLP default", "ratio fit",
             "ratio per eval"], fits),
        f"our threads (fit s; per-eval ms with n_threads x BLAS threads)": (
            ["case", "fit default", "fit limit 1", f"fit limit {N_CORES}", "default/best",
             "eval 1x1", f"eval 1x{N_CORES}", f"eval {N_CORES}x1"], threads),
        "predict_proba (ms, median; ratio = ours at default threads / MLP at its faster)": (
            ["case", "ours default", "ours 1 thr", "MLP default", "MLP 1 thr", "ratio"],
            predictions),
        "predict_log_proba (ms, median; ratio as for predict_proba)": (
            ["case", "ours default", "ours 1 thr", "MLP default", "MLP 1 thr", "ratio"],
            log_predictions),
        "extra peak memory during fit (MiB; fresh subprocess)": (
            ["case", "X", "ours RSS", "ours traced", "MLP RSS", "MLP traced",
             "ours RSS / X"], memory),
        "extra peak memory of predictions on the fit's rows (MiB RSS, output included)": (
            ["case", "output", "proba ours", "proba MLP", "log_proba ours",
             "log_proba MLP"], predict_memory),
        "targets (issues 4, 20 and 21)": (["target", "measured", "target", "status"],
                                          targets),
    }


def format_table(header, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = "  ".join("{:<%d}" % w for w in widths)
    out = [line.format(*header), line.format(*["-" * w for w in widths])]
    out += [line.format(*row) for row in rows]
    return "\n".join(out)


def environment():
    import scipy
    import sklearn

    import sklearn_bp

    return {
        "python": platform.python_version(), "platform": platform.platform(),
        "processor": platform.processor(), "cores": N_CORES,
        "numpy": np.__version__, "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__, "sklearn_bp": sklearn_bp.__version__,
        "blas": [{k: lib.get(k) for k in ("internal_api", "version", "num_threads",
                                          "architecture", "prefix")}
                 for lib in threadpool_info() if lib.get("user_api") == "blas"],
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="small data and few repetitions: a smoke run")
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--repeat", type=int, help="repetitions per evaluation timing")
    parser.add_argument("--fit-repeat", type=int, help="repetitions per fit timing")
    parser.add_argument("--max-iter", type=int, help="max_iter of the timed fits")
    parser.add_argument("--no-fit", action="store_true", help="skip the timed fits")
    parser.add_argument("--no-memory", action="store_true",
                        help="skip the memory subprocesses")
    parser.add_argument("--output", type=Path,
                        help="JSON file to write (default benchmarks/results/run-<time>.json)")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    env = environment()
    results = []
    with tempfile.TemporaryDirectory() as tmpdir:
        for case in args.cases:
            results.append(run_case(case, args, tmpdir))
    env["load_average_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    tables = summarise(results)
    print()
    for title, (header, rows) in tables.items():
        if rows:
            print(f"{title}\n{format_table(header, rows)}\n")
    elapsed = time.perf_counter() - started
    print(f"{'quick' if args.quick else 'full'} run: {elapsed:.0f} s, load average "
          f"{env['load_average']} at start, {env['load_average_end']} at end")

    output = args.output or RESULTS / time.strftime("run-%Y%m%d-%H%M%S.json")
    output.parent.mkdir(parents=True, exist_ok=True)
    document = {"command": " ".join(["python", "benchmarks/run.py", *(argv or sys.argv[1:])]),
                "quick": args.quick, "seconds": elapsed, "environment": env,
                "results": results,
                "tables": {t: {"header": h, "rows": r} for t, (h, r) in tables.items()}}
    text = json.dumps(document, indent=1, default=str)
    output.write_text(text)
    if args.output is None:
        (RESULTS / "latest.json").write_text(text)
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
