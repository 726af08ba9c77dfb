"""Fit :class:`~sklearn_bp.BackpropClassifier` and :class:`~sklearn_bp.BackpropRegressor`
on data spread over a Dask cluster.

The cost (C1) and its gradient (G1), (G2) are sums over samples. ``fit`` keeps the rows as
blocks persisted on the Dask workers; each evaluation sends the weights ``theta`` to the
workers once, every block's partial sums (:func:`~sklearn_bp.backprop.partial_sums`) are
computed where the block lives, and the driver adds them in block order and normalises
them once (:func:`~sklearn_bp.backprop.combine_partial_sums`). This is the estimators'
loss object (:mod:`sklearn_bp._loss`) with its rows on the workers: L-BFGS-B itself runs
on the driver, exactly as in :class:`~sklearn_bp.BackpropClassifier`, so a distributed fit
follows the same path as an in-process one up to rounding.

This module needs the ``dask`` extra: ``python -m pip install "sklearn_bp[dask]"``.
"""

import copy
import warnings
from typing import NamedTuple

import numpy as np
from sklearn.base import _fit_context
from sklearn.exceptions import DataConversionWarning
from sklearn.utils import _safe_indexing, check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_feature_names,
    _check_n_features,
    _check_sample_weight,
    _num_samples,
    check_array,
    check_consistent_length,
    check_is_fitted,
)

try:
    import dask
    import dask.array as da
    from distributed import default_client, wait
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "sklearn_bp.dask needs dask and distributed; install them with "
        'python -m pip install "sklearn_bp[dask]".'
    ) from exc

from . import _monitor, _targets, backprop
from ._classifier import BackpropClassifier
from ._loss import Objective
from ._monitor import MAX_FUN_DEFAULT
from ._regressor import BackpropRegressor

__all__ = ["DaskBackpropClassifier", "DaskBackpropRegressor"]

# Above this many bytes of gradient partials per evaluation, the partials are added on
# the workers in a fixed pairwise tree instead of all being sent to the driver.
_TREE_REDUCE_BYTES = 32 * 2**20


# ----------------------------------------------------------------------------------------
# Functions that run on the workers, one call per row block.
# ----------------------------------------------------------------------------------------


def _check_block(X, y, sample_weight, ravel_y, y_numeric):
    """Validate one row block as the estimator's fit validates all of the data."""
    X = check_array(X, accept_sparse="csr", dtype=(np.float64, np.float32),
                    ensure_min_samples=0, input_name="X")
    y = check_array(y, accept_sparse=False, ensure_2d=False,
                    dtype="numeric" if y_numeric else None, ensure_min_samples=0,
                    input_name="y")
    if ravel_y:
        y = y.ravel()
    check_consistent_length(X, y)
    if sample_weight is not None:
        sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64,
                                             ensure_non_negative=True)
    return X, y, sample_weight


class _BlockSummary(NamedTuple):
    """What the driver needs to know of one validated block."""

    n_rows: int
    n_features: int
    dtype: np.dtype
    weight_sum: float
    #: class labels: the distinct labels (or, for multilabel targets, label rows)
    labels: np.ndarray = None
    #: class labels with class_weight: ``_targets.class_totals`` of the block
    class_totals: tuple = None
    #: regression targets: y's dimensions, columns (1 for 1-D y) and least value
    y_ndim: int = 1
    n_outputs: int = 1
    y_min: float = np.inf


def _summarise_block(block, totals, regression):
    """The :class:`_BlockSummary` of a block ``(X, y, sample_weight)``; with `totals`,
    for class labels, their class totals."""
    X, y, sample_weight = block
    n_rows = X.shape[0]
    weight_sum = (float(n_rows) if sample_weight is None
                  else float(np.sum(sample_weight, dtype=np.float64)))
    summary = _BlockSummary(n_rows, X.shape[1], X.dtype, weight_sum)
    if regression:
        return summary._replace(y_ndim=y.ndim, n_outputs=y.shape[1] if y.ndim == 2 else 1,
                                y_min=float(y.min()) if y.size else np.inf)
    if y.ndim == 2:
        return summary._replace(labels=np.unique(y, axis=0))
    if not totals:
        return summary._replace(labels=np.unique(y))
    labels, index = np.unique(y, return_inverse=True)
    weights = np.ones(n_rows) if sample_weight is None else sample_weight
    return summary._replace(
        labels=labels,
        class_totals=_targets.class_totals(index.ravel(), labels.shape[0], weights))


def _rows(block, rows):
    """The rows `rows` (a boolean mask) of a block ``(X, y, sample_weight)``."""
    X, y, sample_weight = block
    return X[rows], y[rows], None if sample_weight is None else sample_weight[rows]


def _labels_and_weights(block, labels):
    """The block's labels (None unless `labels`) and sample weights."""
    return block[1] if labels else None, block[2]


def _targets_of(y, targets, dtype=np.float64):
    """The targets of a block's `y` as the loss object fits them, encoded as the
    in-process estimator encodes all of y: unit labels or a compact indicator for class
    labels (:func:`sklearn_bp._targets.encode`), the matrix of values in `dtype` for
    regression. `targets` is ``(y_type, output_activation, classes)`` of all of y
    (``y_type`` "continuous" for regression)."""
    y_type, output_activation, classes = targets
    if y_type == "continuous":
        return y.reshape(y.shape[0], -1).astype(dtype, copy=False)
    return _targets.encode(y, y_type, output_activation, classes)[1]


