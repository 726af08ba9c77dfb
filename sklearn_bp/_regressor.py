"""BackpropRegressor: a multilayer perceptron regressor fitted by backpropagation."""

import numpy as np
from sklearn.base import RegressorMixin, _fit_context
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from . import _monitor, _targets
from ._base import BaseBackprop, reject_dask_collections
from ._monitor import MAX_FUN_DEFAULT

#: The output layer (F3) of each loss: its canonical link's inverse.
OUTPUT_OF_LOSS = {"squared_error": "identity", "poisson": "exp"}


class BackpropRegressor(RegressorMixin, BaseBackprop):
    """Multilayer perceptron regressor trained by backpropagation and L-BFGS-B.

    The same network, optimiser and options as :class:`~sklearn_bp.BackpropClassifier`,
    with another output layer: identity units with half the squared error (C4), or
    exponential units with half the Poisson deviance (C5), each summed over the outputs
    and averaged over samples (weighted by `sample_weight`), plus ``alpha / (2 *
    sum(weights)) * sum_l ||W_l||^2``. Each output layer is the inverse of its loss's
    canonical link, so the output delta is ``A - Y`` as for the classifier, and the
    gradient comes from the same backpropagation (:mod:`sklearn_bp.backprop`).

    Parameters
    ----------
    hidden_layer_sizes : array-like of shape (n_hidden_layers,), default=(100,)
        Number of units in each hidden layer.
    activation : {"logistic", "tanh", "relu"}, default="logistic"
        Hidden activation. ``"logistic"`` is the sigmoid of the classic derivation.
    loss : {"squared_error", "poisson"}, default="squared_error"
        ``"squared_error"``: identity outputs, half the squared error (C4), for targets
        of any sign. ``"poisson"``: exponential outputs (a log link), half the Poisson
        deviance (C5), for non-negative targets such as counts or rates; predictions
        are positive. As ``MLPRegressor``'s, for one output.
    solver : {"lbfgs", "cg", "bfgs", "tnc"}, default="lbfgs"
        The method of :func:`scipy.optimize.minimize`, as in
        :class:`~sklearn_bp.BackpropClassifier`.
    alpha : float, default=1e-4
        Strength of the L2 penalty on the weights (intercepts are not penalised).
    max_iter : int, default=200
        Maximum number of iterations of the solver.
    max_fun : int, default=15000
        Maximum number of cost-and-gradient evaluations, for solvers "lbfgs" and "tnc".
    tol : float, default=1e-4
        Stop when the largest absolute component of the gradient is below `tol` (scipy's
        ``gtol``). L-BFGS-B, like MLPRegressor's, also stops once an iteration lowers
        the cost by less than a relative 2.2e-9 (scipy's default ``ftol``), so a `tol`
        far below the default may not be reached: ``solver="bfgs"`` stops on the
        gradient alone. With `early_stopping`, also the least improvement of the
        validation score that counts.
    early_stopping : bool, default=False
        Hold out `validation_fraction` of the training samples, score the network on them
        after each iteration (R^2, weighted by `sample_weight`, as :meth:`score`), stop
        once `n_iter_no_change` consecutive iterations have not improved the best score
        by at least `tol`, and keep the weights of the best-scoring iteration. For an
        int `random_state`, the held-out rows are those of
        ``train_test_split(np.arange(n_samples), test_size=validation_fraction,
        random_state=random_state)[1]``. They are not used for training.
    validation_fraction : float, default=0.1
        Fraction of the training samples held out by `early_stopping`, in (0, 1).
    n_iter_no_change : int, default=10
        Number of consecutive iterations without improvement that end the fit, with
        `early_stopping`.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights and the `early_stopping` split. Pass an int for
        reproducible fits.
    warm_start : bool, default=False
        Continue from the weights of the previous fit instead of a fresh initialisation;
        the network's layer sizes (and so the number of outputs) must be those of the
        previous fit.
    verbose : int, default=0
        If positive, print one line per iteration: iteration, cost, gradient norm (and
        validation score with `early_stopping`).

    Attributes
    ----------
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
        Number of outputs.
    out_activation_ : str
        ``"identity"`` or ``"exp"``.
    n_iter_ : int
        Number of iterations the last fit completed.
    loss_ : float
        Cost at the returned weights, penalty included (with `early_stopping`, at the
        best-scoring iteration).
    loss_curve_ : list of float of shape (`n_iter_`,)
        Cost after each iteration of the last fit.
    validation_scores_ : list of float of shape (`n_iter_`,) or None
        With `early_stopping`, the R^2 on the held-out samples after each iteration;
        None otherwise.
    best_validation_score_ : float or None
        With `early_stopping`, the best of `validation_scores_`, the one of the returned
        weights; None otherwise.

    See Also
    --------
    BackpropClassifier : The same network for classification.
    sklearn.neural_network.MLPRegressor : scikit-learn's multilayer perceptron.

    Notes
    -----
    **Several outputs.** Each output's loss is summed over the outputs, as the
    classifier's cross-entropy is, and the gradient is the exact gradient of that cost.
    For one output the objective is ``MLPRegressor``'s (the same value and gradient for
    the same weights). For several outputs with the squared error they differ:
    ``MLPRegressor`` averages its loss over the outputs but not its gradient, which is
    then ``n_outputs`` times the gradient of its loss (scikit-learn issue 8349); its
    Poisson loss is summed, as ours.

    **Interruption, callbacks, metadata routing and persistence** work as for
    :class:`~sklearn_bp.BackpropClassifier`; ``skops.io.load(file,
    trusted=[BackpropRegressor])`` loads a fitted model.

    Examples
    --------
    >>> from sklearn.compose import TransformedTargetRegressor
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.model_selection import train_test_split
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn_bp import BackpropRegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    >>> model = TransformedTargetRegressor(
    ...     make_pipeline(StandardScaler(),
    ...                   BackpropRegressor(hidden_layer_sizes=(10,), alpha=10.0,
    ...                                     random_state=0)),
    ...     transformer=StandardScaler(),
    ... ).fit(X_train, y_train)
    >>> model.score(X_test, y_test) > 0.35
    True
    """

    _parameter_constraints = {
        **BaseBackprop._parameter_constraints,
        "loss": [StrOptions(set(OUTPUT_OF_LOSS))],
    }

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="logistic",
        *,
        loss="squared_error",
        solver="lbfgs",
        alpha=1e-4,
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
        self.loss = loss
        self.solver = solver
        self.alpha = alpha
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
        tags.target_tags.multi_output = True
        tags.target_tags.positive_only = self.loss == "poisson"
        return tags

    def _output_activation(self):
        return OUTPUT_OF_LOSS[self.loss]

    def _check_warm_start(self, targets):
        """The layer sizes (and so the number of outputs) are the only constraint."""

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the network to `X`, `y` by minimising the regularised loss.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data. float32 data is fitted in float32.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets; non-negative for ``loss="poisson"``.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the samples; the cost is their weighted mean.

        Returns
        -------
        self : BackpropRegressor
            The fitted estimator.
        """
        reject_dask_collections(self, X, y, sample_weight)
        X_given, y_given = X, y
        X, y = validate_data(
            self, X, y, accept_sparse="csr", dtype=(np.float64, np.float32),
            multi_output=True, y_numeric=True,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=np.float64, ensure_non_negative=True
            )
        self._solver_options()  # refuse options the solver cannot honour, before any work
        Y = _targets.regression_targets(y, self.loss).astype(X.dtype, copy=False)

        validation = None
        if self.early_stopping:
            validation, X, Y, y, sample_weight, (X_given, y_given) = self._hold_out(
                X, Y, y, sample_weight, None, (X_given, y_given))
        weights = _targets.check_training_weights(sample_weight)
        layer_sizes = (X.shape[1], *self._hidden_sizes(), Y.shape[1])
        loss = self._network_loss(layer_sizes, X.dtype)
        if validation is not None:
            validation = _monitor.R2Score(loss, *validation)
        metadata = None if sample_weight is None else {"sample_weight": sample_weight}
        return self._fit_objective(
            loss.objective(X, Y, weights), {"_y_ndim": y.ndim}, validation=validation,
            callback_data=(X_given, y_given, metadata),
        )

    def predict(self, X):
        """Predict the targets.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            One column per output, or one value per sample when the network was fitted
            to a 1-D `y`. Positive for ``loss="poisson"``.
        """
        check_is_fitted(self)
        prediction = self._logits(
            X, _monitor.prediction_output(self.out_activation_, self.n_outputs_))
        return prediction.ravel() if self._y_ndim == 1 else prediction
