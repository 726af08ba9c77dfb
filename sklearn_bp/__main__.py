"""Demo: ``python -m sklearn_bp`` fits BackpropClassifier and MLPClassifier side by side.

Each model runs in the same pipeline (StandardScaler, then the network) on a dataset that
ships with scikit-learn, with the same architecture, penalty and iteration budget, and
the demo prints train/test accuracy, iterations, the test log-loss and fit time for each.

BackpropClassifier is fitted twice when the targets have more than two classes: with its
default output layer, the classic course's independent sigmoids, and with
MLPClassifier's, a softmax. The second fits the same model as MLPClassifier from the same
initial weights, so its fit time compares like for like; the demo prints the two
training costs, which agree when both optimisers take the same path. With two classes,
the default (one logistic output unit) already is MLPClassifier's model.

The log-loss is scikit-learn's ``log_loss`` of ``predict_proba`` on the held-out rows,
comparable across all rows. The training costs of different output layers are not.

``--dataset diabetes`` (a regression problem) fits BackpropRegressor and
``MLPRegressor(solver="lbfgs", activation="logistic")`` instead, each with its targets
standardised (``TransformedTargetRegressor``), and prints train/test R^2, iterations,
the test mean squared error and fit time. For one output the two fit the same model from
the same initial weights, so their training costs agree while both optimisers take the
same path.
"""

import argparse
import math
import time
import warnings

import numpy as np

from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import (
    load_breast_cancer,
    load_diabetes,
    load_digits,
    load_iris,
    load_wine,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import log_loss, mean_squared_error
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from . import BackpropClassifier, BackpropRegressor, __version__

DATASETS = {
    "digits": load_digits,
    "iris": load_iris,
    "wine": load_wine,
    "breast_cancer": load_breast_cancer,
    "diabetes": load_diabetes,
}
#: The datasets whose targets are numbers to predict, not classes.
REGRESSION = {"diabetes"}


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m sklearn_bp",
        description=(
            "Fit sklearn_bp.BackpropClassifier and scikit-learn's "
            'MLPClassifier(solver="lbfgs", activation="logistic") side by side on a '
            "dataset bundled with scikit-learn, and print accuracy, iterations, test "
            "log-loss and fit time; on the regression dataset (diabetes), "
            "BackpropRegressor and MLPRegressor, with R^2 and test mean squared error."
        ),
    )
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="digits",
                        help="bundled dataset (default: %(default)s)")
    parser.add_argument("--hidden", type=_positive_int, nargs="+", default=[25],
                        metavar="H",
                        help="hidden layer sizes, e.g. --hidden 50 25 (default: 25)")
    parser.add_argument("--alpha", type=_non_negative_float, default=1.0,
                        help="L2 penalty (default: %(default)s)")
    parser.add_argument("--max-iter", type=_positive_int, default=200,
                        help="maximum L-BFGS-B iterations (default: %(default)s)")
    parser.add_argument("--test-size", type=_fraction, default=0.25,
                        help="held-out fraction, between 0 and 1; each side of the split "
                             "needs a sample of every class (default: %(default)s)")
    parser.add_argument("--random-state", type=_non_negative_int, default=0,
                        help="seed for the split and the weights (default: %(default)s)")
    parser.add_argument("--repeat", type=_positive_int, default=3, metavar="N",
                        help="fits per model; the shortest is reported, so that one-time "
                             "costs of a first call do not count (default: %(default)s)")
    parser.add_argument("--no-mlp", action="store_true",
                        help="skip the MLPClassifier (or MLPRegressor) comparison")
    return parser


def _whole_number(text, minimum):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
    return value


def _positive_int(text):
    return _whole_number(text, 1)


def _non_negative_int(text):
    return _whole_number(text, 0)


