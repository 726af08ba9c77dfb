"""What happens around and between the optimiser's iterations.

Private helpers of the estimators: the solvers, the early-stopping split and score, the
bridge to scikit-learn's callbacks (:mod:`sklearn.callback`, scikit-learn >= 1.9), and
the monitor that scipy calls after each iteration. The monitor keeps the last completed
iterate, so that a fit stopped by early stopping, by a callback or by
``KeyboardInterrupt`` still ends with usable weights.
"""

import math
import sys
from collections import deque
from numbers import Integral

import numpy as np
import sklearn
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split

from . import backprop
from ._loss import BlockOutput

try:  # scikit-learn >= 1.9
    from sklearn.callback import CallbackSupportMixin

    CALLBACKS_SUPPORTED = True
except ImportError:  # scikit-learn 1.6 - 1.8 has no sklearn.callback
    CALLBACKS_SUPPORTED = False

    class CallbackSupportMixin:
        """Stand-in for ``sklearn.callback.CallbackSupportMixin`` (scikit-learn < 1.9)."""

        def set_callbacks(self, *callbacks):
            """Set callbacks: needs scikit-learn >= 1.9, which this one is not.

            Raises
            ------
            ImportError
                Always: ``sklearn.callback`` appeared in scikit-learn 1.9.
            """
            raise ImportError(
                "set_callbacks needs scikit-learn >= 1.9 (the sklearn.callback module), "
                f"but scikit-learn {sklearn.__version__} is installed. Upgrade "
                "scikit-learn, or follow the fit with verbose=1 and loss_curve_."
            )


#: scipy.optimize.minimize's method for each value of ``solver``.
SOLVER_METHODS = {"lbfgs": "L-BFGS-B", "cg": "CG", "bfgs": "BFGS", "tnc": "TNC"}

#: The default of ``max_fun``; solvers without an evaluation limit need it unchanged.
MAX_FUN_DEFAULT = 15000