def _encode_block(block, held, targets, dtype, per_class=None):
    """The block's targets (:func:`_targets_of`) and its sample weights times the
    weights of their classes (`per_class`, in the order of the classes), as
    ``BackpropClassifier.fit`` multiplies them in. The rows `held` out for early
    stopping are left out."""
    if held is not None:
        block = _rows(block, ~held)
    X, y, sample_weight = block
    Y = _targets_of(y, targets, dtype)
    if per_class is not None:
        classes = targets[2]
        weights = np.ones(y.shape[0]) if sample_weight is None else sample_weight
        sample_weight = weights * per_class[np.searchsorted(classes, y)]
    return X.astype(dtype, copy=False), Y, sample_weight


def _held_out_block(block, held, targets, dtype):
    """The rows `held` out for early stopping, as ``(X, Y, sample_weight)`` (`targets`
    as in :func:`_targets_of`)."""
    X, y, sample_weight = _rows(block, held)
    return X.astype(dtype, copy=False), _targets_of(y, targets), sample_weight


def _block_correct(block, theta, loss):
    """``(sum of the weights of the rows predicted right, sum of the weights)``; counts
    without weights, so that their ratio is the in-process accuracy exactly."""
    X, Y, sample_weight = block
    correct = _monitor.correct_rows(loss, theta, X, Y)
    if sample_weight is None:
        return int(np.count_nonzero(correct)), correct.shape[0]
    return float(np.dot(correct, sample_weight)), float(np.sum(sample_weight))


def _block_target_sums(block):
    """``(sum of the weights, the weighted sum of each target column)``."""
    _, Y, sample_weight = block
    weights = np.ones(Y.shape[0]) if sample_weight is None else sample_weight
    return float(np.sum(weights)), weights @ Y


def _block_squares(block, centre=None, theta=None, loss=None):
    """Per target column, the weighted sum of squares of ``Y - centre`` or, given the
    network ``theta`` (and its `loss`), of the residuals ``Y - prediction``."""
    X, Y, sample_weight = block
    if theta is not None:
        coefs, intercepts = backprop.unpack(theta.astype(loss.dtype), loss.layer_sizes)
        centre = loss.forward(
            coefs, intercepts, X, n_threads=1,
            output=_monitor.prediction_output(loss.output_activation, Y.shape[1]))
    weights = np.ones(Y.shape[0]) if sample_weight is None else sample_weight
    return weights @ (Y - centre) ** 2


def _block_partial_sums(block, theta, loss):
    X, Y, sample_weight = block
    return loss.partial_sums(theta, X, Y, sample_weight)


def _add_partial_sums(a, b):
    return backprop.PartialSums(a.loss + b.loss, a.gradient + b.gradient)


def _apply(block, model, method):
    return getattr(model, method)(block)


# ----------------------------------------------------------------------------------------
# The data on the workers, the objective over them, and the held-out scores.
# ----------------------------------------------------------------------------------------


class _TrainingBlocks(NamedTuple):
    """Validated, encoded row blocks persisted on the workers, and what fit needs to
    know of them."""

    client: object
    #: futures of the training blocks ``(X_i, Y_i, sample_weight_i)``
    futures: list
    #: futures of early stopping's held-out blocks ``(X_i, Y_i, sample_weight_i)``
    held_out: list
    n_features: int
    n_outputs: int
    dtype: type
    #: ``S``, the training rows' total weight
    weight_sum: float
    y_type: str
    #: the fitted attributes that describe the targets (``classes_``, ...)
    fitted: dict


class BlockObjective(Objective):
    """The loss object's objective over row blocks held by Dask workers.

    Each evaluation sends ``theta`` to the workers once; every block's partial sums are
    computed where the block lives, by the same loss object as in-process, and added in
    block order on this process (or in a fixed pairwise tree on the workers when the
    partial gradients are large), so the result does not depend on timing.
    """

    def __init__(self, loss, blocks):
        self.loss, self.client, self.futures = loss, blocks.client, blocks.futures
        self.weight_sum = blocks.weight_sum

    def partial_sums(self, theta):
        client = self.client
        theta_future = client.scatter(theta, broadcast=True, hash=False)
        parts = client.map(_block_partial_sums, self.futures, theta=theta_future,
                           loss=self.loss, pure=False)
        grad_bytes = self.loss.n_params * self.loss.dtype.itemsize
        if len(parts) > 2 and len(parts) * grad_bytes > _TREE_REDUCE_BYTES:
            # A fixed pairwise tree: deterministic, and the driver receives one vector.
            while len(parts) > 1:
                pairs = [parts[i:i + 2] for i in range(0, len(parts), 2)]
                parts = [client.submit(_add_partial_sums, *pair, pure=False)
                         if len(pair) == 2 else pair[0] for pair in pairs]
        return client.gather(parts)

    def close(self):
        """Drop the references to the blocks; the workers then free them."""
        self.futures = []


class _BlockAccuracy:
    """Early stopping's accuracy, ``theta -> score`` on the held-out blocks, scored
    where they are."""

    def __init__(self, loss, blocks):
        self.loss, self.client, self.held_out = loss, blocks.client, blocks.held_out

    def __call__(self, theta):
        client = self.client
        theta_future = client.scatter(theta, broadcast=True, hash=False)
        parts = client.gather(client.map(
            _block_correct, self.held_out, theta=theta_future, loss=self.loss,
            pure=False,
        ))
        return float(sum(p[0] for p in parts) / sum(p[1] for p in parts))

    def close(self):
        self.held_out = []


