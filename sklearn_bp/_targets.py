"""Targets: the labels as the loss object fits them, the weights of the classes, and the
matrix of regression targets.

Private helpers of both estimators (:mod:`sklearn_bp._classifier` and
:mod:`sklearn_bp.dask`), which encode labels and weigh classes here so that an
in-process fit and a distributed one see the same targets and the same weights.

The loss object (:mod:`sklearn_bp._loss`) takes the targets of a fit in one of three
forms, told apart by their shape and dtype, none of them an ``n x k`` float matrix for
class labels:

- **unit labels**, a 1-D signed integer array: for binary and multiclass targets, the
  output unit whose target is 1 in each row, and 0 for every other unit; ``-1`` for
  none (the first class, with one logistic unit for two classes). One small integer a
  row (:func:`encode`); the kernel reads them per row block.
- **a compact indicator**, a 2-D bool array: multilabel targets, one column per label.
- **values**, a 2-D float array: the regressor's targets, and the public functions'
  ``Y`` (:mod:`sklearn_bp.backprop`), which is the indicator matrix of the labels.

:func:`indicator` gives the 0/1 matrix ``Y`` of the equations of :mod:`sklearn_bp.backprop`
from either of the first two, for the tests and the public functions.
"""

import inspect
from numbers import Real

import numpy as np
import scipy.sparse as sp
from sklearn.utils.class_weight import compute_class_weight

# Recent scikit-learn (1.9 does) weighs the "balanced" class counts by sample_weight.
CLASS_WEIGHT_TAKES_SAMPLE_WEIGHT = (
    "sample_weight" in inspect.signature(compute_class_weight).parameters
)


# Labels encoded at a time (see encode)
_CHUNK = 1 << 16


def n_outputs_of(y_type, output_activation, n_classes):
    """Output units for `n_classes` classes: one per class, but a single logistic unit
    for binary targets."""
    one_unit = y_type == "binary" and output_activation != "softmax"
    return 1 if one_unit else int(n_classes)


def _unit_dtype(n_units):
    """The smallest signed integer type that holds ``-1, ..., n_units - 1``."""
    for dtype in (np.int8, np.int16, np.int32):
        if n_units <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.int64)


def encode(y, y_type, output_activation, classes=None):
    """``(classes, targets)``: the classes of the labels `y` and the targets the loss
    object fits (see the module): unit labels for binary and multiclass `y`, a compact
    bool indicator for multilabel `y`.

    `y_type` is `y`'s ``type_of_target``. Binary and multiclass labels give the sorted
    distinct labels as classes, one output unit per class, and for two classes one
    logistic unit, for the second (the first class is unit ``-1``, none), or with
    ``output_activation="softmax"`` both, as scikit-learn's ``LabelBinarizer`` encodes
    them. A multilabel indicator matrix is the indicator as it is (true where nonzero),
    with classes ``0, ..., n_labels - 1``. Given `classes` (the classes of all of the
    data, when `y` is one block of it), the rows are encoded against them.
    """
    if y_type == "multilabel-indicator":
        compact = np.asarray(y.toarray() if sp.issparse(y) else y) != 0
        return np.arange(compact.shape[1]) if classes is None else classes, compact
    # The sorted classes, then each label's index by a binary search over them, a chunk
    # of rows at a time into the small integers: no array of n indices (np.unique's
    # return_inverse made three of them, 8 bytes a row each). LabelBinarizer took 2.5
    # ms of a 33 ms fit on digits, this 0.1 ms.
    y = np.asarray(y).reshape(-1)
    if classes is None:
        classes = np.unique(y)
    n_units = n_outputs_of(y_type, output_activation, classes.shape[0])
    units = np.empty(y.shape[0], _unit_dtype(n_units))
    for start in range(0, y.shape[0], _CHUNK):
        units[start:start + _CHUNK] = np.searchsorted(classes, y[start:start + _CHUNK])
    if n_units < classes.shape[0]:  # one logistic unit, for the second class
        units -= 1
    return classes, units


def indicator(targets, n_outputs, dtype=np.float64):
    """The 0/1 matrix ``Y`` (n_samples, n_outputs) of unit labels or of a compact
    indicator (:func:`encode`), in `dtype`."""
    targets = np.asarray(targets)
    if targets.ndim == 2:
        return targets.astype(dtype)
    return (targets[:, None] == np.arange(n_outputs)).astype(dtype)


def indicator_matrix(y, y_type, output_activation, classes=None):
    """``(classes, Y)``: :func:`encode`'s classes and the float64 0/1 matrix ``Y`` of
    shape (n_samples, n_outputs) of its targets, as ``LabelBinarizer`` encodes the
    labels (then widened for a softmax output). The fit never makes it: it is the
    equations' ``Y`` that :func:`encode`'s compact targets stand for, which the tests
    compare them with."""
    classes, targets = encode(y, y_type, output_activation, classes)
    return classes, indicator(
        targets, n_outputs_of(y_type, output_activation, classes.shape[0]))


