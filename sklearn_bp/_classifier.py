"""BackpropClassifier: a multilayer perceptron fitted by backpropagation and L-BFGS-B."""

import numpy as np
from sklearn.base import ClassifierMixin, _fit_context
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from . import _kernel, _monitor, _targets, backprop
from ._base import BaseBackprop, reject_dask_collections
from ._loss import BlockOutput
from ._monitor import MAX_FUN_DEFAULT


class BackpropClassifier(ClassifierMixin, BaseBackprop):
    """Multilayer perceptron classifier trained by backpropagation and L-BFGS-B.

    The cost is the cross-entropy of the output layer, summed over output units and
    averaged over samples (weighted by `sample_weight` times the class weights), plus
    ``alpha / (2 * sum(weights)) * sum_l ||W_l||^2``. Its gradient comes from
    backpropagation (:mod:`sklearn_bp.backprop`), and both are handed together to
    :func:`scipy.optimize.minimize` (``method="L-BFGS-B"`` by default, see `solver`).

    Parameters
    ----------
    hidden_layer_sizes : array-like of shape (n_hidden_layers,), default=(100,)
        Number of units in each hidden layer. ``()``: no hidden layer, which makes the
        network (multinomial, with a softmax output) logistic regression: the fit of
        ``LogisticRegression(C=1 / alpha)``.
    activation : {"logistic", "tanh", "relu", "identity"}, default="logistic"
        Hidden activation. ``"logistic"`` is the sigmoid of the classic derivation;
        ``"identity"`` none (linear hidden layers), as in ``MLPClassifier``.
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
        ``gtol``; TNC applies it to its scaled projected gradient). L-BFGS-B, like
        MLPClassifier's, also stops once an iteration lowers the cost by less than a
        relative 2.2e-9 (scipy's default ``ftol``), so a `tol` far below the default
        may not be reached: ``solver="bfgs"`` stops on the gradient alone. With
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
    n_iter_no_change : int or np.inf, default=10
        Number of consecutive iterations without improvement that end the fit (np.inf:
        never end it on the score; the best-scoring weights are still kept). Only used
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
        If positive, print one line per iteration: iteration, cost, the largest
        absolute component of the gradient (``max |gradient|``, the quantity `tol` is
        compared with) and, with `early_stopping`, the validation score.

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
    validation_scores_ : list of float of shape (max(`n_iter_`, 1),) or None
        With `early_stopping`, the score on the held-out samples after each iteration
        (of the initial weights, when the fit ends before its first iteration because
        their gradient already meets `tol`); None otherwise.
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
        **BaseBackprop._parameter_constraints,
        "output_activation": [StrOptions({"logistic", "softmax"})],
        "class_weight": [dict, StrOptions({"balanced"}), None],
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
        max_fun=MAX_FUN_DEFAULT,
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
        # A softmax describes one class per sample, so multilabel needs logistic outputs;
        # class weights weigh a sample by its one class, so fit refuses multilabel with them.
        tags.classifier_tags.multi_label = (self.output_activation == "logistic"
                                            and self.class_weight is None)
        return tags

    def _output_activation(self):
        return self.output_activation

    def _check_warm_start(self, targets):
        # as lists: numpy 1.x warns when comparing labels of other types elementwise
        classes = targets["classes_"]
        if (targets["_y_type"] != self._y_type
                or classes.tolist() != self.classes_.tolist()):
            raise ValueError(
                "warm_start=True can only continue a fit on the same classes: the "
                f"previous fit saw {self.classes_.tolist()!r}, this one "
                f"{classes.tolist()!r}. Set warm_start=False to start afresh."
            )

    # ------------------------------------------------------------------------------------
    # Fitting
    # ------------------------------------------------------------------------------------

    def _targets(self, y):
        """``(y_type, classes, targets, n_outputs)``: the targets in the form the loss
        object fits (unit labels or a compact indicator, :func:`_targets.encode`) and
        the number of output units."""
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
        classes, targets = _targets.encode(y, y_type, self.output_activation)
        if classes.shape[0] < 2:
            raise ValueError(
                "BackpropClassifier needs samples of at least 2 classes in the data, "
                f"but the data contains only one class: {classes.tolist()[0]!r}. Fit it "
                "on data that contains at least two classes."
            )
        n_outputs = _targets.n_outputs_of(y_type, self.output_activation, classes.shape[0])
        return y_type, classes, targets, n_outputs

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
        reject_dask_collections(self, X, y, sample_weight)
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
        # The targets as one small integer a row (unit labels), or a bool matrix for
        # multilabel targets: never an n_samples x n_classes float matrix.
        y_type, classes, targets, n_outputs = self._targets(y)

        validation = None
        if self.early_stopping:
            stratify = y if y_type in ("binary", "multiclass") else None
            validation, X, targets, y, sample_weight, (X_given, y_given) = self._hold_out(
                X, targets, y, sample_weight, stratify, (X_given, y_given))
        weights = _targets.training_weights(
            self.class_weight, y_type, classes, y, sample_weight
        )
        layer_sizes = (X.shape[1], *self._hidden_sizes(), n_outputs)
        loss = self._network_loss(layer_sizes, X.dtype)
        if validation is not None:
            validation = _monitor.ValidationScore(loss, *validation)
        metadata = None if sample_weight is None else {"sample_weight": sample_weight}
        return self._fit_objective(
            loss.objective(X, targets, weights), {"classes_": classes, "_y_type": y_type},
            validation=validation, callback_data=(X_given, y_given, metadata),
        )

    # ------------------------------------------------------------------------------------
    # Prediction
    # ------------------------------------------------------------------------------------

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
        if self._y_type == "binary":
            return self._logits(X, _BINARY_SCORE[self.n_outputs_])
        return self._logits(X)

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
        return self._proba(X, log=False)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`, computed from the logits (no ``log(0)``).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        return self._proba(X, log=True)

    def _proba(self, X, log):
        """:meth:`predict_proba`, or its logarithm."""
        check_is_fitted(self)
        if self._y_type == "binary" and self.n_outputs_ == 1:
            return _binary_probabilities(self._logits(X, _BINARY_LOGITS), log=log)
        return self._logits(X, self._probabilities(log=log))

    def _probabilities(self, log):
        """The :class:`~sklearn_bp._loss.BlockOutput` of :meth:`predict_proba` (or of its
        logarithm): each block's probabilities from its logits, in float64, into the
        result's rows; the logits of all the rows never exist at once."""
        k = self.n_outputs_
        if self._y_type == "multilabel-indicator":
            function = backprop.log_sigmoid if log else backprop.sigmoid
            return BlockOutput(lambda Z, out, buffers: np.copyto(
                out, function(_monitor.in_float64(Z, out))), columns=(k,), in_place=True)
        if self.out_activation_ == "softmax":
            return BlockOutput(_kernel.log_softmax_into if log else _kernel.softmax_into,
                               columns=(k,), in_place=True)
        # sigma(z_k) / sum_j sigma(z_j) as a softmax of the log-sigmoids: no sigma(z)
        # underflows to 0, and no exp of a log-probability magnifies its rounding
        return BlockOutput(_normalised_log_proba if log else _normalised_proba,
                           columns=(k,), in_place=True)

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
        if self._y_type == "multilabel-indicator":  # (Z > 0) as ints, block by block
            return self._logits(X, _monitor.predicted_labels(self.n_outputs_, int))
        # the predicted unit of each row, then its class: one integer a row
        units = self._logits(X, _monitor.PREDICTED)
        if self.n_outputs_ < self.classes_.shape[0]:  # one logistic unit: -1 or 0
            units += 1
        return self.classes_[units]