class _BlockR2(_BlockAccuracy):
    """Early stopping's R^2, ``theta -> score`` on the held-out blocks, scored where
    they are: each block sends its weighted squared residuals per output; the held-out
    targets' weighted mean and total sum of squares are computed once, here."""

    def __init__(self, loss, blocks):
        super().__init__(loss, blocks)
        client = self.client
        sums = client.gather(client.map(_block_target_sums, self.held_out, pure=False))
        self.mean = sum(s[1] for s in sums) / sum(s[0] for s in sums)
        self.total = sum(client.gather(client.map(_block_squares, self.held_out,
                                                  centre=self.mean, pure=False)))

    def __call__(self, theta):
        client = self.client
        theta_future = client.scatter(theta, broadcast=True, hash=False)
        residual = sum(client.gather(client.map(
            _block_squares, self.held_out, theta=theta_future, loss=self.loss,
            pure=False)))
        return _monitor.r2_from_sums(residual, self.total)


def _is_dask_frame(obj):
    """A dask DataFrame or Series (told apart without importing dask.dataframe)."""
    return dask.is_dask_collection(obj) and hasattr(obj, "map_partitions")


def _pieces(obj, name, lengths, n_blocks, client):
    """Split `obj` into the row blocks of X: delayed blocks, futures, or Nones.

    `lengths` are the rows per block of X: needed for in-memory `obj`, otherwise None
    when Dask does not know them.
    """
    if obj is None:
        return [None] * n_blocks
    if isinstance(obj, da.Array):
        if obj.ndim == 2 and obj.numblocks[1] > 1:
            obj = obj.rechunk({1: -1})
        row_chunks = obj.chunks[0]
        if (lengths is not None and not any(np.isnan(row_chunks))
                and tuple(row_chunks) != tuple(lengths)):
            obj = obj.rechunk({0: tuple(lengths)})
        pieces = list(obj.to_delayed().ravel())
    elif _is_dask_frame(obj):
        pieces = list(obj.to_delayed())
    elif dask.is_dask_collection(obj):
        raise TypeError(
            f"{name} is a {type(obj).__name__}; the Dask estimators take dask arrays, "
            "dask DataFrames or Series, or in-memory arrays."
        )
    else:
        stops = np.cumsum(lengths)
        if _num_samples(obj) != stops[-1]:
            raise ValueError(
                f"{name} has {_num_samples(obj)} rows but X has {int(stops[-1])}; give "
                f"one {name} value per row of X."
            )
        return client.scatter(
            [_safe_indexing(obj, slice(int(stop - m), int(stop)))
             for m, stop in zip(lengths, stops)],
            hash=False,
        )
    if len(pieces) != n_blocks:
        raise ValueError(
            f"X is split into {n_blocks} row blocks but {name} into {len(pieces)}; "
            f"partition {name} like X, for example y.rechunk(X.chunks[0]) for dask arrays "
            "or columns of the same dask DataFrame."
        )
    return pieces


def _row_blocks_of_X(X, client):
    """X as a list of row blocks (delayed or futures) and their lengths (or None)."""
    if isinstance(X, da.Array):
        if X.ndim == 2 and np.isnan(X.shape[1]):
            raise ValueError(
                "X has an unknown number of columns; compute its chunk sizes first "
                "(X.compute_chunk_sizes())."
            )
        if X.ndim == 2 and X.numblocks[1] > 1:
            X = X.rechunk({1: -1})
        lengths = None if any(np.isnan(X.chunks[0])) else tuple(X.chunks[0])
        return list(X.to_delayed().ravel()), lengths
    if _is_dask_frame(X):
        return list(X.to_delayed()), None
    if dask.is_dask_collection(X):
        raise TypeError(
            f"X is a {type(X).__name__}; the Dask estimators take dask arrays, dask "
            "DataFrames, or in-memory arrays."
        )
    # In memory: one block per worker thread, sent to the workers once.
    n_samples = _num_samples(X)
    n_threads = max(1, sum(client.nthreads().values()))
    lengths = tuple(len(part) for part in np.array_split(np.arange(n_samples), n_threads)
                    if len(part)) or (0,)
    return _pieces(X, "X", lengths, len(lengths), client), lengths


def _is_one_column(y):
    """Whether `y` is 2-D with one column (raveled, with the estimators' warning)."""
    shape = y.shape if hasattr(y, "ndim") else np.shape(y)
    return len(shape) == 2 and shape[1] == 1


# ----------------------------------------------------------------------------------------
# The estimators.
# ----------------------------------------------------------------------------------------


