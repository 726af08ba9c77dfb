"""What the backpropagation estimators share: the network, its fit and its forward pass.

Private. :class:`BaseBackprop` holds everything that does not depend on the targets:
the parameters of the network and of the optimiser, the initial weights, the one
``scipy.optimize.minimize`` call over an objective of the loss object
(:mod:`sklearn_bp._loss`), early stopping, callbacks, interruption, persistence, and the
output logits of a fitted network. The estimators say what the targets are: they
validate and encode them, build the objective, and turn logits into predictions.
"""

import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import _safe_indexing, check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import validate_data

from . import _monitor, backprop
from ._loss import NetworkLoss
from ._monitor import MAX_FUN_DEFAULT, SOLVER_METHODS, CallbackSupportMixin
from ._version import __version__


def glorot_init(layer_sizes, activation, dtype, random_state):
    """Glorot-uniform weights and intercepts, drawn exactly as ``MLPClassifier`` draws them.

    For each layer in order, ``W`` then ``b`` are drawn from ``uniform(-bound, bound)``
    with ``bound = sqrt(factor / (fan_in + fan_out))``, ``factor = 2`` for logistic units
    and 6 otherwise. Depends only on the layer sizes and the random state.
    """
    factor = 2.0 if activation == "logistic" else 6.0
    coefs, intercepts = [], []
    for fan_in, fan_out in zip(layer_sizes[:-1], layer_sizes[1:]):
        bound = np.sqrt(factor / (fan_in + fan_out))
        coefs.append(random_state.uniform(-bound, bound, (fan_in, fan_out)).astype(dtype))
        intercepts.append(random_state.uniform(-bound, bound, fan_out).astype(dtype))
    return backprop.pack(coefs, intercepts)


def training_rows(given, rows, validated_rows):
    """The `rows` of data as given to fit, for the callbacks (which then see the caller's
    types, a DataFrame's columns for example); `validated_rows`, the same rows validated,
    where the given data have no row indexing: sparse matrices (COO, DIA and BSR have
    none; the callbacks then see CSR) and objects that only implement ``__array__``."""
    if sp.issparse(given) or not hasattr(given, "__getitem__"):
        return validated_rows
    return _safe_indexing(given, rows)


def reject_dask_collections(estimator, *arrays):
    """Refuse dask collections given as ``X, y, sample_weight`` to `estimator`'s fit,
    before validation would compute them into memory."""
    name = type(estimator).__name__
    for argument, array in zip(("X", "y", "sample_weight"), arrays):
        if hasattr(array, "__dask_graph__"):
            raise TypeError(
                f"{name}.fit got a dask collection as {argument} "
                f"({type(array).__name__}) and would compute all of it into this "
                f"process's memory. Use sklearn_bp.dask.Dask{name} to fit on the Dask "
                "workers, or pass in-memory arrays (for example X.compute())."
            )