class StopFit(Exception):
    """Raised from the scipy callback to end the fit; ``reason`` says why."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


# ----------------------------------------------------------------------------------------
# Early stopping: the split and the score
# ----------------------------------------------------------------------------------------


def validation_split(n_samples, stratify, validation_fraction, random_state):
    """Sorted indices of the training rows and of the held-out rows.

    The held-out rows are those of ``train_test_split(np.arange(n_samples),
    test_size=validation_fraction, stratify=stratify, random_state=random_state)``;
    `stratify` is the class labels of binary and multiclass targets, None otherwise.
    """
    try:
        train, held_out = train_test_split(
            np.arange(n_samples), test_size=validation_fraction, stratify=stratify,
            random_state=random_state,
        )
    except ValueError as exc:
        why = _stratification_problem(stratify, validation_fraction) or (
            f"{exc} Increase validation_fraction, provide more samples of each class, or "
            "set early_stopping=False.")
        raise ValueError(
            f"early_stopping=True could not hold out validation_fraction="
            f"{validation_fraction} of the {n_samples} samples: {why}"
        ) from exc
    return np.sort(train), np.sort(held_out)


def _stratification_problem(y, validation_fraction):
    """Why the labels `y` (None: no stratification) have no stratified hold-out of
    `validation_fraction`, with the fix, in words; None if the reason is another."""
    if y is None:
        return None
    labels, counts = np.unique(y, return_counts=True)
    few = labels[counts < 2].tolist()
    if few:
        which = (f"class {few[0]!r} has" if len(few) == 1
                 else f"classes {', '.join(map(repr, few))} have")
        return (
            f"the hold-out is stratified, so every class needs at least 2 samples (one "
            f"to train on, one to hold out), but {which} only 1. Provide more samples "
            f"of {'it' if len(few) == 1 else 'them'}, or set early_stopping=False."
        )
    n_samples, n_classes = y.shape[0], labels.shape[0]
    # As train_test_split counts. Every class has 2 samples or more, so n_samples is at
    # least 2 n_classes, and fractions from n_classes / n_samples on work.
    held_out = math.ceil(validation_fraction * n_samples)
    if held_out < n_classes:
        least = math.ceil(1000 * n_classes / n_samples) / 1000
        return (
            f"it holds out {held_out}, fewer than the {n_classes} classes, and a "
            f"stratified hold-out needs one of each. Increase validation_fraction to at "
            f"least {least}, provide more samples, or set early_stopping=False."
        )
    if n_samples - held_out < n_classes:
        most = math.floor(1000 * (n_samples - n_classes) / n_samples) / 1000
        while math.ceil(most * n_samples) > n_samples - n_classes:  # 0.7 * 10 > 7
            most = round(most - 0.001, 3)
        return (
            f"it leaves {n_samples - held_out} to train on, fewer than the {n_classes} "
            f"classes, and a stratified split needs one of each. Decrease "
            f"validation_fraction to at most {most}, provide more samples, or set "
            "early_stopping=False."
        )
    return None


class ValidationScore:
    """Accuracy of the network ``theta`` on the held-out rows, as :meth:`score` gives it.

    Binary and multiclass targets: weighted fraction of rows whose predicted class is
    right; multilabel targets: of rows whose labels are all right. `targets` are those
    of the fit (unit labels or a compact indicator, see :mod:`sklearn_bp._targets`). The
    forward passes are the loss object's (`loss`), with as many threads as predictions
    take, within the caller's BLAS budget read now: the fit holds BLAS at one thread
    while it scores.
    """

    def __init__(self, loss, X, targets, sample_weight):
        check_validation_weights(sample_weight)
        self.loss, self.X, self.sample_weight = loss, X, sample_weight
        self.targets = targets
        self.n_threads = loss.forward_threads(X)

    def __call__(self, theta):
        correct = correct_rows(self.loss, theta, self.X, self.targets,
                               n_threads=self.n_threads)
        return float(np.average(correct, weights=self.sample_weight))


class R2Score:
    """The coefficient of determination R^2 of the network ``theta`` on the held-out
    rows, as a regressor's :meth:`score` gives it (weighted by `sample_weight`, averaged
    over the outputs), with the forward passes of :class:`ValidationScore`."""

    def __init__(self, loss, X, Y, sample_weight):
        check_validation_weights(sample_weight)
        self.loss, self.X, self.Y, self.sample_weight = loss, X, Y, sample_weight
        self.n_threads = loss.forward_threads(X)

    def __call__(self, theta):
        coefs, intercepts = backprop.unpack(theta.astype(self.loss.dtype),
                                            self.loss.layer_sizes)
        prediction = self.loss.forward(
            coefs, intercepts, self.X, n_threads=self.n_threads,
            output=prediction_output(self.loss.output_activation, self.Y.shape[1]))
        return float(r2_score(self.Y, prediction, sample_weight=self.sample_weight))


def r2_from_sums(residual, total):
    """R^2 averaged over the outputs, from each output's weighted sums of squares of the
    residuals and of the deviations from the mean, as ``sklearn.metrics.r2_score``
    gives it (an output whose targets are constant scores 1 if predicted exactly, 0
    otherwise)."""
    residual, total = np.atleast_1d(residual), np.atleast_1d(total)
    scores = np.ones(residual.shape[0])
    valid = (total != 0) & (residual != 0)
    scores[valid] = 1 - residual[valid] / total[valid]
    scores[(residual != 0) & (total == 0)] = 0.0
    return float(np.mean(scores))


def check_validation_weights(sample_weight):
    if sample_weight is not None and not np.any(sample_weight > 0):
        raise ValueError(
            "early_stopping=True held out samples whose sample_weight is 0, so the "
            "validation score is undefined. Change random_state or "
            "validation_fraction, or set early_stopping=False."
        )


def correct_rows(loss, theta, X, targets, n_threads=1):
    """Which rows of `X` the network ``theta`` predicts right; `targets` are unit labels
    or a compact indicator (:mod:`sklearn_bp._targets`), `loss` the network's loss
    object. The predictions are made block by block (:data:`PREDICTED`): no logits of
    all the rows."""
    coefs, intercepts = backprop.unpack(theta.astype(loss.dtype), loss.layer_sizes)
    if targets.ndim == 2:  # multilabel: every label right
        predicted = loss.forward(coefs, intercepts, X, n_threads=n_threads,
                                 output=predicted_labels(targets.shape[1]))
        return np.all(predicted == targets, axis=1)
    predicted = loss.forward(coefs, intercepts, X, n_threads=n_threads, output=PREDICTED)
    return predicted == targets


# ----------------------------------------------------------------------------------------
# What predictions keep of each block's logits (see _loss.BlockOutput)
# ----------------------------------------------------------------------------------------


def _predicted_units(Z, out, buffers):
    if Z.shape[1] == 1:  # one logistic unit: unit 0 where z > 0, else -1 (none)
        np.greater(Z[:, 0], 0.0, out=out, casting="unsafe")
        out -= 1
    else:
        np.argmax(Z, axis=1, out=out)


#: The predicted unit of each row, as unit labels (:mod:`sklearn_bp._targets`): the
#: largest logit's, or for one logistic unit 0 where its logit is positive, -1 elsewhere.
PREDICTED = BlockOutput(_predicted_units, dtype=np.intp)


def predicted_labels(n_labels, dtype=bool):
    """The multilabel predictions, ``Z > 0``, as a matrix of `dtype`."""
    return BlockOutput(
        lambda Z, out, buffers: np.greater(Z, 0.0, out=out, casting="unsafe"),
        columns=(n_labels,), dtype=dtype)


def in_float64(Z, out):
    """The block's logits in `out` (float64, of their shape): converted there unless
    computed there (an in-place output)."""
    if Z is not out:
        np.copyto(out, Z)
    return out


def _copy(Z, out, buffers):
    in_float64(Z, out)


def logits_output(n_outputs):
    """The logits themselves, in float64 (converted block by block from float32)."""
    return BlockOutput(_copy, columns=(n_outputs,), in_place=True)


def _exp(Z, out, buffers):
    np.exp(Z, out=out, dtype=np.float64)


def prediction_output(output_activation, n_outputs):
    """A regressor's predictions from its output logits (F3), block by block in float64:
    the logits themselves for identity outputs, ``e^Z`` for exp outputs."""
    if output_activation == "exp":
        return BlockOutput(_exp, columns=(n_outputs,), in_place=True)
    return logits_output(n_outputs)


# ----------------------------------------------------------------------------------------
# scikit-learn callbacks
# ----------------------------------------------------------------------------------------


class CallbackBridge:
    """Maps scipy's per-iteration callback to scikit-learn's callback hooks.

    Mirrors ``_LbfgsCallbackBridge`` of ``sklearn.linear_model.LogisticRegression``:
    iteration ``k`` is a subtask of the fit task, begun with the weights it starts from
    and ended with the weights it produced. The subtask begun after the last iteration
    never runs; :meth:`close` ends it as an empty task, so that every begin has its end.
    A callback whose ``on_fit_task_end`` returns True asks the fit to stop.
    """

    def __init__(self, callback_ctx, estimator, X, y, metadata, reconstruct, task_name,
                 theta0):
        self._callback_ctx, self._estimator = callback_ctx, estimator
        self._X, self._y, self._metadata = X, y, metadata
        self._reconstruct, self._task_name = reconstruct, task_name
        self._iter_ctx = None
        self.begin_iteration(theta0, n_iter=0, loss_curve=[])

    def _hook_kwargs(self, theta, n_iter, loss_curve):
        return dict(
            estimator=self._estimator, X=self._X, y=self._y, metadata=self._metadata,
            reconstruction_attributes=lambda: self._reconstruct(theta, n_iter, loss_curve),
        )

    def begin_iteration(self, theta, n_iter, loss_curve):
        self._iter_ctx = self._callback_ctx.subcontext(task_name=self._task_name)
        self._iter_ctx.call_on_fit_task_begin(**self._hook_kwargs(theta, n_iter, loss_curve))

    def end_iteration(self, theta, n_iter, loss_curve):
        """End the current iteration's task; True if a callback asks to stop."""
        ctx, self._iter_ctx = self._iter_ctx, None
        return bool(ctx.call_on_fit_task_end(**self._hook_kwargs(theta, n_iter, loss_curve)))

    def close(self):
        ctx, self._iter_ctx = self._iter_ctx, None
        if ctx is not None:
            ctx.call_on_fit_task_end(estimator=self._estimator)