class _DaskFit:
    """What the Dask estimators add to the in-process ones: the client, the fit on row
    blocks held by the workers, and lazy predictions.

    A subclass (left of its in-process estimator) sets ``_local_class`` and defines
    :meth:`_targets_of_summaries` and :meth:`_held_out_score`.
    """

    _local_class = None

    # A Client can be neither pickled nor deep-copied: clones share it, pickles drop it.

    def __getstate__(self):
        state = super().__getstate__()
        state["client"] = None
        return state

    def __sklearn_clone__(self):
        without_client = copy.copy(self)
        without_client.client = None
        clone = super(_DaskFit, without_client).__sklearn_clone__()
        clone.client = self.client
        return clone

    def _get_client(self):
        if self.client is not None:
            return self.client
        try:
            return default_client()
        except ValueError:
            name = type(self).__name__
            raise ValueError(
                f"{name} found no Dask client: pass one, "
                f"{name}(client=distributed.Client(...)), or create a "
                "Client before calling fit (the last one created is the default)."
            ) from None

    # ------------------------------------------------------------------------------------
    # Fitting
    # ------------------------------------------------------------------------------------

    def _fit_blocks(self, X, y, sample_weight):
        """The body of ``fit``: persist the blocks, minimise over them, release them."""
        self._solver_options()  # refuse options the solver cannot honour, before any work
        client = self._get_client()
        blocks = self._persist_blocks(client, X, y, sample_weight)
        layer_sizes = (blocks.n_features, *self._hidden_sizes(), blocks.n_outputs)
        loss = self._network_loss(layer_sizes, blocks.dtype)
        objective = BlockObjective(loss, blocks)
        validation = (None if blocks.held_out is None
                      else self._held_out_score(loss, blocks))
        try:
            return self._fit_objective(objective, blocks.fitted, validation=validation)
        finally:  # drop the references to the blocks: the workers then free them
            objective.close()
            if validation is not None:
                validation.close()

    def _targets_of_summaries(self, summaries):
        """``(y_type, classes, n_outputs, fitted)`` of all of y, from the blocks'
        summaries (``classes`` None for regression; ``fitted`` the fitted attributes
        that describe the targets)."""
        raise NotImplementedError

    def _held_out_score(self, loss, blocks):
        """Early stopping's score on the held-out blocks, ``theta -> score``."""
        raise NotImplementedError

    def _persist_blocks(self, client, X, y, sample_weight):
        """The data as validated, encoded row blocks persisted on the workers: a
        :class:`_TrainingBlocks`. Four steps: validate the blocks where they are,
        summarise them here, split off early stopping's rows (or weigh the classes),
        encode the targets on the workers."""
        # Feature names from the columns, without computing anything.
        _check_feature_names(self, X._meta if _is_dask_frame(X) else X, reset=True)
        checked = self._validated_blocks(client, X, y, sample_weight)
        # Class totals for class_weight; with early stopping they come from the training
        # rows only, counted after the split.
        class_weight = getattr(self, "class_weight", None)
        totals = class_weight is not None and not self.early_stopping
        summaries = client.gather(client.map(
            _summarise_block, checked, totals=totals,
            regression=issubclass(self._local_class, BackpropRegressor), pure=False))
        n_features, dtype, weight_sum = self._check_summaries(summaries)
        self.n_features_in_ = n_features
        y_type, classes, n_outputs, fitted = self._targets_of_summaries(summaries)
        kept = [f for f, s in zip(checked, summaries) if s.n_rows > 0]
        del checked
        held, per_class, weight_sum = self._split(client, kept, summaries, y_type, classes,
                                                  weight_sum)
        futures, held_out = self._encode(client, kept, held,
                                         (y_type, self._output_activation(), classes), dtype,
                                         per_class)
        return _TrainingBlocks(client, futures, held_out, n_features, n_outputs, dtype,
                               weight_sum, y_type, fitted)

    def _validated_blocks(self, client, X, y, sample_weight):
        """Futures of the row blocks ``(X_i, y_i, sample_weight_i)``, each validated
        where it is, as the in-process estimator's fit validates all of the data."""
        x_pieces, lengths = _row_blocks_of_X(X, client)
        n_blocks = len(x_pieces)
        if lengths is None and not all(
            obj is None or dask.is_dask_collection(obj) for obj in (y, sample_weight)
        ):
            # In-memory y or sample_weight: split them like X, whose block lengths a
            # (cheap) Dask computation gives.
            lengths = tuple(client.gather(client.compute(
                [dask.delayed(_num_samples)(piece) for piece in x_pieces]
            )))
        y_pieces = _pieces(y, "y", lengths, n_blocks, client)
        w_pieces = _pieces(sample_weight, "sample_weight", lengths, n_blocks, client)
        ravel_y = _is_one_column(y)
        if ravel_y:
            warnings.warn(
                "A column-vector y was passed when a 1d array was expected. Please "
                "change the shape of y to (n_samples, ), for example using ravel().",
                DataConversionWarning,
                stacklevel=6,  # here, _persist_blocks, _fit_blocks, fit, _fit_context
            )
        y_numeric = issubclass(self._local_class, BackpropRegressor)
        return client.compute(
            [dask.delayed(_check_block)(xi, yi, wi, ravel_y, y_numeric)
             for xi, yi, wi in zip(x_pieces, y_pieces, w_pieces)]
        )

    def _check_summaries(self, summaries):
        """``(n_features, dtype, weight_sum)`` of all blocks, checked as a whole."""
        n_features = {s.n_features for s in summaries}
        if sum(s.n_rows for s in summaries) == 0:
            raise ValueError(
                "Found array with 0 sample(s) while a minimum of 1 is required by "
                f"{type(self).__name__}."
            )
        if len(n_features) > 1:
            raise ValueError(
                "The row blocks of X have different numbers of columns, "
                f"{sorted(n_features)}; every row of X needs the same features."
            )
        dtype = (np.float32 if all(s.dtype == np.float32 for s in summaries)
                 else np.float64)
        weight_sum = float(sum(s.weight_sum for s in summaries))
        if not weight_sum > 0:
            raise ValueError(
                "Every training sample has sample_weight 0, so there is nothing to fit."
            )
        return n_features.pop(), dtype, weight_sum

    def _split(self, client, blocks, summaries, y_type, classes, weight_sum):
        """Early stopping's held-out rows of each block (boolean masks, or None), the
        weight of each class (None without `class_weight`) and the training rows' total
        weight ``S``."""
        if self.early_stopping:
            return self._early_stopping_split(
                client, blocks, [s.n_rows for s in summaries if s.n_rows > 0], y_type,
                classes)
        if getattr(self, "class_weight", None) is None:
            return None, None, weight_sum
        # The class totals of the blocks add up to those of the whole of y.
        _targets.check_class_weight_target(self.class_weight, y_type)
        counts, sums = np.zeros(classes.shape[0], np.int64), np.zeros(classes.shape[0])
        for summary in summaries:
            if summary.n_rows > 0:
                index = np.searchsorted(classes, summary.labels)
                counts[index] += summary.class_totals[0]
                sums[index] += summary.class_totals[1]
        per_class = _targets.class_multipliers(self.class_weight, classes, counts, sums)
        weight_sum = float(per_class @ sums)
        _targets.check_class_weighted_sum(self.class_weight, weight_sum)
        return None, per_class, weight_sum

    @staticmethod
    def _encode(client, blocks, held, targets, dtype, per_class):
        """Futures of the encoded training blocks ``(X_i, Y_i, sample_weight_i)`` and of
        the held-out ones (None without early stopping), computed and checked."""
        futures = client.map(
            _encode_block, blocks, [None] * len(blocks) if held is None else held,
            targets=targets, dtype=dtype, per_class=per_class, pure=False,
        )
        held_out = None
        if held is not None:
            with_held = [(f, h) for f, h in zip(blocks, held) if h.any()]
            held_out = client.map(
                _held_out_block, *zip(*with_held), targets=targets, dtype=dtype,
                pure=False,
            )
        wait(futures + (held_out or []))
        for future in futures + (held_out or []):
            if future.status == "error":
                future.result()  # raises the worker's error here
        return futures, held_out

    def _early_stopping_split(self, client, blocks, lengths, y_type, classes):
        """The in-process estimator's split for early stopping, drawn here from the
        labels (for stratified or class-weighted splits) and sample weights of `blocks`
        (one column each, gathered to this process; X stays on the workers).

        Returns the held-out rows of each block (boolean masks), the weight of each class
        (None without `class_weight`) and the training rows' total weight ``S``.
        """
        class_weight = getattr(self, "class_weight", None)
        stratified = y_type in ("binary", "multiclass")
        labels, weights = zip(*client.gather(client.map(
            _labels_and_weights, blocks, labels=stratified or class_weight is not None,
            pure=False)))
        n_samples = int(sum(lengths))
        y = None if labels[0] is None else np.concatenate(labels)
        sample_weight = (None if weights[0] is None
                         else np.concatenate(weights).astype(np.float64, copy=False))
        rng = check_random_state(self.random_state)
        train, held_out = _monitor.validation_split(
            n_samples, y if stratified else None, self.validation_fraction,
            _monitor.split_random_state(self.random_state, rng),
        )
        train_weight = None if sample_weight is None else sample_weight[train]
        # The same checks, in the same order, as the in-process estimator's fit.
        per_class = training = None
        if class_weight is not None:
            y_train = y[train]
            per_class = _targets.class_weights_of(class_weight, y_type, classes, y_train,
                                                  train_weight)
            training = _targets.training_weights(class_weight, y_type, classes, y_train,
                                                 train_weight, per_class)
        else:
            training = _targets.check_training_weights(train_weight)
        _monitor.check_validation_weights(
            None if sample_weight is None else sample_weight[held_out])
        weight_sum = (float(train.shape[0]) if training is None
                      else float(np.sum(training, dtype=np.float64)))
        mask = np.zeros(n_samples, bool)
        mask[held_out] = True
        stops = np.cumsum(lengths)
        held = [mask[stop - m:stop] for m, stop in zip(lengths, stops)]
        return held, per_class, weight_sum

    def to_local(self):
        """The in-process estimator with the same weights and attributes.

        It needs neither Dask nor a client, so it can be pickled, served or inspected
        anywhere scikit-learn runs.

        Returns
        -------
        model : BackpropClassifier or BackpropRegressor
            A fitted copy; changing it leaves this estimator unchanged.
        """
        check_is_fitted(self)
        params = self.get_params(deep=False)
        del params["client"]
        local = self._local_class(**params)
        for name, value in vars(self).items():
            if name not in params and name != "client":
                setattr(local, name, copy.deepcopy(value))
        return local

    def _lazy(self, method, X):
        """``method`` of the local model, mapped over the row blocks of a dask `X`."""
        check_is_fitted(self)
        if _is_dask_frame(X):
            _check_feature_names(self, X._meta, reset=False)
            X = X.to_dask_array()
        else:
            _check_feature_names(self, X, reset=False)
        if not isinstance(X, da.Array) or X.ndim != 2:
            raise ValueError(
                f"Expected a 2-D dask array or a dask DataFrame, got {type(X).__name__}"
                f" with {getattr(X, 'ndim', '?')} dimension(s)."
            )
        _check_n_features(self, X, reset=False)
        if X.numblocks[1] > 1:
            X = X.rechunk({1: -1})
        model = self.to_local()
        # Feature names were checked above; the blocks are plain arrays.
        model.__dict__.pop("feature_names_in_", None)
        probe = getattr(model, method)(np.zeros((1, self.n_features_in_)))
        if probe.ndim == 1:
            return X.map_blocks(_apply, model, method, drop_axis=1, dtype=probe.dtype,
                                meta=np.empty((0,), probe.dtype))
        return X.map_blocks(_apply, model, method, chunks=(X.chunks[0], probe.shape[1:]),
                            dtype=probe.dtype, meta=np.empty((0, 0), probe.dtype))

    def _lazy_or_local(self, method, X):
        """``method`` of the local model: lazy on dask `X`, eager otherwise."""
        if dask.is_dask_collection(X):
            return self._lazy(method, X)
        return getattr(self._local_class, method)(self, X)


