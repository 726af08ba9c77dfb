"""Demo: ``python -m sklearn_bp`` fits BackpropClassifier and MLPClassifier side by side.

Both run in the same pipeline (StandardScaler, then the network) on a dataset that ships
with scikit-learn, with the same architecture, penalty and iteration budget, and the demo
prints train/test accuracy, iterations, the test log-loss and fit time for each.

The log-loss is scikit-learn's ``log_loss`` of ``predict_proba`` on the held-out rows,
comparable across the two models. Their training costs are not: ours sums the
cross-entropies of independent sigmoid outputs (the classic course's cost), while
MLPClassifier uses a softmax for multiclass targets.
"""

import argparse
import time
import warnings

from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from . import BackpropClassifier, __version__

DATASETS = {
    "digits": load_digits,
    "iris": load_iris,
    "wine": load_wine,
    "breast_cancer": load_breast_cancer,
}


def _parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m sklearn_bp",
        description=(
            "Fit sklearn_bp.BackpropClassifier and scikit-learn's "
            'MLPClassifier(solver="lbfgs", activation="logistic") side by side on a '
            "dataset bundled with scikit-learn, and print accuracy, iterations, test "
            "log-loss and fit time."
        ),
    )
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="digits",
                        help="bundled dataset (default: %(default)s)")
    parser.add_argument("--hidden", type=int, nargs="+", default=[25], metavar="H",
                        help="hidden layer sizes, e.g. --hidden 50 25 (default: 25)")
    parser.add_argument("--alpha", type=float, default=1.0,
                        help="L2 penalty (default: %(default)s)")
    parser.add_argument("--max-iter", type=int, default=200,
                        help="maximum L-BFGS-B iterations (default: %(default)s)")
    parser.add_argument("--test-size", type=float, default=0.25,
                        help="held-out fraction (default: %(default)s)")
    parser.add_argument("--random-state", type=int, default=0,
                        help="seed for the split and the weights (default: %(default)s)")
    parser.add_argument("--no-mlp", action="store_true",
                        help="skip the MLPClassifier comparison")
    return parser.parse_args(argv)


def _fit_and_report(name, model, X_train, X_test, y_train, y_test):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        start = time.perf_counter()
        model.fit(X_train, y_train)
        seconds = time.perf_counter() - start
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    net = model[-1]
    return {
        "model": name,
        "train": model.score(X_train, y_train),
        "test": model.score(X_test, y_test),
        "iterations": net.n_iter_,
        "converged": "yes" if converged else "no",
        "log_loss": log_loss(y_test, model.predict_proba(X_test), labels=net.classes_),
        "fit_ms": 1000 * seconds,
    }


def main(argv=None):
    args = _parse_args(argv)
    X, y = DATASETS[args.dataset](return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=args.test_size, random_state=args.random_state, stratify=y
    )
    common = dict(hidden_layer_sizes=tuple(args.hidden), alpha=args.alpha,
                  max_iter=args.max_iter, random_state=args.random_state)
    models = [("BackpropClassifier", make_pipeline(StandardScaler(),
                                                   BackpropClassifier(**common)))]
    if not args.no_mlp:
        models.append(("MLPClassifier (1 BLAS thread)", make_pipeline(
            StandardScaler(),
            MLPClassifier(solver="lbfgs", activation="logistic", **common))))

    print(f"sklearn_bp {__version__} demo: {args.dataset}, {X.shape[0]} samples, "
          f"{X.shape[1]} features, {len(set(y))} classes; hidden={tuple(args.hidden)}, "
          f"alpha={args.alpha}, max_iter={args.max_iter}")
    rows = []
    for name, model in models:
        # MLPClassifier is timed at 1 BLAS thread, its faster setting on small data.
        with threadpool_limits(limits=1, user_api="blas"):
            rows.append(_fit_and_report(name, model, X_train, X_test, y_train, y_test))
    header = (f"{'model':<30} {'train acc':>9} {'test acc':>9} {'iters':>6} "
              f"{'converged':>9} {'test loss':>10} {'fit ms':>8}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['model']:<30} {r['train']:>9.4f} {r['test']:>9.4f} {r['iterations']:>6d} "
              f"{r['converged']:>9} {r['log_loss']:>10.5f} {r['fit_ms']:>8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