def _real_number(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not np.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def _non_negative_float(text):
    value = _real_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def _fraction(text):
    value = _real_number(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def _split_test_size(parser, test_size, y, dataset):
    """Refuse, as argparse refuses its options, a `test_size` that leaves a side of the
    stratified split with fewer samples than classes (of a regression's split, with
    fewer than the 2 samples an R^2 needs); the error gives the range that works on
    this dataset."""
    regression = dataset in REGRESSION
    n_samples, n_classes = len(y), 2 if regression else len(np.unique(y))
    n_test = math.ceil(test_size * n_samples)  # as train_test_split counts
    if n_classes <= n_test <= n_samples - n_classes:
        return
    least = math.ceil(1000 * n_classes / n_samples) / 1000
    most = math.floor(1000 * (n_samples - n_classes) / n_samples) / 1000
    while math.ceil(most * n_samples) > n_samples - n_classes:  # 0.7 * 10 > 7
        most = round(most - 0.001, 3)
    parser.error(
        f"argument --test-size: {test_size} of the {n_samples} samples of {dataset} "
        f"puts {n_test} in the test set and {n_samples - n_test} in the training set, "
        + ("but each needs at least 2 samples for its R^2" if regression else
           f"but each needs a sample of each of the {n_classes} classes")
        + f": use a value from {least} to {most}"
    )


def _fit_and_report(name, model, X_train, X_test, y_train, y_test, repeat):
    """Fit `model` `repeat` times (the same fit each time: its seed is fixed) and report
    the last fit, with the shortest of the fit times. A classifier is a pipeline, scored
    on the test set by its log-loss; a regressor a ``TransformedTargetRegressor`` of
    one, by its mean squared error."""
    times = []
    for _ in range(repeat):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            start = time.perf_counter()
            model.fit(X_train, y_train)
            times.append(time.perf_counter() - start)
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    regression = isinstance(model, TransformedTargetRegressor)
    net = model.regressor_[-1] if regression else model[-1]
    row = {
        "model": name,
        "output": net.out_activation_,  # both estimators record their output layer here
        "loss": net.loss_,
        "train": model.score(X_train, y_train),
        "test": model.score(X_test, y_test),
        "iterations": net.n_iter_,
        "converged": "yes" if converged else "no",
    }
    if regression:
        row["mse"] = mean_squared_error(y_test, model.predict(X_test))
    else:
        row["log_loss"] = log_loss(y_test, model.predict_proba(X_test),
                                   labels=net.classes_)
    row["fit_ms"] = 1000 * min(times)
    return row


def _print_rows(rows, titles, last):
    """The demo's table: one row per model; `titles` name the train score, the test
    score and the last measure, whose key and format `last` gives."""
    key, form = last
    header = (f"{'model':<30} {'output':<8} {titles[0]:>9} {titles[1]:>9} "
              f"{'iters':>6} {'converged':>9} {titles[2]:>10} {'fit ms':>8}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['model']:<30} {r['output']:<8} {r['train']:>9.4f} {r['test']:>9.4f} "
              f"{r['iterations']:>6d} {r['converged']:>9} {form.format(r[key])} "
              f"{r['fit_ms']:>8.1f}")


def _print_like_for_like(which, ours, mlp, mlp_name):
    print(f"\nLike for like, {which} fit the same model from the same initial "
          f"weights:\ntraining cost {ours['loss']:.12g} (ours) and "
          f"{mlp['loss']:.12g} ({mlp_name}) after {ours['iterations']} and "
          f"{mlp['iterations']} iterations; fit time ratio "
          f"{ours['fit_ms'] / mlp['fit_ms']:.2f} (ours / {mlp_name}'s).")


def _main_regression(args, X, y):
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=args.test_size, random_state=args.random_state)
    common = dict(hidden_layer_sizes=tuple(args.hidden), alpha=args.alpha,
                  max_iter=args.max_iter, random_state=args.random_state)

    def standardised(regressor):
        return TransformedTargetRegressor(make_pipeline(StandardScaler(), regressor),
                                          transformer=StandardScaler())

    models = [("BackpropRegressor", standardised(BackpropRegressor(**common)))]
    if not args.no_mlp:
        models.append(("MLPRegressor (1 BLAS thread)", standardised(
            MLPRegressor(solver="lbfgs", activation="logistic", **common))))
    print(f"sklearn_bp {__version__} demo: {args.dataset}, {X.shape[0]} samples, "
          f"{X.shape[1]} features, a regression target (standardised for the fit); "
          f"hidden={tuple(args.hidden)}, alpha={args.alpha}, max_iter={args.max_iter}; "
          f"fit time: the shortest of {args.repeat} fit(s)")
    rows = []
    for name, model in models:
        with threadpool_limits(limits=1, user_api="blas"):
            rows.append(_fit_and_report(name, model, X_train, X_test, y_train,
                                                  y_test, args.repeat))
    _print_rows(rows, ("train R2", "test R2", "test MSE"), ("mse", "{:>10.1f}"))
    if not args.no_mlp:
        _print_like_for_like("both rows", *rows, "MLPRegressor")
    return 0


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    X, y = DATASETS[args.dataset](return_X_y=True)
    _split_test_size(parser, args.test_size, y, args.dataset)
    if args.dataset in REGRESSION:
        return _main_regression(args, X, y)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=args.test_size, random_state=args.random_state, stratify=y
    )
    common = dict(hidden_layer_sizes=tuple(args.hidden), alpha=args.alpha,
                  max_iter=args.max_iter, random_state=args.random_state)
    # MLPClassifier's output layer: a softmax over the classes, one logistic unit for two
    mlp_output = "softmax" if len(np.unique(y)) > 2 else "logistic"
    outputs = ["logistic"] + (["softmax"] if mlp_output == "softmax" else [])
    models = [("BackpropClassifier", make_pipeline(
        StandardScaler(), BackpropClassifier(output_activation=output, **common)))
        for output in outputs]
    if not args.no_mlp:
        models.append(("MLPClassifier (1 BLAS thread)", make_pipeline(
            StandardScaler(),
            MLPClassifier(solver="lbfgs", activation="logistic", **common))))

    print(f"sklearn_bp {__version__} demo: {args.dataset}, {X.shape[0]} samples, "
          f"{X.shape[1]} features, {len(set(y))} classes; hidden={tuple(args.hidden)}, "
          f"alpha={args.alpha}, max_iter={args.max_iter}; fit time: the shortest of "
          f"{args.repeat} fit(s)")
    rows = []
    for name, model in models:
        # MLPClassifier is timed at 1 BLAS thread, its faster setting on small data.
        with threadpool_limits(limits=1, user_api="blas"):
            rows.append(_fit_and_report(name, model, X_train, X_test, y_train, y_test,
                                        args.repeat))
    _print_rows(rows, ("train acc", "test acc", "test loss"), ("log_loss", "{:>10.5f}"))
    if not args.no_mlp:
        ours = next(r for r in rows if r["output"] == mlp_output)
        _print_like_for_like(f"the {mlp_output} rows", ours, rows[-1], "MLPClassifier")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
