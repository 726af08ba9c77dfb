"""BackpropClassifier: a multilayer perceptron fitted by backpropagation and L-BFGS-B."""

import contextlib
import sys
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import _safe_indexing, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from . import _iterations, backprop
from ._iterations import SOLVER_METHODS, CallbackSupportMixin
from ._version import __version__

_MAX_FUN_DEFAULT = 15000


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


def _indicator_matrix(y, y_type, output_activation, classes=None):
    """``(classes, Y)``: the classes of the labels `y` and their 0/1 matrix ``Y`` of
    shape (n_samples, n_outputs), in float64, encoded as scikit-learn's
    ``LabelBinarizer`` encodes them, then widened for a softmax output.

    `y_type` is `y`'s ``type_of_target``. Binary and multiclass labels give the sorted
    distinct labels as classes, one column per class, and for two classes one column,
    for the second, or with ``output_activation="softmax"`` both. A multilabel indicator
    matrix is ``Y`` as it is, with classes ``0, ..., n_labels - 1``. Given `classes`
    (the classes of all of the data, when `y` is one block of it), the rows are encoded
    against them. The estimator and the dask estimator's blocks both encode here.
    """
    if y_type == "multilabel-indicator":
        Y = np.asarray(y.toarray() if sp.issparse(y) else y, dtype=np.float64)
        return np.arange(Y.shape[1]) if classes is None else classes, Y
    # One np.unique (LabelBinarizer took 2.5 ms of a 33 ms fit on digits, this 0.1 ms)
    if classes is None:
        classes, index = np.unique(y, return_inverse=True)
    else:
        index = np.searchsorted(classes, y)
    Y = np.zeros((index.shape[0], classes.shape[0]))
    Y[np.arange(index.shape[0]), index.reshape(-1)] = 1.0
    if y_type == "binary" and output_activation != "softmax":
        Y = Y[:, 1:]
    return classes, Y