class DaskBackpropClassifier(_DaskFit, BackpropClassifier):
    """:class:`~sklearn_bp.BackpropClassifier` fitted on row blocks held by Dask workers.

    ``fit`` validates the data block by block on the workers and keeps the blocks there.
    L-BFGS-B runs on this process; each of its cost-and-gradient evaluations sends the
    weights to the workers once, computes every block's partial sums where the block lives,
    and adds them here (in block order; or in a fixed pairwise tree on the workers when
    the partial gradients are large). The model, its initialisation, the optimiser and
    the fitted attributes are those of :class:`~sklearn_bp.BackpropClassifier`, so the
    same data and `random_state` give the same fit up to rounding.

    Each row block should hold enough rows for about 100 ms of work per evaluation, with
    one or two blocks per worker thread: the distributed path costs some tens of
    milliseconds per evaluation (see the "Dask" page of the documentation for
    measurements), so below about 50 000 rows :class:`~sklearn_bp.BackpropClassifier`
    is faster.

    Parameters
    ----------
    client : distributed.Client, default=None
        The Dask client to compute with. ``None`` uses the current default client (the
        one created last). It is not pickled: an unpickled estimator has
        ``client=None``.
    hidden_layer_sizes : array-like of shape (n_hidden_layers,), default=(100,)
        Number of units in each hidden layer (``()``: none).
    activation : {"logistic", "tanh", "relu", "identity"}, default="logistic"
        Hidden activation.
    output_activation : {"logistic", "softmax"}, default="logistic"
        One sigmoid per class, or one softmax over the classes, as in
        :class:`~sklearn_bp.BackpropClassifier`.
    solver : {"lbfgs", "cg", "bfgs", "tnc"}, default="lbfgs"
        The method of :func:`scipy.optimize.minimize`, as in
        :class:`~sklearn_bp.BackpropClassifier`; it runs on this process, and only its
        cost-and-gradient evaluations are distributed.
    alpha : float, default=1e-4
        Strength of the L2 penalty on the weights (intercepts are not penalised).
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes, multiplied into `sample_weight`, as in
        :class:`~sklearn_bp.BackpropClassifier`. "balanced" counts the classes over all
        the blocks (their counts and weight sums are added up on this process).
    max_iter : int, default=200
        Maximum number of iterations of the solver.
    max_fun : int, default=15000
        Maximum number of cost-and-gradient evaluations, for solvers "lbfgs" and "tnc".
    tol : float, default=1e-4
        scipy's ``gtol``: stop when the largest absolute gradient component is below.
    early_stopping : bool, default=False
        As in :class:`~sklearn_bp.BackpropClassifier`, with the same held-out rows: the
        labels and sample weights (one column each) are gathered to this process to
        draw the stratified split, while the rows of `X` stay on the workers, where the
        held-out ones are scored after every iteration (one more round trip per
        iteration).
    validation_fraction : float, default=0.1
        The fraction of the samples held out with `early_stopping`.
    n_iter_no_change : int or np.inf, default=10
        With `early_stopping`, the iterations without improvement that end the fit
        (np.inf: never).
    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights. Pass an int for reproducible fits.
    warm_start : bool, default=False
        Continue from the weights of the previous fit instead of a fresh initialisation.
    verbose : int, default=0
        If positive, print one line per iteration: iteration, cost, the largest
        absolute component of the gradient (``max |gradient|``, compared with `tol`).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels, found by a Dask computation of the distinct labels of `y`.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names seen during fit, when `X` is a (dask) DataFrame with string column
        names.
    coefs_ : list of ndarray
        ``coefs_[l]`` of shape ``(layer_sizes[l], layer_sizes[l+1])``.
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
    sklearn_bp.BackpropClassifier : The same model, fitted in this process.

    Notes
    -----
    `X` may be a dask array (its row chunks are the blocks; column chunks are joined), a
    dask DataFrame (its partitions are the blocks), or an in-memory array, DataFrame or
    sparse matrix (split into one block per worker thread and sent to the workers once).
    `y` and `sample_weight` may be dask collections split like `X` (dask arrays are
    rechunked to the row chunks of `X` when both are known) or in-memory arrays.

    ``predict``, ``predict_proba``, ``predict_log_proba`` and ``decision_function``
    return dask arrays for dask inputs, computed block by block with the fitted weights
    when you compute them, and numpy arrays for in-memory inputs. :meth:`to_local` gives
    a plain :class:`~sklearn_bp.BackpropClassifier` with the same weights, which needs
    neither Dask nor a client.

    Examples
    --------
    A client on workers in this process (``processes=False``), reachable from this
    machine only, for the example; for data larger than one machine, connect to a
    cluster instead, ``Client("scheduler-address:8786")``.

    >>> import dask.array as da
    >>> from distributed import Client
    >>> from sklearn.datasets import make_classification
    >>> from sklearn_bp.dask import DaskBackpropClassifier
    >>> client = Client(processes=False, n_workers=2, threads_per_worker=1,
    ...                 host="127.0.0.1", protocol="tcp://", dashboard_address=None)
    >>> X, y = make_classification(n_samples=4000, n_features=10, random_state=0)
    >>> dX, dy = da.from_array(X, chunks=(1000, 10)), da.from_array(y, chunks=1000)
    >>> model = DaskBackpropClassifier(client, hidden_layer_sizes=(4,), alpha=10.0,
    ...                                random_state=0).fit(dX, dy)
    >>> model.classes_
    array([0, 1])
    >>> labels = model.predict(dX)   # lazy: a dask array
    >>> labels.shape, type(labels).__name__
    ((4000,), 'Array')
    >>> bool((labels.compute() == model.predict(X)).all())
    True
    >>> model.to_local().score(X, y) > 0.85
    True
    >>> client.close()
    """

    _local_class = BackpropClassifier
    _parameter_constraints = {
        **BackpropClassifier._parameter_constraints,
        "client": "no_validation",
    }

    def __init__(
        self,
        client=None,
        *,
        hidden_layer_sizes=(100,),
        activation="logistic",
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
        self.client = client
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            output_activation=output_activation,
            solver=solver,
            alpha=alpha,
            class_weight=class_weight,
            max_iter=max_iter,
            max_fun=max_fun,
            tol=tol,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            random_state=random_state,
            warm_start=warm_start,
            verbose=verbose,
        )

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the network on row blocks of `X`, `y` held by the Dask workers.

        Parameters
        ----------
        X : {dask array, dask DataFrame, array-like, sparse matrix} of shape \
                (n_samples, n_features)
            Training data. Each row chunk (partition) of a dask collection is a block;
            in-memory data are split into one block per worker thread.
        y : {dask array, dask Series or DataFrame, array-like} of shape (n_samples,) \
                or (n_samples, n_labels)
            Class labels, or a 0/1 indicator matrix for multilabel targets, split into
            the same row blocks as `X`.
        sample_weight : {dask array, dask Series, array-like} of shape (n_samples,), \
                default=None
            Non-negative weights of the samples, split like `X`.

        Returns
        -------
        self : DaskBackpropClassifier
            The fitted estimator.
        """
        return self._fit_blocks(X, y, sample_weight)

    def _targets_of_summaries(self, summaries):
        """The classes from the distinct labels of every block, as BackpropClassifier
        finds them from the whole of y."""
        labels = [s.labels for s in summaries if s.n_rows > 0]
        if labels[0].ndim == 2:
            distinct = np.unique(np.concatenate(labels), axis=0)
        else:
            distinct = np.unique(np.concatenate(labels))
        check_classification_targets(distinct)
        y_type, classes, _, n_outputs = self._targets(distinct)
        fitted = {"classes_": classes, "_y_type": y_type}
        return y_type, classes, n_outputs, fitted

    def _held_out_score(self, loss, blocks):
        return _BlockAccuracy(loss, blocks)

    def decision_function(self, X):
        """Logits of the output units; a dask array for dask `X`.

        Parameters
        ----------
        X : {dask array, dask DataFrame, array-like, sparse matrix} of shape \
                (n_samples, n_features)

        Returns
        -------
        scores : {dask array, ndarray} of shape (n_samples,) or (n_samples, n_outputs)
            For binary targets, one score per sample, positive for ``classes_[1]``.
        """
        return self._lazy_or_local("decision_function", X)

    def predict_proba(self, X):
        """Probability estimates; a dask array for dask `X`.

        Parameters
        ----------
        X : {dask array, dask DataFrame, array-like, sparse matrix} of shape \
                (n_samples, n_features)

        Returns
        -------
        proba : {dask array, ndarray} of shape (n_samples, n_classes)
        """
        return self._lazy_or_local("predict_proba", X)

    def predict_log_proba(self, X):
        """Logarithm of the probability estimates; a dask array for dask `X`.

        Parameters
        ----------
        X : {dask array, dask DataFrame, array-like, sparse matrix} of shape \
                (n_samples, n_features)

        Returns
        -------
        log_proba : {dask array, ndarray} of shape (n_samples, n_classes)
        """
        return self._lazy_or_local("predict_log_proba", X)

    def predict(self, X):
        """Predict class labels; a dask array for dask `X`.

        Parameters
        ----------
        X : {dask array, dask DataFrame, array-like, sparse matrix} of shape \
                (n_samples, n_features)

        Returns
        -------
        y_pred : {dask array, ndarray} of shape (n_samples,) or (n_samples, n_labels)
        """
        return self._lazy_or_local("predict", X)


class DaskBackpropRegressor(_DaskFit, BackpropRegressor):
    """:class:`~sklearn_bp.BackpropRegressor` fitted on row blocks held by Dask workers.

    The regressor of :class:`~sklearn_bp.DaskBackpropClassifier`'s design: ``fit``
    validates the data block by block on the workers and keeps the blocks there;
    L-BFGS-B runs on this process, and each cost-and-gradient evaluation computes every
    block's partial sums where the block lives. The model, its initialisation, the
    optimiser and the fitted attributes are those of
    :class:`~sklearn_bp.BackpropRegressor`, so the same data and `random_state` give the
    same fit up to rounding.

    Parameters
    ----------
    client : distributed.Client, default=None
        The Dask client to compute with. ``None`` uses the current default client (the
        one created last). It is not pickled: an unpickled estimator has
        ``client=None``.
    hidden_layer_sizes : array-like of shape (n_hidden_layers,), default=(100,)
        Number of units in each hidden layer.
    activation : {"logistic", "tanh", "relu"}, default="logistic"
        Hidden activation.
    loss : {"squared_error", "poisson"}, default="squared_error"
        Half the squared error with identity outputs, or half the Poisson deviance with
        exponential outputs (non-negative targets), as in
        :class:`~sklearn_bp.BackpropRegressor`.
    solver : {"lbfgs", "cg", "bfgs", "tnc"}, default="lbfgs"
        The method of :func:`scipy.optimize.minimize`; it runs on this process, and only
        its cost-and-gradient evaluations are distributed.
    alpha : float, default=1e-4
        Strength of the L2 penalty on the weights (intercepts are not penalised).
    max_iter : int, default=200
        Maximum number of iterations of the solver.
    max_fun : int, default=15000
        Maximum number of cost-and-gradient evaluations, for solvers "lbfgs" and "tnc".
    tol : float, default=1e-4
        scipy's ``gtol``: stop when the largest absolute gradient component is below.
    early_stopping : bool, default=False
        As in :class:`~sklearn_bp.BackpropRegressor`, with the same held-out rows (the
        split needs only the number of rows and, with weights, the sample weights, which
        are gathered to this process). The held-out rows stay on the workers, where they
        are scored after every iteration: each block sends its weighted squared
        residuals, and this process forms the held-out R^2.
    validation_fraction : float, default=0.1
        The fraction of the samples held out with `early_stopping`.
    n_iter_no_change : int, default=10
        With `early_stopping`, the iterations without improvement that end the fit.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights and the `early_stopping` split.
    warm_start : bool, default=False
        Continue from the weights of the previous fit instead of a fresh initialisation.
    verbose : int, default=0
        If positive, print one line per iteration.

    Attributes
    ----------
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names seen during fit, when `X` is a (dask) DataFrame with string column
        names.
    coefs_ : list of ndarray
        ``coefs_[l]`` of shape ``(layer_sizes[l], layer_sizes[l+1])``.
    intercepts_ : list of ndarray
        ``intercepts_[l]`` of shape ``(layer_sizes[l+1],)``.
    n_layers_ : int
        Number of layers, input and output included.
    n_outputs_ : int
        Number of outputs.
    out_activation_ : str
        ``"identity"`` or ``"exp"``.
    n_iter_ : int
        Number of iterations run by the last fit.
    loss_ : float
        Cost at the final weights, penalty included.
    loss_curve_ : list of float
        Cost after each iteration.
    validation_scores_ : list of float or None
        With `early_stopping`, the held-out R^2 after each iteration; None otherwise.
    best_validation_score_ : float or None
        With `early_stopping`, the best of `validation_scores_`; None otherwise.

    See Also
    --------
    sklearn_bp.BackpropRegressor : The same model, fitted in this process.
    DaskBackpropClassifier : The classifier on Dask.

    Notes
    -----
    `X`, `y` and `sample_weight` may be given as for
    :class:`~sklearn_bp.dask.DaskBackpropClassifier`. ``predict`` returns a dask array
    for dask inputs, computed block by block with the fitted weights when you compute
    it, and a numpy array for in-memory inputs. :meth:`to_local` gives a plain
    :class:`~sklearn_bp.BackpropRegressor` with the same weights.

    Examples
    --------
    >>> import dask.array as da
    >>> from distributed import Client
    >>> from sklearn.datasets import make_regression
    >>> from sklearn_bp.dask import DaskBackpropRegressor
    >>> client = Client(processes=False, n_workers=2, threads_per_worker=1,
    ...                 host="127.0.0.1", protocol="tcp://", dashboard_address=None)
    >>> X, y = make_regression(n_samples=4000, n_features=10, noise=5.0,
    ...                        random_state=0)
    >>> y = y / y.std()
    >>> dX, dy = da.from_array(X, chunks=(1000, 10)), da.from_array(y, chunks=1000)
    >>> model = DaskBackpropRegressor(client, hidden_layer_sizes=(4,),
    ...                               random_state=0).fit(dX, dy)
    >>> prediction = model.predict(dX)   # lazy: a dask array
    >>> prediction.shape, type(prediction).__name__
    ((4000,), 'Array')
    >>> model.to_local().score(X, y) > 0.95
    True
    >>> client.close()
    """

    _local_class = BackpropRegressor
    _parameter_constraints = {
        **BackpropRegressor._parameter_constraints,
        "client": "no_validation",
    }

    def __init__(
        self,
        client=None,
        *,
        hidden_layer_sizes=(100,),
        activation="logistic",
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
        self.client = client
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            loss=loss,
            solver=solver,
            alpha=alpha,
            max_iter=max_iter,
            max_fun=max_fun,
            tol=tol,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            random_state=random_state,
            warm_start=warm_start,
            verbose=verbose,
        )

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the network on row blocks of `X`, `y` held by the Dask workers.

        Parameters
        ----------
        X : {dask array, dask DataFrame, array-like, sparse matrix} of shape \
                (n_samples, n_features)
            Training data. Each row chunk (partition) of a dask collection is a block;
            in-memory data are split into one block per worker thread.
        y : {dask array, dask Series or DataFrame, array-like} of shape (n_samples,) \
                or (n_samples, n_outputs)
            Targets (non-negative for ``loss="poisson"``), split into the same row
            blocks as `X`.
        sample_weight : {dask array, dask Series, array-like} of shape (n_samples,), \
                default=None
            Non-negative weights of the samples, split like `X`.

        Returns
        -------
        self : DaskBackpropRegressor
            The fitted estimator.
        """
        return self._fit_blocks(X, y, sample_weight)

    def _targets_of_summaries(self, summaries):
        """The number of outputs, the same in every block, and the Poisson loss's check
        of the targets' sign."""
        kept = [s for s in summaries if s.n_rows > 0]
        n_outputs = {s.n_outputs for s in kept}
        if len(n_outputs) > 1:
            raise ValueError(
                f"The row blocks of y have different numbers of columns, "
                f"{sorted(n_outputs)}; every row of y needs the same outputs."
            )
        y_min = min(s.y_min for s in kept)
        _targets.regression_targets(np.array([y_min]), self.loss)  # refuses y < 0
        return "continuous", None, n_outputs.pop(), {"_y_ndim": kept[0].y_ndim}

    def _held_out_score(self, loss, blocks):
        return _BlockR2(loss, blocks)

    def predict(self, X):
        """Predict the targets; a dask array for dask `X`.

        Parameters
        ----------
        X : {dask array, dask DataFrame, array-like, sparse matrix} of shape \
                (n_samples, n_features)

        Returns
        -------
        y_pred : {dask array, ndarray} of shape (n_samples,) or (n_samples, n_outputs)
        """
        return self._lazy_or_local("predict", X)