# ----------------------------------------------------------------------------------------
# The monitor scipy calls after each iteration
# ----------------------------------------------------------------------------------------


class IterationMonitor:
    """Bookkeeping between iterations; it never writes to the estimator.

    After each completed iteration it records the iterate, its cost (``loss_curve``),
    prints the verbose line, scores the held-out rows and keeps the best weights (early
    stopping), forwards the iteration to scikit-learn's callbacks, and raises
    :class:`StopFit` to end the fit (early stopping, a callback's request, or `max_iter`
    for a solver whose scipy method has no iteration limit). The last completed iterate
    stays available whatever interrupts the fit.

    Parameters
    ----------
    objective : callable
        ``theta -> (cost, grad)``; used only to cost an iterate that scipy's callback
        reports without its cost (TNC).
    theta0 : ndarray
        Initial weights.
    max_iter : int or None
        Iteration limit to enforce here (None when scipy enforces it).
    verbose : int
        If positive, print one line per iteration.
    validation : ValidationScore or None
        Early stopping's held-out score; None without early stopping.
    tol, n_iter_no_change : float, int
        Early stopping: stop after `n_iter_no_change` consecutive iterations that do not
        improve the best validation score by at least `tol`.
    bridge : CallbackBridge or None
        scikit-learn's callbacks, if any.
    """

    def __init__(self, objective, theta0, *, max_iter=None, verbose=0, validation=None,
                 tol=0.0, n_iter_no_change=10, bridge=None):
        self.objective, self.max_iter, self.verbose = objective, max_iter, verbose
        self.validation, self.tol, self.n_iter_no_change = validation, tol, n_iter_no_change
        self.bridge = bridge
        self.n_iter = 0
        self.x, self.fun = theta0, None
        self.loss_curve = []
        self.validation_scores = [] if validation is not None else None
        self.best_validation_score = -np.inf if validation is not None else None
        self.best_x, self.best_fun, self.best_iter = None, None, None
        self._no_improvement = 0
        self._evaluations = deque(maxlen=4)

    def evaluated(self, theta, cost, grad):
        """Remember an evaluation: the verbose line's gradient and TNC's cost need it.
        Of the gradient, the largest absolute component: the quantity that the solvers
        compare with `tol` (scipy's ``gtol``, for L-BFGS-B of the projected gradient,
        which without bounds is the gradient)."""
        grad_max = float(np.max(np.abs(grad), initial=0.0))
        self._evaluations.append((theta.copy(), float(cost), grad_max))

    def _lookup(self, x):
        for theta, cost, grad_max in reversed(self._evaluations):
            if np.array_equal(theta, x):
                return cost, grad_max
        return None

    def scipy_callback(self, method):
        """The ``callback`` for ``minimize(method=method)``."""
        if method == "TNC":  # TNC only knows callback(xk)
            def callback(xk):
                self.iteration(xk, None)
        else:
            def callback(intermediate_result):
                self.iteration(intermediate_result.x, intermediate_result.fun)
        return callback

    def iteration(self, x, fun):
        """One completed iteration at ``x``; raises StopFit to end the fit."""
        x = np.array(x, dtype=np.float64, copy=True)  # scipy may reuse its buffer
        known = self._lookup(x)
        if fun is None:
            fun = known[0] if known is not None else self.objective(x)[0]
        self.n_iter += 1
        self.x, self.fun = x, float(fun)
        self.loss_curve.append(self.fun)

        stop = None
        score_text = ""
        if self.validation is not None:
            score = self.validation(x)
            self.validation_scores.append(score)
            if score < self.best_validation_score + self.tol:
                self._no_improvement += 1
            else:
                self._no_improvement = 0
            if score > self.best_validation_score:
                self.best_validation_score = score
                self.best_x, self.best_fun, self.best_iter = x, self.fun, self.n_iter
            score_text = f", validation score = {score:.6f}"
            if self._no_improvement >= self.n_iter_no_change:
                stop = "early_stopping"

        if self.verbose:
            grad_max = known[1] if known is not None else float("nan")
            print(
                f"Iteration {self.n_iter}, loss = {self.fun:.8f}, "
                f"max |gradient| = {grad_max:.3e}{score_text}",
                file=sys.stdout,
            )
            if stop == "early_stopping":
                print(
                    f"Validation score did not improve by at least tol={self.tol} for "
                    f"{self.n_iter_no_change} consecutive iterations. Stopping.",
                    file=sys.stdout,
                )

        if self.bridge is not None:
            if self.bridge.end_iteration(x, self.n_iter, list(self.loss_curve)):
                stop = stop or "callback"
        if stop is None and self.max_iter is not None and self.n_iter >= self.max_iter:
            stop = "max_iter"
        if stop is not None:
            raise StopFit(stop)
        if self.bridge is not None:
            self.bridge.begin_iteration(x, self.n_iter, list(self.loss_curve))

    def close(self):
        if self.bridge is not None:
            self.bridge.close()


def split_random_state(random_state, rng):
    """The early-stopping split's random state: the int itself, else the shared RNG."""
    return random_state if isinstance(random_state, Integral) else rng