class BaseBackprop(CallbackSupportMixin, BaseEstimator):
    """The network, its fit by backpropagation and its forward pass (see the module).

    Subclasses define ``fit`` (validate, encode the targets, build the objective, call
    :meth:`_fit_objective`), :meth:`_output_activation`, :meth:`_check_warm_start` and
    the predictions.
    """

    _parameter_constraints = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(backprop.ACTIVATIONS))],
        "solver": [StrOptions(set(SOLVER_METHODS))],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"),
                             Options(Real, {np.inf})],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
    }

    def __getstate__(self):
        return dict(super().__getstate__(), _sklearn_bp_version=__version__)

    def __setstate__(self, state):
        state = dict(state)
        version = state.pop("_sklearn_bp_version", "unknown")
        if version != __version__:
            warnings.warn(
                f"This {type(self).__name__} was saved with sklearn_bp {version} and is "
                f"loaded with sklearn_bp {__version__}; this might give wrong results. "
                "Refit it, or load it with the version that saved it.",
                UserWarning,
                stacklevel=2,
            )
        super().__setstate__(state)

    # ------------------------------------------------------------------------------------
    # Fitting
    # ------------------------------------------------------------------------------------

    def _hold_out(self, X, targets, y, sample_weight, stratify, given):
        """Early stopping's split of the validated rows (stratified by `stratify`, or
        not if None): the held-out ``(X, targets, sample_weight)`` for the validation
        score, then the training rows of `X`, `targets`, `y`, `sample_weight` and of
        `given`, the ``(X, y)`` given to fit, for the callbacks."""
        rng = check_random_state(self.random_state)
        train, held_out = _monitor.validation_split(
            y.shape[0], stratify, self.validation_fraction,
            _monitor.split_random_state(self.random_state, rng),
        )
        sw = sample_weight
        validation = (X[held_out], targets[held_out], None if sw is None else sw[held_out])
        X, targets, y = X[train], targets[train], y[train]
        X_given, y_given = given
        given = training_rows(X_given, train, X), training_rows(y_given, train, y)
        return validation, X, targets, y, None if sw is None else sw[train], given

    def _hidden_sizes(self):
        sizes = np.atleast_1d(np.asarray(self.hidden_layer_sizes))
        if sizes.ndim == 1 and sizes.size == 0:
            return ()  # no hidden layer: (multinomial) logistic regression
        if sizes.ndim != 1 or not np.issubdtype(sizes.dtype, np.integer):
            raise ValueError(
                "hidden_layer_sizes must be a positive int or a sequence of positive "
                f"ints (() for no hidden layer), got {self.hidden_layer_sizes!r}."
            )
        if np.any(sizes < 1):
            layer = int(np.argmax(sizes < 1))
            raise ValueError(
                f"hidden_layer_sizes must be >= 1 in every layer, got "
                f"{self.hidden_layer_sizes!r}: hidden layer {layer + 1} has "
                f"{int(sizes[layer])} units. Give it at least one unit, or remove it."
            )
        return tuple(int(h) for h in sizes)

    def _network_loss(self, layer_sizes, dtype):
        """The network's loss object (:mod:`sklearn_bp._loss`), computing in `dtype`."""
        return NetworkLoss(layer_sizes, activation=self.activation,
                           output_activation=self._output_activation(), alpha=self.alpha,
                           dtype=dtype)

    def _output_activation(self):
        """The output layer (F3) that this estimator's targets and parameters call for."""
        raise NotImplementedError

    def _check_warm_start(self, targets):
        """Refuse to continue a fit whose targets (`targets`, as for
        :meth:`_fit_objective`) are not those of the previous fit."""
        raise NotImplementedError

    def _fit_objective(self, objective, targets, *, validation=None, callback_data=None):
        """The part of ``fit`` after validation: initialise, minimise, set attributes.

        `objective` is the cost and gradient on the training rows, wherever they are (an
        ``Objective`` of :mod:`sklearn_bp._loss`, whose ``loss`` gives the layer sizes
        and the dtype); `targets` the fitted attributes that describe the targets (for
        example ``classes_``), set with the others; `validation` early stopping's score
        ``theta -> score`` on the held-out rows, or None; `callback_data` the ``(X, y,
        metadata)`` shown to scikit-learn's callbacks (None: the callbacks see no data).
        """
        layer_sizes, dtype = objective.loss.layer_sizes, objective.loss.dtype
        if self.warm_start and hasattr(self, "coefs_"):
            self._check_warm_start(targets)
            if tuple(self._layer_sizes()) != layer_sizes:
                raise ValueError(
                    "warm_start=True needs the same network: the previous fit had layer "
                    f"sizes {self._layer_sizes()}, this one {layer_sizes}. Set "
                    "warm_start=False to start afresh."
                )
            theta0 = backprop.pack(self.coefs_, self.intercepts_).astype(np.float64)
        else:
            rng = check_random_state(self.random_state)
            theta0 = glorot_init(layer_sizes, self.activation, dtype, rng)
            theta0 = theta0.astype(np.float64)

        fitted = dict(targets, n_outputs_=layer_sizes[-1], n_layers_=len(layer_sizes),
                      out_activation_=objective.loss.output_activation)
        X_seen, y_seen, metadata = callback_data or (None, None, None)
        callback_ctx = bridge = None
        if _monitor.CALLBACKS_SUPPORTED:
            callback_ctx = self._init_callback_context(max_subtasks=self.max_iter + 1)
            callback_ctx.call_on_fit_task_begin(
                estimator=self, X=X_seen, y=y_seen, metadata=metadata
            )
            if getattr(self, "_skl_callbacks", None):

                def reconstruct(theta, n_iter, loss_curve):
                    coefs, intercepts = backprop.unpack(theta.astype(dtype), layer_sizes)
                    attributes = dict(fitted, coefs_=coefs, intercepts_=intercepts,
                                      n_iter_=n_iter, loss_curve_=loss_curve)
                    if loss_curve:
                        attributes["loss_"] = loss_curve[-1]
                    return attributes

                bridge = _monitor.CallbackBridge(
                    callback_ctx, self, X_seen, y_seen, metadata, reconstruct,
                    f"{self.solver}-iter", theta0,
                )

        outcome = self._minimize(theta0, objective, validation=validation, bridge=bridge)

        for name, value in fitted.items():
            setattr(self, name, value)
        self.coefs_, self.intercepts_ = backprop.unpack(
            outcome["theta"].astype(dtype), layer_sizes
        )
        self.n_iter_ = outcome["n_iter"]
        self.loss_ = outcome["loss"]
        self.loss_curve_ = outcome["loss_curve"]
        self.validation_scores_ = outcome["validation_scores"]
        self.best_validation_score_ = outcome["best_validation_score"]
        if callback_ctx is not None:
            callback_ctx.call_on_fit_task_end(
                estimator=self, X=X_seen, y=y_seen, metadata=metadata,
                reconstruction_attributes={},
            )
        return self

    def _solver_options(self):
        """scipy's method and options for `solver`; refuses options it cannot honour."""
        method = SOLVER_METHODS[self.solver]
        if self.solver in ("cg", "bfgs") and self.max_fun != MAX_FUN_DEFAULT:
            raise ValueError(
                f"solver={self.solver!r} (scipy's {method}) has no limit on the number of "
                f"cost evaluations, so max_fun={self.max_fun} cannot be honoured. Leave "
                "max_fun at its default and limit the fit with max_iter, or use "
                "solver='lbfgs' or solver='tnc'."
            )
        options = {"gtol": self.tol}
        if self.solver != "tnc":  # scipy's TNC has no iteration limit: see _minimize
            options["maxiter"] = self.max_iter
        if self.solver in ("lbfgs", "tnc"):
            options["maxfun"] = self.max_fun
        return method, options

    def _minimize(self, theta0, objective, *, validation=None, bridge=None):
        """One ``scipy.optimize.minimize`` call with the method of `solver`.

        Returns a dict: ``theta`` (the weights to keep), ``loss`` (their cost),
        ``n_iter``, ``loss_curve``, ``validation_scores``, ``best_validation_score``.
        An ``IterationMonitor`` sees each iteration: it prints the verbose line, runs
        early stopping (`validation`) and scikit-learn's callbacks (`bridge`). When it
        ends the fit, or on ``KeyboardInterrupt``, the last completed iterate is kept
        (the best-scoring one with early stopping).
        """
        method, options = self._solver_options()
        monitor = _monitor.IterationMonitor(
            objective, theta0, max_iter=self.max_iter if self.solver == "tnc" else None,
            verbose=self.verbose, validation=validation, tol=self.tol,
            n_iter_no_change=self.n_iter_no_change, bridge=bridge,
        )

        def fun(theta):
            cost, grad = objective(theta)
            if not (np.isfinite(cost) and np.all(np.isfinite(grad))):
                raise ValueError(
                    "The cost or its gradient became non-finite (inf or NaN) during the "
                    "fit, so the optimiser would produce non-finite weights. The data are "
                    "probably badly scaled: standardise X (for example with "
                    "StandardScaler), or use a bounded activation such as 'logistic'."
                )
            monitor.evaluated(theta, cost, grad)
            return cost, grad

        result = stopped = None
        try:
            with objective:  # its evaluation session: threads, BLAS at one thread
                result = minimize(
                    fun, theta0, method=method, jac=True,
                    callback=monitor.scipy_callback(method), options=options,
                )
        except (_monitor.StopFit, KeyboardInterrupt) as exc:
            if monitor.n_iter == 0:
                raise  # nothing completed, nothing to keep
            stopped = exc
        finally:
            monitor.close()

        n_iter = monitor.n_iter
        if result is not None:
            theta, loss = result.x, float(result.fun)
        else:
            theta, loss = monitor.x, monitor.fun
        kept = n_iter
        if monitor.best_x is not None:  # early stopping keeps the best-scoring weights
            theta, loss, kept = monitor.best_x, monitor.best_fun, monitor.best_iter
        validation_scores = monitor.validation_scores
        best_validation_score = monitor.best_validation_score
        if validation is not None and n_iter == 0:
            # The fit ended before its first iteration (the initial gradient already met
            # tol): the held-out score is that of the weights it returns.
            best_validation_score = validation(theta)
            validation_scores = [best_validation_score]
        if not np.all(np.isfinite(theta)):
            raise ValueError(
                "The optimiser produced non-finite weights (inf or NaN). The data are "
                "probably badly scaled: standardise X (for example with StandardScaler) "
                "or increase alpha."
            )

        reason = getattr(stopped, "reason", None)
        if isinstance(stopped, KeyboardInterrupt) or reason == "callback":
            cause = ("KeyboardInterrupt" if isinstance(stopped, KeyboardInterrupt)
                     else "a callback asking to stop")
            warnings.warn(
                f"The fit was interrupted by {cause} after {n_iter} iteration(s), before "
                f"convergence. {type(self).__name__} keeps the weights of iteration "
                f"{kept}; fit again with warm_start=True to continue.",
                ConvergenceWarning,
                stacklevel=5,
            )
        elif reason == "max_iter":
            warnings.warn(
                f"{method} stopped before convergence after {n_iter} iteration(s): "
                f"max_iter was reached. Increase max_iter (now {self.max_iter}) to reach "
                "convergence.",
                ConvergenceWarning,
                stacklevel=5,
            )
        elif result is not None and not result.success:
            message = result.message
            message = message.decode() if isinstance(message, bytes) else str(message)
            hint = (
                f" Increase max_iter (now {self.max_iter})"
                if n_iter >= self.max_iter
                else f" Increase max_fun (now {self.max_fun})"
                if "maxfun" in options and result.nfev >= self.max_fun
                else " Scale the data (for example with StandardScaler) or change tol"
            )
            warnings.warn(
                f"{method} stopped before convergence after {n_iter} iteration(s) "
                f"(status={result.status}): {message.rstrip('. ')}.{hint} to reach "
                "convergence.",
                ConvergenceWarning,
                stacklevel=5,
            )
        return {
            "theta": theta, "loss": loss, "n_iter": n_iter,
            "loss_curve": monitor.loss_curve,
            "validation_scores": validation_scores,
            "best_validation_score": best_validation_score,
        }

    # ------------------------------------------------------------------------------------
    # The fitted network
    # ------------------------------------------------------------------------------------

    def _layer_sizes(self):
        return (self.coefs_[0].shape[0], *(W.shape[1] for W in self.coefs_))

    def _logits(self, X, output=None):
        """Output logits, or what `output` (a :class:`~sklearn_bp._loss.BlockOutput`)
        keeps of them, computed block by block. The logits are float64 even for float32
        weights (converted block by block), so that probabilities and their logarithms
        do not underflow at float32's range."""
        X = validate_data(
            self, X, accept_sparse="csr", dtype=(np.float64, np.float32), reset=False
        )
        loss = NetworkLoss(self._layer_sizes(), activation=self.activation,
                           output_activation=self.out_activation_, dtype=X.dtype)
        if output is None:
            output = _monitor.logits_output(self.n_outputs_)
        return loss.forward(self.coefs_, self.intercepts_, X, output=output)