def training_weights(class_weight, y_type, classes, y, sample_weight, per_class=None):
    """``sample_weight`` multiplied by the weight of each sample's class.

    `per_class`, if given, is :func:`class_weights_of` for these arguments, already
    computed. Returns `sample_weight` itself (possibly None) when `class_weight` is None.
    "balanced" gives class ``c`` the weight ``n / (n_classes * n_c)``, counted over the
    samples with a positive weight (weighted by `sample_weight` where the installed
    scikit-learn's ``compute_class_weight`` accepts it, as 1.9's does), so that a zero
    weight still means "as if the sample were absent".
    """
    if class_weight is None:
        return check_training_weights(sample_weight)
    check_class_weight_target(class_weight, y_type)
    y_index = np.searchsorted(classes, y)  # each sample's class, found once
    if per_class is None:
        per_class = class_weights_of(class_weight, y_type, classes, y, sample_weight,
                                     y_index)
    weights = np.ones(y.shape[0]) if sample_weight is None else sample_weight
    weights = weights * per_class[y_index]
    check_class_weighted_sum(class_weight, weights.sum())
    return weights


def check_training_weights(sample_weight):
    """`sample_weight` (possibly None), refused if every weight is 0."""
    if sample_weight is not None and not np.any(sample_weight > 0):
        raise ValueError(
            "sample_weight must contain at least one non-zero number among the "
            "training samples (with early_stopping=True, those not held out for "
            "validation); with every weight 0 there is nothing to fit."
        )
    return sample_weight


def class_weights_of(class_weight, y_type, classes, y, sample_weight, y_index=None):
    """The weight of each class of `classes` for the samples `y`, `sample_weight`
    (`y_index`, if given, is each sample's index in `classes`)."""
    check_class_weight_target(class_weight, y_type)
    weights = np.ones(y.shape[0]) if sample_weight is None else sample_weight
    if y_index is None:
        y_index = np.searchsorted(classes, y)
    return class_multipliers(class_weight, classes,
                             *class_totals(y_index, classes.shape[0], weights))


def check_class_weight_target(class_weight, y_type):
    if class_weight is not None and y_type == "multilabel-indicator":
        raise ValueError(
            f"class_weight={class_weight!r} weighs each sample by its class, but a "
            "multilabel sample can carry several labels at once. Leave class_weight=None "
            "and pass sample_weight instead, for example "
            "sklearn.utils.class_weight.compute_sample_weight('balanced', Y)."
        )


def class_totals(y_index, n_classes, weights):
    """Per class: how many samples have a positive weight, and the sum of their weights.

    Totals over disjoint sets of samples add up, so a distributed fit sums them over
    its blocks and hands them to :func:`class_multipliers`.
    """
    counted = weights > 0
    counts = np.bincount(y_index[counted], minlength=n_classes)
    sums = np.bincount(y_index[counted], weights=weights[counted], minlength=n_classes)
    return counts, sums


def class_multipliers(class_weight, classes, counts, sums):
    """The weight of each class, from a dict or "balanced" and the :func:`class_totals`.

    "balanced" is ``compute_class_weight``'s ``total / (n_present * total_c)`` over the
    classes present among the positive-weight samples, with the totals weighted by
    sample weight where the installed scikit-learn weighs them (1.9 does), and 0 for the
    classes absent there.
    """
    per_class = np.ones(classes.shape[0])
    if isinstance(class_weight, dict):
        labels = classes.tolist()
        unknown = [key for key in class_weight if key not in labels]
        if unknown:
            raise ValueError(
                f"class_weight has keys {unknown!r} that are not classes of y; the "
                f"classes are {labels!r}. Use the class labels as keys."
            )
        for key, value in class_weight.items():
            if not isinstance(value, Real) or not np.isfinite(value) or value < 0:
                raise ValueError(
                    f"class_weight[{key!r}] = {value!r}; class weights must be finite "
                    "non-negative numbers."
                )
            per_class[labels.index(key)] = float(value)
    else:  # "balanced"
        present = counts > 0
        totals = (sums if CLASS_WEIGHT_TAKES_SAMPLE_WEIGHT else counts)[present]
        per_class = np.zeros(classes.shape[0])
        per_class[present] = totals.sum() / (np.count_nonzero(present) * totals)
    return per_class


def check_class_weighted_sum(class_weight, weight_sum):
    if not weight_sum > 0:
        raise ValueError(
            f"With class_weight={class_weight!r}, every training sample has weight 0, so "
            "there is nothing to fit. Give at least one class present in y a positive "
            "weight."
        )


def regression_targets(y, loss):
    """The targets `y` (1-D or 2-D, numeric) as the ``(n_samples, n_outputs)`` matrix
    ``Y`` of the regressor, in float64; for the Poisson loss, refused if negative."""
    Y = np.asarray(y, dtype=np.float64)
    Y = Y.reshape(-1, 1) if Y.ndim == 1 else Y
    if loss == "poisson" and Y.size and Y.min() < 0:
        raise ValueError(
            f"loss='poisson' needs non-negative targets (counts, rates), but y has "
            f"values as small as {Y.min()!r}. Use loss='squared_error' for targets of "
            "any sign."
        )
    return Y
