"""BackpropClassifier: a multilayer perceptron fitted by backpropagation and L-BFGS-B."""

import sys
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    column_or_1d,
    validate_data,
)
from threadpoolctl import threadpool_limits

from . import backprop
from ._version import __version__


def _glorot_init(layer_sizes, activation, dtype, random_state):
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


def _reject_dask_collections(*arrays):
    """Refuse dask collections before validation would compute them into memory."""
    for name, array in zip(("X", "y", "sample_weight"), arrays):
        if hasattr(array, "__dask_graph__"):
            raise TypeError(
                f"BackpropClassifier.fit got a dask collection as {name} "
                f"({type(array).__name__}) and would compute all of it into this "
                "process's memory. Use sklearn_bp.dask.DaskBackpropClassifier to fit on "
                "the Dask workers, or pass in-memory arrays (for example X.compute())."
            )


class BackpropClassifier(ClassifierMixin, BaseEstimator):
    """Multilayer perceptron classifier trained by backpropagation and L-BFGS-B.

    The cost is the cross-entropy of the output layer, summed over output units and
    averaged over samples (weighted by `sample_weight`), plus
    ``alpha / (2 * sum(sample_weight)) * sum_l ||W_l||^2``. Its gradient comes from
    backpropagation (:mod:`sklearn_bp.backprop`), and both are handed together to
    :func:`scipy.optimize.minimize` with ``method="L-BFGS-B"``.

    Parameters
    ----------
    hidden_layer_sizes : array-like of shape (n_hidden_layers,), default=(100,)
        Number of units in each hidden layer.
    activation : {"logistic", "tanh", "relu"}, default="logistic"
        Hidden activation. ``"logistic"`` is the sigmoid of the classic derivation.
    output_activation : {"logistic", "softmax"}, default="logistic"
        ``"logistic"``: one sigmoid unit per class (one unit for binary targets, one per
        label for multilabel targets), as in the classic derivation; ``predict_proba``
        normalises the multiclass scores to sum to 1. ``"softmax"``: one softmax over the
        classes (two units for binary targets); not available for multilabel targets.
    alpha : float, default=1e-4
        Strength of the L2 penalty on the weights (intercepts are not penalised).
    max_iter : int, default=200
        Maximum number of L-BFGS-B iterations.
    max_fun : int, default=15000
        Maximum number of cost-and-gradient evaluations.
    tol : float, default=1e-4
        Stop when the largest component of the projected gradient is below `tol`
        (L-BFGS-B's ``gtol``).
    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights. Pass an int for reproducible fits.
    warm_start : bool, default=False
        Continue from the weights of the previous fit instead of a fresh initialisation.
    verbose : int, default=0
        If positive, print one line per iteration: iteration, cost, gradient norm.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels (for multilabel targets, the label indices).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Feature names seen during fit, when `X` has string column names.
    coefs_ : list of ndarray
        ``coefs_[l]`` of shape ``(layer_sizes[l], layer_sizes[l+1])``, in the dtype of `X`
        (float32 stays float32).
    intercepts_ : list of ndarray
        ``intercepts_[l]`` of shape ``(layer_sizes[l+1],)``.
    n_layers_ : int
        Number of layers, input and output included.
    n_outputs_ : int
        Number of output units.
    out_activation_ : str
        ``"logistic"`` or ``"softmax"``.
    n_iter_ : int
        Number of L-BFGS-B iterations run by the last fit.
    loss_ : float
        Cost at the final weights, penalty included.
    loss_curve_ : list of float
        Cost after each iteration.

    See Also
    --------
    sklearn.neural_network.MLPClassifier : scikit-learn's multilayer perceptron.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.model_selection import train_test_split
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn_bp import BackpropClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    >>> model = make_pipeline(
    ...     StandardScaler(),
    ...     BackpropClassifier(hidden_layer_sizes=(25,), alpha=1.0, random_state=0),
    ... ).fit(X_train, y_train)
    >>> model.score(X_test, y_test) > 0.93
    True
    """

    _parameter_constraints = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(backprop.ACTIVATIONS))],
        "output_activation": [StrOptions(set(backprop.OUTPUT_ACTIVATIONS))],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="logistic",
        output_activation="logistic",
        alpha=1e-4,
        max_iter=200,
        max_fun=15000,
        tol=1e-4,
        random_state=None,
        warm_start=False,
        verbose=0,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.output_activation = output_activation
        self.alpha = alpha
        self.max_iter = max_iter
        self.max_fun = max_fun
        self.tol = tol
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        # A softmax describes one class per sample, so multilabel needs logistic outputs.
        tags.classifier_tags.multi_label = self.output_activation == "logistic"
        return tags

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

    def _hidden_sizes(self):
        sizes = np.atleast_1d(np.asarray(self.hidden_layer_sizes))
        if sizes.ndim != 1 or sizes.size == 0 or not np.issubdtype(sizes.dtype, np.integer):
            raise ValueError(
                "hidden_layer_sizes must be a positive int or a non-empty sequence of "
                f"positive ints, got {self.hidden_layer_sizes!r}."
            )
        if np.any(sizes < 1):
            raise ValueError(
                f"hidden_layer_sizes must be >= 1 in every layer, got "
                f"{self.hidden_layer_sizes!r}; remove a layer instead of giving it 0 units."
            )
        return tuple(int(h) for h in sizes)

    def _targets(self, y):
        """Classes and the 0/1 matrix ``Y``; remembers the label encoding."""
        y_type = type_of_target(y, input_name="y")
        if y_type not in ("binary", "multiclass", "multilabel-indicator"):
            raise ValueError(
                f"BackpropClassifier supports binary, multiclass and multilabel-indicator "
                f"targets, got {y_type!r} targets. For several multiclass outputs, wrap it "
                "in sklearn.multioutput.MultiOutputClassifier."
            )
        binarizer = LabelBinarizer().fit(y)
        classes = binarizer.classes_
        if y_type != "multilabel-indicator" and classes.shape[0] < 2:
            raise ValueError(
                "BackpropClassifier needs samples of at least 2 classes in the data, but "
                f"the data contains only one class: {classes.tolist()[0]!r}. Fit it on "
                "data that contains at least two classes."
            )
        Y = binarizer.transform(y)
        if y_type == "multilabel-indicator" and self.output_activation == "softmax":
            raise ValueError(
                "output_activation='softmax' gives one probability distribution over "
                "classes, which cannot describe multilabel targets; use "
                "output_activation='logistic' for them."
            )
        if y_type == "binary" and self.output_activation == "softmax":
            Y = np.hstack([1 - Y, Y])
        return y_type, classes, Y

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the network to `X`, `y` by minimising the regularised cross-entropy.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data. float32 data is fitted in float32.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Class labels, or a 0/1 indicator matrix for multilabel targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the samples; the cost is their weighted mean.

        Returns
        -------
        self : BackpropClassifier
            The fitted estimator.
        """
        _reject_dask_collections(X, y, sample_weight)
        X, y = validate_data(
            self, X, y, accept_sparse="csr", dtype=(np.float64, np.float32),
            multi_output=True,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=np.float64, ensure_non_negative=True
            )
        y_type, classes, Y = self._targets(y)
        Y = Y.astype(X.dtype)
        return self._fit_targets(X, Y, sample_weight, y_type, classes)

    def _fit_targets(self, X, Y, sample_weight, y_type, classes):
        """The part of ``fit`` after validation: initialise, minimise, set attributes.

        It reads only ``X.shape`` and ``X.dtype`` and hands `X`, `Y` and `sample_weight`
        on to ``_objective``, so a subclass that keeps its data elsewhere
        (:mod:`sklearn_bp.dask`) passes stand-ins with that shape and dtype.
        """
        hidden = self._hidden_sizes()
        if self.warm_start and hasattr(self, "coefs_"):
            if y_type != self._y_type or not np.array_equal(classes, self.classes_):
                raise ValueError(
                    "warm_start=True can only continue a fit on the same classes: the "
                    f"previous fit saw {self.classes_.tolist()!r}, this one "
                    f"{classes.tolist()!r}. Set warm_start=False to start afresh."
                )
            layer_sizes = (X.shape[1], *hidden, Y.shape[1])
            if tuple(self._layer_sizes()) != layer_sizes:
                raise ValueError(
                    "warm_start=True needs the same network: the previous fit had layer "
                    f"sizes {self._layer_sizes()}, this one {layer_sizes}. Set "
                    "warm_start=False to start afresh."
                )
            theta0 = backprop.pack(self.coefs_, self.intercepts_).astype(np.float64)
        else:
            layer_sizes = (X.shape[1], *hidden, Y.shape[1])
            rng = check_random_state(self.random_state)
            theta0 = _glorot_init(layer_sizes, self.activation, X.dtype, rng)
            theta0 = theta0.astype(np.float64)

        theta, loss, n_iter, loss_curve = self._minimize(
            theta0, X, Y, layer_sizes, sample_weight
        )

        self.classes_ = classes
        self._y_type = y_type
        self.n_outputs_ = Y.shape[1]
        self.n_layers_ = len(layer_sizes)
        self.out_activation_ = self.output_activation
        self.coefs_, self.intercepts_ = backprop.unpack(theta.astype(X.dtype), layer_sizes)
        self.n_iter_ = n_iter
        self.loss_ = loss
        self.loss_curve_ = loss_curve
        return self

    def _objective(self, X, Y, layer_sizes, sample_weight):
        """``theta -> (cost, grad)`` for ``minimize(jac=True)``; it never writes to self.

        The one place that says where the cost and gradient are computed: subclasses
        (for example a distributed evaluator) override it and keep everything else.
        """
        workspace = None

        def objective(theta):
            nonlocal workspace
            if workspace is None:
                rows = backprop.block_rows(layer_sizes, X.shape[0])
                workspace = backprop._Workspace(layer_sizes, rows, backprop._work_dtype(X))
            return backprop.cost_and_gradient(
                theta, X, Y, layer_sizes, alpha=self.alpha, sample_weight=sample_weight,
                activation=self.activation, output_activation=self.output_activation,
                workspace=workspace,
            )

        return objective

    def _minimize(self, theta0, X, Y, layer_sizes, sample_weight):
        """One ``scipy.optimize.minimize`` call; returns weights, loss, iterations, curve."""
        evaluate = self._objective(X, Y, layer_sizes, sample_weight)
        last = {}

        def objective(theta):
            cost, grad = evaluate(theta)
            if not (np.isfinite(cost) and np.all(np.isfinite(grad))):
                raise ValueError(
                    "The cost or its gradient became non-finite (inf or NaN) during the "
                    "fit, so the optimiser would produce non-finite weights. The data are "
                    "probably badly scaled: standardise X (for example with "
                    "StandardScaler), or use a bounded activation such as 'logistic'."
                )
            last["x"], last["grad"] = theta.copy(), grad
            return cost, grad

        loss_curve = []

        def callback(intermediate_result):
            loss_curve.append(float(intermediate_result.fun))
            if self.verbose:
                x = intermediate_result.x
                grad_norm = (
                    float(np.linalg.norm(last["grad"]))
                    if last.get("x") is not None and np.array_equal(last["x"], x)
                    else float("nan")
                )
                print(
                    f"Iteration {len(loss_curve)}, loss = {loss_curve[-1]:.8f}, "
                    f"gradient norm = {grad_norm:.3e}",
                    file=sys.stdout,
                )

        with threadpool_limits(limits=1, user_api="blas"):
            result = minimize(
                objective, theta0, method="L-BFGS-B", jac=True, callback=callback,
                options={"maxiter": self.max_iter, "maxfun": self.max_fun, "gtol": self.tol},
            )
        theta = result.x
        if not np.all(np.isfinite(theta)):
            raise ValueError(
                "The optimiser produced non-finite weights (inf or NaN). The data are "
                "probably badly scaled: standardise X (for example with StandardScaler) "
                "or increase alpha."
            )
        n_iter = int(result.nit)
        if result.status != 0:
            message = result.message
            message = message.decode() if isinstance(message, bytes) else str(message)
            hint = (
                f" Increase max_iter (now {self.max_iter})"
                if n_iter >= self.max_iter
                else f" Increase max_fun (now {self.max_fun})"
                if result.nfev >= self.max_fun
                else " Scale the data (for example with StandardScaler) or change tol"
            )
            warnings.warn(
                f"L-BFGS-B stopped before convergence after {n_iter} iteration(s) "
                f"(status={result.status}): {message}.{hint} to reach convergence.",
                ConvergenceWarning,
                stacklevel=3,
            )
        return theta, float(result.fun), n_iter, loss_curve

    # ------------------------------------------------------------------------------------
    # Prediction
    # ------------------------------------------------------------------------------------

    def _layer_sizes(self):
        return (self.coefs_[0].shape[0], *(W.shape[1] for W in self.coefs_))

    def _logits(self, X):
        """Output logits; float64 even for float32 weights, so that probabilities and
        their logarithms do not underflow at float32's range."""
        X = validate_data(
            self, X, accept_sparse="csr", dtype=(np.float64, np.float32), reset=False
        )
        Z = backprop.forward(self.coefs_, self.intercepts_, X, activation=self.activation)
        return Z.astype(np.float64, copy=False)

    def decision_function(self, X):
        """Logits of the output units: the network's output before the output activation.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            For binary targets, one score per sample, positive for ``classes_[1]``.
        """
        check_is_fitted(self)
        Z = self._logits(X)
        if self._y_type == "binary":
            return Z[:, 1] - Z[:, 0] if Z.shape[1] == 2 else Z[:, 0]
        return Z

    def predict_proba(self, X):
        """Probability estimates.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            For binary and multiclass targets, rows sum to 1 (independent sigmoid outputs
            are normalised). For multilabel targets, one independent probability per
            label.
        """
        check_is_fitted(self)
        Z = self._logits(X)
        if self._y_type == "multilabel-indicator":
            return backprop.sigmoid(Z)
        if self.out_activation_ == "softmax":
            return backprop.softmax(Z)
        if self._y_type == "binary":
            z = Z[:, 0]
            return np.column_stack([backprop.sigmoid(-z), backprop.sigmoid(z)])
        return np.exp(self._normalised_log_proba(Z))

    @staticmethod
    def _normalised_log_proba(Z):
        """log of ``sigma(z_k) / sum_j sigma(z_j)``, from log-sigmoids of the logits."""
        return backprop.log_softmax(backprop.log_sigmoid(Z))

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`, computed from the logits (no ``log(0)``).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        Z = self._logits(X)
        if self._y_type == "multilabel-indicator":
            return backprop.log_sigmoid(Z)
        if self.out_activation_ == "softmax":
            return backprop.log_softmax(Z)
        if self._y_type == "binary":
            z = Z[:, 0]
            return np.column_stack([backprop.log_sigmoid(-z), backprop.log_sigmoid(z)])
        return self._normalised_log_proba(Z)

    def predict(self, X):
        """Predict class labels (or the 0/1 indicator matrix for multilabel targets).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_labels)
        """
        check_is_fitted(self)
        scores = self.decision_function(X)
        if self._y_type == "multilabel-indicator":
            return (scores > 0).astype(int)
        if self._y_type == "binary":
            return self.classes_[(scores > 0).astype(int)]
        return self.classes_[np.argmax(scores, axis=1)]