# ----------------------------------------------------------------------------------------
# What the predictions keep of each block's logits (see _loss.BlockOutput): each writes
# one block's rows `out` from its logits `Z` (row-major, float64 or float32), in float64.
# ----------------------------------------------------------------------------------------


def _normalised_proba(Z, out, buffers):
    log_p = backprop.log_sigmoid(_monitor.in_float64(Z, out))
    _kernel.softmax_into(log_p, out, buffers)


def _normalised_log_proba(Z, out, buffers):
    log_p = backprop.log_sigmoid(_monitor.in_float64(Z, out))
    _kernel.log_softmax_into(log_p, out, buffers)


def _binary_logits(Z, out, buffers):
    """``out = [-z, z]`` (float64) for the one logistic unit's logits ``z``: the logits
    of the two classes."""
    np.negative(Z[:, 0], out=out[:, 0])
    np.copyto(out[:, 1], Z[:, 0])


#: The two classes' logits of one logistic unit, block by block
_BINARY_LOGITS = BlockOutput(_binary_logits, columns=(2,))

# Rows of binary probabilities computed at a time from their logits (see below)
_BINARY_CHUNK = 1 << 14


def _binary_probabilities(pairs, log):
    """The probabilities (or their logarithms) of two classes, in place of their logits
    ``[-z, z]``: the accurate sigmoid's dozen numpy calls per chunk of 16 384 rows, in
    this thread, rather than per block of a few hundred rows in each thread, where
    their fixed cost and the threads' turns at the GIL cost more than the work."""
    function = backprop.log_sigmoid if log else backprop.sigmoid
    for start in range(0, pairs.shape[0], _BINARY_CHUNK):
        chunk = pairs[start:start + _BINARY_CHUNK]
        np.copyto(chunk, function(chunk))
    return pairs


#: decision_function for binary targets, by the number of output units: the logit of
#: the one logistic unit, or the difference of the softmax's two (in float64).
_BINARY_SCORE = {
    1: BlockOutput(lambda Z, out, buffers: np.copyto(out, Z[:, 0])),
    2: BlockOutput(lambda Z, out, buffers: np.subtract(Z[:, 1], Z[:, 0], out=out,
                                                       dtype=np.float64)),
}