class BackpropClassifier(CallbackSupportMixin, ClassifierMixin, BaseEstimator):
    """Multilayer perceptron classifier trained by backpropagation and L-BFGS-B.

    The cost is the cross-entropy of the output layer, summed over output units and
    averaged over samples (weighted by `sample_weight` times the class weights), plus
    ``alpha / (2 * sum(weights)) * sum_l ||W_l||^2``. Its gradient comes from
    backpropagation (:mod:`sklearn_bp.backprop`), and both are handed together to
    :func:`scipy.optimize.minimize` (``method="L-BFGS-B"`` by default, see `solver`).

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
    solver : {"lbfgs", "cg", "bfgs", "tnc"}, default="lbfgs"
        The gradient-based method of :func:`scipy.optimize.minimize` that minimises the
        cost. Each reports `n_iter_`, `loss_curve_`, `verbose` lines, callbacks and
        convergence warnings the same way.

        - ``"lbfgs"``: ``method="L-BFGS-B"``, limited-memory quasi-Newton. `max_iter`
          and `max_fun` apply.
        - ``"cg"``: ``method="CG"``, nonlinear conjugate gradient (the classic course's
          ``fmincg``). scipy's CG has no limit on evaluations, so `max_fun` must keep
          its default (ValueError otherwise).
        - ``"bfgs"``: ``method="BFGS"``, dense quasi-Newton. It stores an
          ``(n_weights, n_weights)`` matrix and updates it in ``O(n_weights**3)`` per
          iteration: small networks only. `max_fun` must keep its default, as for CG.
        - ``"tnc"``: ``method="TNC"``, truncated Newton. `max_fun` applies; scipy's TNC
          has no iteration limit, so `max_iter` is enforced between its iterations.
    alpha : float, default=1e-4
        Strength of the L2 penalty on the weights (intercepts are not penalised).
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes, multiplied into `sample_weight`: sample ``i`` of class
        ``c`` weighs ``sample_weight[i] * class_weight[c]``. A dict maps class labels to
        finite non-negative weights; classes it omits weigh 1, and a key that is not a
        class of `y` raises ValueError. ``"balanced"`` gives class ``c`` the weight
        ``n_samples / (n_classes * n_samples_c)``, counted over the training samples of
        positive weight (weighted by `sample_weight` when the installed scikit-learn's
        ``compute_class_weight`` accepts it, as 1.9's does; with `early_stopping`, over
        the training part only). Not available for multilabel targets, whose samples
        can carry several labels: pass `sample_weight` instead, for example
        ``sklearn.utils.class_weight.compute_sample_weight("balanced", Y)``.
    max_iter : int, default=200
        Maximum number of iterations of the solver.
    max_fun : int, default=15000
        Maximum number of cost-and-gradient evaluations, for solvers "lbfgs" and "tnc".
    tol : float, default=1e-4
        Stop when the largest absolute component of the gradient is below `tol` (scipy's
        ``gtol``; TNC applies it to its scaled projected gradient). With
        `early_stopping`, also the least improvement of the validation score that counts.
    early_stopping : bool, default=False
        Hold out `validation_fraction` of the training samples, score the network on them
        after each iteration (accuracy, weighted by `sample_weight`, as :meth:`score`),
        stop once `n_iter_no_change` consecutive iterations have not improved the best
        score by at least `tol`, and keep the weights of the best-scoring iteration. For
        an int `random_state`, the held-out rows are those of
        ``train_test_split(np.arange(n_samples), test_size=validation_fraction,
        stratify=y, random_state=random_state)[1]``; multilabel targets are split
        without stratification. They are not used for training.
    validation_fraction : float, default=0.1
        Fraction of the training samples held out by `early_stopping`, in (0, 1). Only
        used if `early_stopping` is True.
    n_iter_no_change : int, default=10
        Number of consecutive iterations without improvement that end the fit. Only used
        if `early_stopping` is True.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights and the `early_stopping` split. Pass an int for
        reproducible fits.
    warm_start : bool, default=False
        Continue from the weights of the previous fit instead of a fresh initialisation.
        The classes and the network's layer sizes must be those of the previous fit
        (ValueError otherwise). The solver's own memory (for example L-BFGS's curvature
        pairs) is not kept between fits; `n_iter_` and `loss_curve_` describe the last
        call only.
    verbose : int, default=0
        If positive, print one line per iteration: iteration, cost, gradient norm (and
        validation score with `early_stopping`).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels (for multilabel targets, the label indices).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
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
        Number of iterations the last fit completed.
    loss_ : float
        Cost at the returned weights, penalty included (with `early_stopping`, at the
        best-scoring iteration).
    loss_curve_ : list of float of shape (`n_iter_`,)
        Cost after each iteration of the last fit.
    validation_scores_ : list of float of shape (`n_iter_`,) or None
        With `early_stopping`, the score on the held-out samples after each iteration;
        None otherwise.
    best_validation_score_ : float or None
        With `early_stopping`, the best of `validation_scores_`, the one of the returned
        weights; None otherwise.

    See Also
    --------
    sklearn.neural_network.MLPClassifier : scikit-learn's multilayer perceptron.

    Notes
    -----
    **Interruption.** A fit interrupted after at least one completed iteration, by
    ``KeyboardInterrupt`` (Ctrl-C) or by a callback whose ``on_fit_task_end`` returns
    True, returns normally: it keeps the weights of the last completed iteration (with
    `early_stopping`, of the best-scoring one so far), sets `n_iter_`, `loss_` and
    `loss_curve_` to match them, and warns with a ``ConvergenceWarning`` that the fit
    was interrupted before convergence. Fit again with ``warm_start=True`` to go on. A
    ``KeyboardInterrupt`` before the first iteration completes propagates and leaves the
    estimator as it was.

    **Callbacks** (scikit-learn >= 1.9). :meth:`set_callbacks` takes the callbacks of
    ``sklearn.callback``, for example ``ProgressBar()`` or
    ``ScoringMonitor(scoring="accuracy")``. Each iteration of the solver is a subtask
    (named ``"<solver>-iter"``) of the fit task, and auto-propagated callbacks set on a
    ``Pipeline`` or ``GridSearchCV`` reach this estimator. With scikit-learn 1.6 to
    1.8, ``set_callbacks`` raises ImportError and everything else works; `verbose` and
    `loss_curve_` work everywhere.

    **Metadata routing.** `fit` takes `sample_weight` explicitly, so
    ``set_fit_request(sample_weight=True)`` and ``set_score_request`` route weights
    through ``Pipeline`` and ``GridSearchCV`` when
    ``sklearn.set_config(enable_metadata_routing=True)``.

    **Persistence.** The fitted attributes are plain arrays, lists and numbers, so
    ``skops.io.load(file, trusted=[BackpropClassifier])`` loads a fitted model with no
    other trusted type. Pickles carry the sklearn_bp version, and loading one saved by
    another version warns.

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
        "solver": [StrOptions(set(SOLVER_METHODS))],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="logistic",
        *,
        output_activation="logistic",
        solver="lbfgs",
        alpha=1e-4,
        class_weight=None,
        max_iter=200,
        max_fun=_MAX_FUN_DEFAULT,
        tol=1e-4,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        random_state=None,
        warm_start=False,
        verbose=0,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.output_activation = output_activation
        self.solver = solver
        self.alpha = alpha
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.max_fun = max_fun
        self.tol = tol
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
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
        if y_type == "multilabel-indicator" and self.output_activation == "softmax":
            raise ValueError(
                "output_activation='softmax' gives one probability distribution over "
                "classes, which cannot describe multilabel targets; use "
                "output_activation='logistic' for them."
            )
        classes, Y = _indicator_matrix(y, y_type, self.output_activation)
        if classes.shape[0] < 2:
            raise ValueError(
                "BackpropClassifier needs samples of at least 2 classes in the data, "
                f"but the data contains only one class: {classes.tolist()[0]!r}. Fit it "
                "on data that contains at least two classes."
            )
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
            Non-negative weights of the samples, multiplied by the weights of their
            classes (`class_weight`); the cost is their weighted mean.

        Returns
        -------
        self : BackpropClassifier
            The fitted estimator.
        """
        _reject_dask_collections(X, y, sample_weight)
        X_given, y_given = X, y
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
        self._solver_options()  # refuse options the solver cannot honour, before any work
        y_type, classes, Y = self._targets(y)
        Y = Y.astype(X.dtype, copy=False)

        validation = None
        if self.early_stopping:
            rng = check_random_state(self.random_state)
            train, held_out = _iterations.validation_split(
                y, y_type, self.validation_fraction,
                _iterations.split_random_state(self.random_state, rng),
            )
            sw_held_out = None if sample_weight is None else sample_weight[held_out]
            validation = (X[held_out], Y[held_out], sw_held_out)
            X, Y, y = X[train], Y[train], y[train]
            sample_weight = None if sample_weight is None else sample_weight[train]
            X_given, y_given = _safe_indexing(X_given, train), _safe_indexing(y_given, train)
        weights = _iterations.training_weights(
            self.class_weight, y_type, classes, y, sample_weight
        )
        metadata = None if sample_weight is None else {"sample_weight": sample_weight}
        return self._fit_targets(
            X, Y, weights, y_type, classes, validation=validation,
            callback_data=(X_given, y_given, metadata),
        )

    def _fit_targets(self, X, Y, sample_weight, y_type, classes, *, validation=None,
                     callback_data=None):
        """The part of ``fit`` after validation: initialise, minimise, set attributes.

        It reads only ``X.shape`` and ``X.dtype`` and hands `X`, `Y` and `sample_weight`
        (the class weights already multiplied in) on to ``_objective``, so a subclass
        that keeps its data elsewhere (:mod:`sklearn_bp.dask`) passes stand-ins with that
        shape and dtype. `validation` is early stopping's held-out ``(X, Y,
        sample_weight)``, or a function ``theta -> score`` that scores them elsewhere;
        `callback_data` the ``(X, y, metadata)`` shown to scikit-learn's callbacks (None:
        the callbacks see no data).
        """
        hidden = self._hidden_sizes()
        if self.warm_start and hasattr(self, "coefs_"):
            # as lists: numpy 1.x warns when comparing labels of other types elementwise
            if y_type != self._y_type or classes.tolist() != self.classes_.tolist():
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

        fitted = {
            "classes_": classes, "_y_type": y_type, "n_outputs_": Y.shape[1],
            "n_layers_": len(layer_sizes), "out_activation_": self.output_activation,
        }
        if validation is not None and not callable(validation):
            validation = _iterations.ValidationScore(
                *validation, layer_sizes, self.activation, X.dtype,
                multilabel=y_type == "multilabel-indicator",
            )
        X_seen, y_seen, metadata = callback_data or (None, None, None)
        callback_ctx = bridge = None
        if _iterations.CALLBACKS_SUPPORTED:
            callback_ctx = self._init_callback_context(max_subtasks=self.max_iter + 1)
            callback_ctx.call_on_fit_task_begin(
                estimator=self, X=X_seen, y=y_seen, metadata=metadata
            )
            if getattr(self, "_skl_callbacks", None):

                def reconstruct(theta, n_iter, loss_curve):
                    coefs, intercepts = backprop.unpack(theta.astype(X.dtype), layer_sizes)
                    attributes = dict(fitted, coefs_=coefs, intercepts_=intercepts,
                                      n_iter_=n_iter, loss_curve_=loss_curve)
                    if loss_curve:
                        attributes["loss_"] = loss_curve[-1]
                    return attributes

                bridge = _iterations.CallbackBridge(
                    callback_ctx, self, X_seen, y_seen, metadata, reconstruct,
                    f"{self.solver}-iter", theta0,
                )

        outcome = self._minimize(
            theta0, X, Y, layer_sizes, sample_weight, validation=validation, bridge=bridge
        )

        for name, value in fitted.items():
            setattr(self, name, value)
        self.coefs_, self.intercepts_ = backprop.unpack(
            outcome["theta"].astype(X.dtype), layer_sizes
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
        if self.solver in ("cg", "bfgs") and self.max_fun != _MAX_FUN_DEFAULT:
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

    def _objective(self, X, Y, layer_sizes, sample_weight):
        """``theta -> (cost, grad)`` for ``minimize(jac=True)``; it never writes to self.

        The one place that says where the cost and gradient are computed: subclasses
        (for example a distributed evaluator) override it and keep everything else.
        """
        # Partial sums over row blocks: as many as the machine's cores and the data pay
        # for, whatever the BLAS limits, so that every thread setting gives the same
        # bits. Threads: one per partial sum, within the caller's BLAS thread budget
        # (read here, before _minimize holds BLAS at one thread).
        n_sums = backprop._useful_threads(X, layer_sizes)
        n_threads = backprop._default_n_threads(X, layer_sizes)
        dtype = backprop._work_dtype(X)
        rows = backprop.block_rows(layer_sizes, X.shape[0], n_threads=n_sums,
                                   dtype=dtype, row_bytes=backprop._row_bytes(X))
        if rows >= X.shape[0] and not sp.issparse(X):
            # One block: a column-major copy (of at most one block's input) makes
            # the first layer's product faster (measured: 1.5x for digits' X @ W).
            X = np.asfortranarray(X, dtype=dtype)
        Y = np.asfortranarray(Y)  # the layout of the kernel's buffers (backprop.partial_sums)
        workspace = None  # buffers (and threads) reused by every evaluation of this fit

        def objective(theta):
            nonlocal workspace
            if workspace is None:
                workspace = backprop._Workspace(layer_sizes, rows, dtype,
                                                n_threads=n_threads, n_sums=n_sums)
            return backprop.cost_and_gradient(
                theta, X, Y, layer_sizes, alpha=self.alpha, sample_weight=sample_weight,
                activation=self.activation, output_activation=self.output_activation,
                workspace=workspace, n_threads=n_threads, n_sums=n_sums,
            )

        return objective

    def _minimize(self, theta0, X, Y, layer_sizes, sample_weight, *, validation=None,
                  bridge=None):
        """One ``scipy.optimize.minimize`` call with the method of `solver`.

        Returns a dict: ``theta`` (the weights to keep), ``loss`` (their cost),
        ``n_iter``, ``loss_curve``, ``validation_scores``, ``best_validation_score``.
        An ``IterationMonitor`` sees each iteration: it prints the verbose line, runs
        early stopping (`validation`) and scikit-learn's callbacks (`bridge`). When it
        ends the fit, or on ``KeyboardInterrupt``, the last completed iterate is kept
        (the best-scoring one with early stopping).
        """
        method, options = self._solver_options()
        evaluate = self._objective(X, Y, layer_sizes, sample_weight)
        monitor = _iterations.IterationMonitor(
            evaluate, theta0, max_iter=self.max_iter if self.solver == "tnc" else None,
            verbose=self.verbose, validation=validation, tol=self.tol,
            n_iter_no_change=self.n_iter_no_change, bridge=bridge,
        )

        def objective(theta):
            cost, grad = evaluate(theta)
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
            # BLAS at one thread: its threads slow these small products and scipy's
            # L-BFGS-B down many times; the objective's own threads use the cores.
            with backprop._blas_limit(1):
                result = minimize(
                    objective, theta0, method=method, jac=True,
                    callback=monitor.scipy_callback(method), options=options,
                )
        except (_iterations.StopFit, KeyboardInterrupt) as exc:
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
                f"(status={result.status}): {message}.{hint} to reach convergence.",
                ConvergenceWarning,
                stacklevel=5,
            )
        return {
            "theta": theta, "loss": loss, "n_iter": n_iter,
            "loss_curve": monitor.loss_curve,
            "validation_scores": monitor.validation_scores,
            "best_validation_score": monitor.best_validation_score,
        }

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
        # Threads of our own over row blocks, with BLAS at one thread meanwhile, when
        # the data pay for them (measured: see docs/performance.rst).
        n_threads = backprop._default_n_threads(X, self._layer_sizes(), gradient=False)
        with backprop._blas_limit(1) if n_threads > 1 else contextlib.nullcontext():
            Z = backprop.forward(self.coefs_, self.intercepts_, X,
                                 activation=self.activation, n_threads=n_threads)
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
        # sigma(z_k) / sum_j sigma(z_j) as a softmax of the log-sigmoids: no sigma(z)
        # underflows to 0, and no exp of a log-probability magnifies its rounding
        return backprop.softmax(backprop.log_sigmoid(Z))

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
