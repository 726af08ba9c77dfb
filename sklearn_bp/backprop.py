r"""Backpropagation for a multilayer perceptron, as pure functions.

Nothing here knows about scikit-learn or keeps state: every function maps arrays to
arrays. The estimator in :mod:`sklearn_bp._classifier` only calls these functions.

Notation, in the code's orientation (rows are samples)
-------------------------------------------------------
``layer_sizes = (h_0, h_1, ..., h_L)`` with ``h_0 = n_features`` and ``h_L = n_outputs``.
``coefs[l]`` (``W_l``) has shape ``(h_l, h_{l+1})`` and ``intercepts[l]`` (``b_l``) has
shape ``(h_{l+1},)``, for ``l = 0, ..., L-1``. ``A_0 = X`` has shape ``(n, h_0)``, ``Y``
is the ``(n, h_L)`` 0/1 indicator matrix, ``s`` the sample weights and ``S = sum_i s_i``
(``S = n`` without weights). ``g`` is the hidden activation, ``*`` the elementwise product.

Forward pass::

    (F1)  Z_{l+1} = A_l @ W_l + b_l                       affine map of layer l
    (F2)  A_{l+1} = g(Z_{l+1})                  for l+1 < L (hidden layers)
    (F3)  A_L = sigma(Z_L)  or  A_L = softmax(Z_L)         output layer

Cost, the weighted mean cross-entropy plus an L2 penalty on the weights only::

    (C1)  J = (1/S) sum_i s_i c_i + alpha / (2 S) * sum_l ||W_l||_F^2
    (C2)  c_i = sum_k  y_ik log(1 + e^{-z_ik}) + (1 - y_ik) log(1 + e^{z_ik})   (logistic)
    (C3)  c_i = log sum_k e^{z_ik} - sum_k y_ik z_ik                            (softmax)

Backward pass (backpropagation), the chain rule applied from the output back::

    (B1)  D_L = A_L - Y                                    output delta
    (B2)  D_l = (D_{l+1} @ W_l^T) * g'(Z_l)      for 0 < l < L (hidden deltas)
    (G1)  dJ/dW_l = (A_l^T @ (s * D_{l+1}) + alpha W_l) / S
    (G2)  dJ/db_l = sum_i s_i D_{l+1,i} / S

The logistic function and its derivative::

    (S1)  sigma(z) = 1 / (1 + e^{-z})
    (S2)  sigma'(z) = sigma(z) sigma(-z) = 1 / (2 (1 + cosh z))

How the numbers are computed
----------------------------
* (S1), (S2) use ``t = e^{-|z|}``, which never overflows: ``u = sigma(-|z|) = t / (1 + t)``
  is at most 1/2 and ``sigma(|z|) = 1 - u = 1 / (1 + t)``. One exponential gives both
  ``sigma(z)`` and ``sigma(-z)``, so ``sigma'(z) = u (1 - u)`` is a product of two
  accurate numbers, never the cancelling ``a (1 - a)``. :func:`sigmoid` and
  :func:`sigmoid_gradient` also correct the rounding of ``1 + t`` (within 1.5 and 2.8
  ulp); the fit's kernel does without (within 2.5 and 3.6 ulp, measured).
* Predictions need no ``sigma'``: in float64 they take (S1) as ``e^z / (1 + e^z)``
  when every logit of the block (of its chunk of columns, in wide blocks) is below about
  708.4 (so that ``1 / (1 + e^z)`` stays a normal number), in four passes instead of
  eight and within 3.1 ulp, measured.
* (C2) is ``max(z, 0) - y z + log1p(e^{-|z|})``, written so that for ``y`` in {0, 1}
  nothing cancels: the cost is exact for saturated logits, right or wrong, with no
  clipping of probabilities.
* (C3) is computed around the row maximum ``m`` as ``log1p(r) - sum_k y_k (z_k - m)``
  where ``r`` sums ``e^{z_k - m}`` over every unit but one largest.
* (B1) is computed as ``([z >= 0] - y) - sign(z) sigma(-|z|)`` for logistic outputs,
  which equals ``sigma(z) - y`` but does not cancel when ``y = 1`` and ``z`` is large.
* The sums over samples in (C1), (G1), (G2) are accumulated over row blocks of bounded
  size, so memory does not grow with ``n`` and the result does not depend on the block
  size beyond rounding. The blocks are dealt round-robin into ``n_sums`` partial sums,
  each accumulated in block order and added in a fixed order at the end; threads take
  whole partial sums, so the same inputs give the same bits with any number of threads.
"""

import functools
import math
import numbers
import os

from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np
import scipy.sparse as sp
from scipy.linalg import blas as _blas

__all__ = [
    "ACTIVATIONS",
    "OUTPUT_ACTIVATIONS",
    "sigmoid",
    "sigmoid_gradient",
    "log_sigmoid",
    "softmax",
    "log_softmax",
    "n_params",
    "pack",
    "unpack",
    "block_rows",
    "forward",
    "partial_sums",
    "finish",
    "cost_and_gradient",
    "check_gradient",
]

ACTIVATIONS = ("logistic", "tanh", "relu")
OUTPUT_ACTIVATIONS = ("logistic", "softmax")

# Rows per block are chosen so that one block's widest layer holds about _BLOCK_BYTES
# (at most _INPUT_BLOCK_BYTES in its rows of X): small enough for the buffers to stay in
# cache, large enough for efficient matrix products and for numpy calls long enough
# (tens of microseconds) that threads rarely wait for each other's GIL. In bytes, so that
# float32 blocks hold twice the rows (and half the per-block overhead) of float64 ones.
# But at least _ROWS_PER_FAN_IN rows per input of the widest dense product: every block
# packs each weight matrix again for BLAS and adds a (units x inputs) gradient term, work
# that grows with the inputs, not with the rows (measured on 20 000 x 784 data with 256
# hidden units: 1568-row blocks took 0.85 to 0.98 of the time of 256-row ones, at one
# or two threads).
_BLOCK_BYTES = 1 << 19  # 2**16 float64 numbers
_INPUT_BLOCK_BYTES = 1 << 24
_ROWS_PER_FAN_IN = 2

# The sign bit of a float64 or float32, as the integer of the same width (_exp_neg_abs)
_SIGN_BIT = {"d": (np.int64, np.int64(-(1 << 63))), "f": (np.int32, np.int32(-(1 << 31)))}

# BLAS rank-one update by dtype, to add the intercepts (see _affine)
_GER = {"d": _blas.dger, "f": _blas.sger}

# Below this logit, 1 + e^z is at most 1 / tiny, so sigma(-z) = 1 / (1 + e^z) is a normal
# float64 and sigma(z) = e^z sigma(-z) keeps its relative accuracy (see _activate).
_DIRECT_SIGMOID_MAX = -math.log(np.finfo(np.float64).tiny)  # 708.39...


def _work_dtype(X):
    """float32 stays float32; every other input is computed in float64."""
    dtype = getattr(X, "dtype", None)
    return np.float32 if dtype == np.float32 else np.float64


def _exp_neg_abs(z, out):
    """``out = e^{-|z|}``, the one exponential behind (S1), (S2) and (C2); `z` and `out`
    float64 or float32 arrays."""
    # -|z| is z with its sign bit set: one integer pass, the same bits as np.abs and
    # np.negative (two passes, measured 1.8x the time; np.copysign(z, -1) is slower).
    ints, sign = _SIGN_BIT[z.dtype.char]
    np.bitwise_or(z.view(ints), sign, out=out.view(ints))
    return np.exp(out, out=out)


def _split_one_plus_t(z):
    """For (S1), (S2): ``t = e^{-|z|}`` and ``1 + t = d + e`` exactly, in float64.

    ``d = fl(1 + t)`` and ``e = t - (d - 1)`` is its rounding error (exact, since
    ``0 <= t <= 1``). Dividing by ``d`` and then correcting by ``-e/d`` removes the one
    rounding that would otherwise cost up to an ulp in ``sigma`` and two in ``sigma'``.
    """
    x = np.asarray(z, dtype=np.float64)
    t = _exp_neg_abs(x, np.empty_like(x))
    d = np.add(t, 1.0, out=np.empty_like(x))
    e = np.subtract(d, 1.0, out=np.empty_like(x))
    np.subtract(t, e, out=e)
    return x, t, d, e


def sigmoid(z):
    """The logistic function ``sigma(z) = 1 / (1 + e^{-z})`` (S1), within 4 ulp.

    Parameters
    ----------
    z : array-like
        Logits. float32 input gives float32 output, anything else float64. Both are
        evaluated in float64 from one ``e^{-|z|}`` and rounded once, so float32 results
        are within one float32 ulp.

    Returns
    -------
    a : ndarray of the same shape as `z`
        ``sigma(z)``, in (0, 1) wherever it is representable; no warnings and no
        floating-point errors, even under ``np.errstate(all="raise")``, for any finite
        ``z`` or ``+-inf`` (results below the smallest float round to subnormals or 0).

    Examples
    --------
    >>> from sklearn_bp.backprop import sigmoid
    >>> sigmoid([0.0, -800.0, 800.0]).tolist()
    [0.5, 0.0, 1.0]
    >>> float(sigmoid(-40.0))
    4.248354255291589e-18
    """
    z = np.asarray(z)
    dtype = _work_dtype(z)
    with np.errstate(under="ignore"):
        x, t, d, e = _split_one_plus_t(z)
        # sigma(z) = n / (1 + t) with n = 1 for z >= 0 and n = t for z < 0.
        q = np.where(np.signbit(x), t, 1.0)
        np.divide(q, d, out=q)
        np.divide(e, d, out=e)
        np.multiply(e, q, out=e)
        np.subtract(q, e, out=q)
        return q.astype(dtype, copy=False)[()]


def sigmoid_gradient(z):
    """The derivative ``sigma'(z) = sigma(z) sigma(-z)`` (S2), within 4 ulp.

    Computed as ``e^{-|z|} / (1 + e^{-|z|})^2`` from one exponential, which keeps full
    relative accuracy where ``sigma(z) * (1 - sigma(z))`` loses every digit (``z > 37``).

    Parameters
    ----------
    z : array-like
        Logits (not activations). float32 input gives float32 output (evaluated in
        float64 and rounded once), anything else float64.

    Returns
    -------
    g : ndarray of the same shape as `z`
        No warnings and no floating-point errors for any finite ``z`` or ``+-inf``.

    Examples
    --------
    >>> from sklearn_bp.backprop import sigmoid_gradient
    >>> float(sigmoid_gradient(0.0))
    0.25
    >>> float(sigmoid_gradient(40.0))
    4.248354255291589e-18
    """
    z = np.asarray(z)
    dtype = _work_dtype(z)
    with np.errstate(under="ignore"):
        _, t, d, e = _split_one_plus_t(z)
        np.divide(e, d, out=e)
        np.multiply(d, d, out=d)
        g = np.divide(t, d, out=t)
        # 1 / (d + e)^2 = (1 / d^2) (1 - 2 e / d + ...), and (e / d)^2 < 2^-105.
        np.multiply(e, g, out=e)
        np.multiply(e, 2.0, out=e)
        np.subtract(g, e, out=g)
        return g.astype(dtype, copy=False)[()]


def log_sigmoid(z):
    """``log sigma(z) = -log(1 + e^{-z})``, exact for saturated logits (no clipping).

    The log of (S1); ``-log_sigmoid(z)`` and ``-log_sigmoid(-z)`` are the two terms
    of the logistic cost (C2).

    Parameters
    ----------
    z : array-like
        Logits. float32 input is computed in float32, anything else in float64.

    Returns
    -------
    log_a : ndarray of the same shape as `z`
        ``log sigma(z)``, finite for every finite `z` (``-log(1 + e^{-z})``, computed
        as ``min(z, 0) - log1p(e^{-|z|})``).

    Examples
    --------
    >>> from sklearn_bp.backprop import log_sigmoid
    >>> log_sigmoid([0.0, -1000.0]).tolist()
    [-0.6931471805599453, -1000.0]
    """
    z = np.asarray(z)
    z = z.astype(_work_dtype(z), copy=False)
    t = _exp_neg_abs(z, np.empty_like(z))
    np.log1p(t, out=t)
    # log sigma(z) = -(max(-z, 0) + log1p(e^{-|z|}))
    return np.subtract(np.minimum(z, 0.0), t, out=t)[()]


def log_softmax(z):
    """Row-wise ``z_k - log sum_j e^{z_j}`` (C3), computed around the row maximum.

    Parameters
    ----------
    z : array-like of shape (n_samples, n_classes)
        Logits; a 1-D input is one row.

    Returns
    -------
    log_p : ndarray of shape (n_samples, n_classes)
        Log-probabilities, finite for finite logits (no ``log(0)``).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_bp.backprop import log_softmax
    >>> np.round(log_softmax([[0.0, 0.0], [0.0, -800.0]]), 4).tolist()
    [[-0.6931, -0.6931], [0.0, -800.0]]
    """
    z = np.atleast_2d(np.asarray(z))
    shifted = z.T.astype(_work_dtype(z), order="C")  # one row per unit
    n = shifted.shape[1]
    top, r = np.empty(n, shifted.dtype), np.empty(n, shifted.dtype)
    _exp_but_top(shifted, np.empty_like(shifted), np.empty(shifted.shape, bool), top, r)
    return np.subtract(shifted.T, np.log1p(r)[:, None], order="C")


def softmax(z):
    """Row-wise ``e^{z_k} / sum_j e^{z_j}`` (F3), without overflow.

    Parameters
    ----------
    z : array-like of shape (n_samples, n_classes)
        Logits; a 1-D input is one row.

    Returns
    -------
    p : ndarray of shape (n_samples, n_classes)
        Probabilities; each row sums to 1.

    Examples
    --------
    >>> from sklearn_bp.backprop import softmax
    >>> softmax([[0.0, 0.0], [1000.0, 0.0]]).tolist()
    [[0.5, 0.5], [1.0, 0.0]]
    """
    z = np.atleast_2d(np.asarray(z))
    # Unit by unit, one C-contiguous row per unit: the maximum and the sum over units
    # become elementwise operations on whole rows (measured on digits' 1797 x 10:
    # 2.5x as fast as reducing along rows of 10).
    e = z.T.astype(_work_dtype(z), order="C")
    e -= np.maximum.reduce(e, axis=0)
    np.exp(e, out=e)
    e /= np.add.reduce(e, axis=0)
    return np.ascontiguousarray(e.T)


def _exp_but_top(zt, et, top_mask, top, r):
    """Shift the logits by their maximum and exponentiate every unit but the top one.

    Unit by unit, with ``zt`` of shape ``(n_units, n_samples)``: ``zt -= m`` (the column
    maxima, into ``top``), so that the top unit holds exactly 0; ``top_mask`` marks it;
    ``et = e^{zt}`` except 0 at the top; ``r`` the sum of ``et`` over units, plus 1 for
    each extra unit tied for the top. ``log1p(r)`` then keeps the digits that
    ``log(1 + r)`` would round away, and ``1 + r`` is the softmax's denominator.
    """
    np.maximum.reduce(zt, axis=0, out=top)
    zt -= top
    np.equal(zt, 0.0, out=top_mask)
    np.exp(zt, out=et)
    et -= top_mask  # e^0 = 1 exactly: now 0
    np.add.reduce(et, axis=0, out=r)
    if np.count_nonzero(top_mask) > zt.shape[1]:  # ties: the top counts once, not in r
        r += top_mask.sum(axis=0) - 1
    return et


# ----------------------------------------------------------------------------------------
# The flat parameter vector theta: the only place that knows its layout.
# ----------------------------------------------------------------------------------------


def _layout(layer_sizes):
    """The one description of theta's layout: ``(n_layers, parts, n_params)``, where
    ``parts`` lists ``(start, stop, shape)`` for every ``coefs[l]`` and then every
    ``intercepts[l]``. Cached, as every evaluation unpacks theta and its gradient."""
    return _layout_of(tuple(map(int, layer_sizes)))


@functools.lru_cache(maxsize=64)
def _layout_of(layer_sizes):
    shapes = [*zip(layer_sizes[:-1], layer_sizes[1:]), *((h,) for h in layer_sizes[1:])]
    parts, start = [], 0
    for shape in shapes:
        stop = start + math.prod(shape)
        parts.append((start, stop, shape))
        start = stop
    return max(len(layer_sizes) - 1, 0), tuple(parts), start


def n_params(layer_sizes):
    """Length of theta for ``layer_sizes``.

    Parameters
    ----------
    layer_sizes : sequence of int
        ``(n_features, *hidden_layer_sizes, n_outputs)``.

    Returns
    -------
    n_params : int
        Number of weights and intercepts, the length of :func:`pack`'s vector.

    Examples
    --------
    >>> from sklearn_bp.backprop import n_params
    >>> n_params((64, 25, 10))   # 64*25 + 25*10 weights and 25 + 10 intercepts
    1885
    """
    return _layout(layer_sizes)[2]


def pack(coefs, intercepts):
    """Flatten weights and intercepts into one vector ``theta``.

    The layout is every ``coefs[l]`` in row-major order, then every ``intercepts[l]``
    (scikit-learn's ``MLPClassifier`` uses the same layout).

    Parameters
    ----------
    coefs : list of ndarray
        ``coefs[l]`` of shape ``(layer_sizes[l], layer_sizes[l+1])``.
    intercepts : list of ndarray
        ``intercepts[l]`` of shape ``(layer_sizes[l+1],)``.

    Returns
    -------
    theta : ndarray of shape (n_params,)

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_bp.backprop import pack, unpack
    >>> theta = pack([np.ones((2, 3)), np.ones((3, 1))], [np.zeros(3), np.zeros(1)])
    >>> theta.shape
    (13,)
    >>> coefs, intercepts = unpack(theta, (2, 3, 1))
    >>> np.shares_memory(coefs[0], theta)
    True
    """
    parts = [np.ravel(a) for a in list(coefs) + list(intercepts)]
    return np.concatenate(parts) if parts else np.empty(0)


def unpack(theta, layer_sizes):
    """Views of ``theta`` as ``(coefs, intercepts)`` for ``layer_sizes``; no copies.

    Parameters
    ----------
    theta : ndarray of shape (n_params,)
        As made by :func:`pack`.
    layer_sizes : sequence of int
        ``(n_features, *hidden_layer_sizes, n_outputs)``.

    Returns
    -------
    coefs : list of ndarray
        Views, ``coefs[l]`` of shape ``(layer_sizes[l], layer_sizes[l+1])``.
    intercepts : list of ndarray
        Views, ``intercepts[l]`` of shape ``(layer_sizes[l+1],)``.
    """
    theta = np.asarray(theta)
    n_layers, parts, expected = _layout(layer_sizes)
    if theta.ndim != 1 or theta.shape[0] != expected:
        raise ValueError(
            f"theta has shape {theta.shape}, but layer_sizes {tuple(layer_sizes)} need a "
            f"1-D vector of {expected} parameters; build it with pack(coefs, intercepts)."
        )
    views = [theta[start:stop].reshape(shape) for start, stop, shape in parts]
    return views[:n_layers], views[n_layers:]


def _weights(theta, layer_sizes):
    """Every ``coefs[l]`` at once, flattened: one view of ``theta``, whose weights come
    before all intercepts (see :func:`pack`)."""
    n_layers, parts, _ = _layout(layer_sizes)
    return theta[:parts[n_layers - 1][1] if n_layers else 0]


# ----------------------------------------------------------------------------------------
# Forward and backward passes over one block of rows.
# ----------------------------------------------------------------------------------------


def _check_activations(activation, output_activation):
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"activation={activation!r} is not supported; use one of {ACTIVATIONS}."
        )
    if output_activation not in OUTPUT_ACTIVATIONS:
        raise ValueError(
            f"output_activation={output_activation!r} is not supported; use one of "
            f"{OUTPUT_ACTIVATIONS}."
        )


def block_rows(layer_sizes, n_samples, *, n_threads=1, dtype=np.float64,
               row_bytes=None):
    """Rows per block: about 512 KiB in the widest layer after the input (``2**16``
    float64 numbers, ``2**17`` float32 ones) or twice the inputs of the widest dense
    product if that is more, at most 16 MiB of input, and at least 64 rows.

    The buffers of a block, and so the memory of an evaluation, do not grow with
    `n_samples`. With ``n_threads > 1`` the rows are also cut so that every thread (or
    partial sum) gets as many blocks as the others, all of nearly equal size.

    Parameters
    ----------
    layer_sizes : sequence of int
        ``(n_features, *hidden_layer_sizes, n_outputs)``.
    n_samples : int
        Number of rows to evaluate.
    n_threads : int, default=1
        Number of threads, or of partial sums (see :func:`partial_sums`), that will
        share the blocks.
    dtype : dtype, default=np.float64
        The computation dtype (see :func:`cost_and_gradient`).
    row_bytes : float, default=None
        Bytes of one row of the input, for the 16 MiB bound; ``None`` means a dense row
        of `dtype`. A sparse input's rows hold only their nonzeros (measured: 20 000 x
        5 000 CSR rows of 50 nonzeros, 50 hidden units: 1310-row blocks evaluate twice
        as fast as the 209 rows of the dense bound), and its product with the first
        layer's weights is not a dense one.

    Returns
    -------
    rows : int
        Rows per block, between 1 and `n_samples`.

    Examples
    --------
    >>> from sklearn_bp.backprop import block_rows
    >>> block_rows((64, 25, 10), 1797)   # digits fits in one block
    1797
    """
    return _block_rows(tuple(layer_sizes), int(n_samples), int(n_threads),
                       np.dtype(dtype).itemsize, row_bytes)


@functools.lru_cache(maxsize=256)  # every evaluation asks again
def _block_rows(layer_sizes, n_samples, n_threads, itemsize, row_bytes):
    layer_sizes = [max(int(h), 1) for h in layer_sizes]
    widest = max(layer_sizes[1:], default=1)
    # inputs of the dense products: every layer's, but the first one's if X is sparse
    fan_in = max(layer_sizes[:-1] if row_bytes is None else layer_sizes[1:-1], default=1)
    if row_bytes is None:
        row_bytes = itemsize * layer_sizes[0]
    rows = max(_BLOCK_BYTES // itemsize // widest, _ROWS_PER_FAN_IN * fan_in)
    rows = max(64, min(rows, int(_INPUT_BLOCK_BYTES // max(row_bytes, 1))))
    if n_threads > 1:
        # Dealt evenly: as many blocks per thread (partial sum), of nearly equal rows
        # (measured: 20 000 x 784 rows, 256 units, two threads: 13 blocks of up to 1568
        # rows gave one thread a block more than the other; 14 of 1429 rows took 0.94x
        # to 0.96x of the time).
        per_thread = max(1, -(-n_samples // (n_threads * rows)))
        rows = -(-n_samples // (n_threads * per_thread))
    return int(max(1, min(n_samples, rows)))


class _ColumnMajor:
    """Storage for up to ``rows`` rows of ``h`` columns whose :meth:`block` views are
    column-major: each column (one unit over the block's rows) is contiguous, whatever
    the number of rows used.

    OpenBLAS computes ``A @ W`` into a column-major result faster than into a row-major
    one when ``W`` has up to about a hundred columns (measured here: 1.5x for digits'
    64 x 25 layer, 1.1x at 100 units, about even at 128 to 256), and the softmax's
    reductions over units become elementwise operations on whole columns.
    """

    def __init__(self, rows, h, dtype):
        self.h = int(h)
        self.flat = np.empty(int(rows) * self.h, dtype)

    def block(self, m):
        """The first ``m`` rows, an F-contiguous array of shape ``(m, h)``."""
        return self.flat[:m * self.h].reshape(self.h, m).T


class _Buffers:
    """One thread's buffers for a block of up to ``rows`` rows, each column-major
    (:class:`_ColumnMajor`).

    For each layer ``l + 1``: ``Z[l]`` holds the logits, overwritten in place by the
    activations ``A_{l+1}``; ``P[l]`` receives ``g'(Z_{l+1})`` for (B2); ``N[l]`` is
    scratch in the forward pass and holds the delta ``D_{l+1}`` in the backward pass.
    For the output layer, ``mask`` (bool) is scratch and ``D`` holds the delta ``D_L``;
    ``scratch_terms`` one block's gradient terms (see :func:`_add_gradient`).
    """

    def __init__(self, layer_sizes, rows, dtype, *, gradient=True):
        widths = [int(h) for h in layer_sizes[1:]]
        if not gradient:  # forward only: the output logits go to the caller's array
            widths = widths[:-1]
        self.Z = [_ColumnMajor(rows, h, dtype) for h in widths]
        self.P = [_ColumnMajor(rows, h, dtype) for h in widths]
        self.N = [_ColumnMajor(rows, h, dtype) for h in widths]
        self.mask = _ColumnMajor(rows, widths[-1], bool) if gradient else None
        self.D = _ColumnMajor(rows, widths[-1], dtype) if gradient else None
        # the softmax's row maxima and sums (see _exp_but_top)
        self.vectors = np.empty((2, rows), dtype) if gradient else None
        # for the intercepts (_affine) and column sums over rows (_add_gradient)
        self.ones = np.ones(rows, dtype)
        self._views = {}  # see blocks()
        # per layer, the transposed coef and the intercept terms of _add_gradient
        self.scratch_terms = (
            [(np.empty((w, h), dtype), np.empty(w, dtype))
             for h, w in zip(layer_sizes[:-1], layer_sizes[1:])] if gradient else None)

    def blocks(self, m):
        """``(Z, P, N, mask, D)`` for the first ``m`` rows: lists of views per layer
        (``mask`` and ``D`` one view each, of the output layer), made once per ``m``."""
        views = self._views.get(m)
        if views is None:
            views = self._views[m] = (
                *([b.block(m) for b in layer] for layer in (self.Z, self.P, self.N)),
                *(None if b is None else b.block(m) for b in (self.mask, self.D)),
            )
        return views

    def arrays(self):
        """Every buffer, to account for memory."""
        return [b.flat for b in (*self.Z, *self.P, *self.N)] + [self.ones] + (
            [] if self.D is None else [self.mask.flat, self.D.flat, self.vectors]) + [
            a for terms in self.scratch_terms or () for a in terms]


def _transposed_terms(flat, layer_sizes):
    """Per layer, ``(coef_t, intercept)`` views of `flat`: the segments of theta's layout
    (:func:`unpack`), each coefficient segment read as the C-contiguous transpose, of
    shape ``(h_{l+1}, h_l)``. The orientation in which :func:`_add_gradient` sums."""
    coefs, intercepts = unpack(flat, layer_sizes)
    return [(W.reshape(W.shape[::-1]), b) for W, b in zip(coefs, intercepts)]


def _from_transposed(layer_sizes):
    """Indices that gather a vector in the layout of :func:`_transposed_terms` into
    theta's: ``theta_layout = transposed_layout[_from_transposed(layer_sizes)]``."""
    index = np.arange(n_params(layer_sizes))
    for W, (W_t, _) in zip(unpack(index, layer_sizes)[0],
                           _transposed_terms(index, layer_sizes)):
        W[...] = W_t.T.copy()  # W and W_t are the same segment of `index`
    return index


class _Workspace:
    """Buffers reused over blocks and over evaluations: one set per thread, one
    gradient sum per partial sum.

    ``buffers[j]`` are thread ``j``'s block buffers (:class:`_Buffers`), ``sums[k]``
    the gradient of partial sum ``k`` (see :func:`partial_sums`), read through
    ``sum_terms[k]`` (see :func:`_transposed_terms`) and put back in theta's layout by
    the indices ``from_transposed``. Their size depends on ``rows`` and
    the layer sizes, never on the number of samples. The threads themselves are started
    once, on first use, and kept with the workspace.
    """

    def __init__(self, layer_sizes, rows, dtype, *, n_threads=1, n_sums=None):
        self.layer_sizes = tuple(int(h) for h in layer_sizes)
        self.rows, self.dtype = int(rows), np.dtype(dtype)
        self.n_threads = max(1, int(n_threads))
        self.n_sums = max(self.n_threads, int(n_sums or 1))
        self.buffers = [
            _Buffers(self.layer_sizes, self.rows, self.dtype)
            for _ in range(self.n_threads)
        ]
        size = n_params(self.layer_sizes)
        self.sums = [np.empty(size, self.dtype) for _ in range(self.n_sums)]
        self.sum_terms = [_transposed_terms(a, self.layer_sizes) for a in self.sums]
        self.from_transposed = _from_transposed(self.layer_sizes)
        self._pool = None

    def fits(self, layer_sizes, rows, dtype, n_threads=1, n_sums=None):
        """Whether these buffers serve blocks of `rows` rows; `layer_sizes` a tuple of
        ints (as :func:`_prepare` makes it)."""
        return (
            self.dtype == dtype
            and self.rows >= rows
            and self.n_threads >= n_threads
            and self.n_sums >= (n_sums or n_threads)
            and self.layer_sizes == layer_sizes
        )

    def arrays(self):
        """Every buffer, to account for memory."""
        return [a for b in self.buffers for a in b.arrays()] + self.sums + [
            self.from_transposed]

    def pool(self):
        """The helper threads (``n_threads - 1`` of them), started on first use."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=self.n_threads - 1, thread_name_prefix="sklearn_bp"
            )
        return self._pool


def _affine(A, W, b, out, ones, ger):
    """(F1) ``out = A @ W + b``; ``A`` may be scipy.sparse, ``ones`` holds at least as
    many ones as ``out`` has rows (the block's :class:`_Buffers` ``ones``).

    With `ger` true, ``b`` is added as the rank-one update ``ones b^T`` by scipy's BLAS
    ``ger`` (measured: a third of the time of numpy's broadcast addition) when ``out``
    is contiguous, as the kernel's buffers and the caller's blocks of rows are. Callers
    pass `ger` false unless every BLAS library runs one thread
    (:func:`_blas_single_threaded`): scipy's and numpy's bundled OpenBLAS keep separate
    thread pools, and alternating between them while both have threads made each
    product wait milliseconds for the other pool's spinning threads (measured on 2
    cores: an evaluation on digits 10x to 15x slower). scipy's wrapper holds the GIL
    for that one memory-bound pass, much shorter than the products around it.
    """
    if sp.issparse(A):
        out[...] = A @ W
    else:
        np.matmul(A, W, out=out)
    ger = _GER.get(out.dtype.char) if ger else None
    ones = ones[:out.shape[0]]
    if ger is not None and out.flags.f_contiguous and out.shape[0] > 1:
        a, x, y = out, ones, b  # Fortran's a (m, h) += ones b^T
    elif ger is not None and out.flags.c_contiguous and out.shape[1] > 1:
        a, x, y = out.T, b, ones  # Fortran's a (h, m) += b ones^T
    else:
        return np.add(out, b, out=out)
    done = ger(1.0, x, y, a=a, overwrite_a=True)
    if done is not a:  # the wrapper worked on a copy (it returns `a` itself otherwise)
        a[...] = done
    return out


def _hidden_forward(Z, P, N, activation, derivative=True):
    """(F2) in place: ``Z`` becomes ``A = g(Z)``, ``P`` receives ``g'(Z)`` for (B2).

    ``N`` is scratch; with ``derivative=False`` (prediction), ``P`` is scratch too. The
    three are a block's column-major buffers (:class:`_ColumnMajor`), taken in chunks of
    whole columns (contiguous) of at most ``_BLOCK_BYTES`` each, so that a chunk's
    three stay in a core's cache over the activation's passes. That matters for blocks
    wider than the row rule's ``_BLOCK_BYTES``, which the inputs' fan-in makes (measured
    on 1568 x 256 blocks: 0.7x of the activation's time; a fit's bits do not change).
    See :func:`_activate` for the forms.
    """
    step = max(1, _BLOCK_BYTES // max(1, Z.shape[0] * Z.itemsize))
    if step >= Z.shape[1]:
        return _activate(Z, P, N, activation, derivative)
    for j in range(0, Z.shape[1], step):
        cols = slice(j, j + step)
        _activate(Z[:, cols], P[:, cols], N[:, cols], activation, derivative)
    return Z


def _activate(Z, P, N, activation, derivative=True):
    """:func:`_hidden_forward` on arrays of any size, in one go.

    For logistic units, one ``t = e^{-|z|}`` gives ``u = sigma(-|z|) =
    t/(1+t)``, at most 1/2, and ``sigma(|z|) = 1 - u`` (S1); ``A`` is the second where
    ``z >= 0`` and the first elsewhere, and ``g' = u (1 - u)`` (S2), never ``A (1 - A)``.

    Without the derivative (predictions), float64 arrays whose logits are all below
    ``_DIRECT_SIGMOID_MAX`` take the direct form of the module notes, ``e^z`` times
    ``sigma(-z) = 1 / (1 + e^z)``. Fits keep the form above: the direct form's ``g' =
    sigma(z) sigma(-z)`` takes the rounding of ``1 + e^z`` twice (up to 5 ulp,
    measured). So does float32, whose ``e^z`` alone is up to 2.4 ulp off.
    """
    if (activation == "logistic" and not derivative and Z.dtype == np.float64
            and Z.size and Z.max() < _DIRECT_SIGMOID_MAX):
        np.exp(Z, out=Z)  # e = e^z, finite and at most 1 / tiny
        np.add(Z, 1.0, out=N)
        np.reciprocal(N, out=N)  # sigma(-z) = 1 / (1 + e)
        return np.multiply(Z, N, out=Z)  # A = sigma(z) = e sigma(-z)
    if activation == "logistic":
        _exp_neg_abs(Z, N)  # t
        # [z >= 0] as 1.0 or 0.0: written as floats, it saves a bool-to-float pass below
        np.greater_equal(Z, 0.0, out=P, casting="unsafe")
        np.add(N, 1.0, out=Z)  # d = 1 + t
        np.divide(N, Z, out=N)  # u = sigma(-|z|) = t/d <= 1/2
        np.subtract(P, N, out=Z)  # 1 - u where z >= 0, -u elsewhere
        np.abs(Z, out=Z)  # A = sigma(z)
        if derivative:
            _logistic_derivative(N, P)
    elif activation == "tanh":
        if derivative:
            # tanh'(z) = 1 - tanh(z)^2 = 4 sigma(2|z|) sigma(-2|z|): no cancellation.
            np.abs(Z, out=N)
            np.multiply(N, -2.0, out=N)
            np.exp(N, out=N)  # t = e^{-2|z|}
            np.add(N, 1.0, out=P)
            np.divide(N, P, out=N)  # u = sigma(-2|z|)
            _logistic_derivative(N, P)
            np.multiply(P, 4.0, out=P)
        np.tanh(Z, out=Z)
    else:  # relu
        if derivative:
            np.greater(Z, 0.0, out=P)  # relu'(z), 0 or 1
        np.maximum(Z, 0.0, out=Z)
    return Z


def _logistic_derivative(U, out):
    """(S2) from ``U = sigma(-|z|)``: ``out = sigma(z) sigma(-z) = U (1 - U)``.

    As ``U <= 1/2``, ``1 - U`` does not cancel (it is the accurate ``sigma(|z|)``), and a
    relative error ``e`` in ``U`` (from the exponential, the rounding of ``1 + t`` and the
    division) enters the product with weight ``(1 - 2U) / (1 - U) <= 1``, while
    ``t / (1 + t)^2`` would take the rounding of ``1 + t`` twice. Measured against
    mpmath: at most 3.6 ulp (tests/test_numerics.py), like :func:`sigmoid_gradient`
    within 4.
    """
    np.subtract(1.0, U, out=out)
    return np.multiply(out, U, out=out)


def _hidden_backward(D, P):
    """(B2), the factor ``g'(Z)``: ``D *= g'(Z)`` in place, from ``P`` (see
    :func:`_hidden_forward`)."""
    return np.multiply(D, P, out=D)


def _block_cost(C, sample_weight):
    """``sum_i s_i sum_k C_ik``, accumulated in float64."""
    if sample_weight is None:
        return float(C.sum(dtype=np.float64))
    if C.dtype == np.float64:
        return float(np.dot(sample_weight, C).sum())
    return float(np.dot(C.sum(axis=1, dtype=np.float64), sample_weight))


def _output_cost_delta(Z, Y, D, P, N, mask, sample_weight, output_activation, vectors):
    """Block cost ``sum_i s_i c_i`` (C2)/(C3), returned, and the output delta
    ``D = s * (A_L - Y)`` (B1), from the logits ``Z`` (overwritten, as are ``P``, ``N``,
    ``mask`` and ``vectors``, the block's :class:`_Buffers` of those names)."""
    if output_activation == "logistic":
        t = _exp_neg_abs(Z, N)
        # c_i = sum_k (max(z, 0) - y z) + log1p(e^{-|z|})        (C2)
        # The bracket first: for y in {0, 1} it is exactly 0 or |z|, so the small
        # log1p term is never added to z and subtracted again.
        np.maximum(Z, 0.0, out=P)
        np.multiply(Y, Z, out=D)
        P -= D
        np.log1p(t, out=D)
        D += P
        cost = _block_cost(D, sample_weight)
        # D = (1 - y) sigma(z) - y sigma(-z)                      (B1)
        #   = (1 - y) - u where z >= 0, and u - y where z < 0, with u = sigma(-|z|):
        #   = ([z >= 0] - y) - sign(z) u, which for y = 1 and z >= 0 is exactly -u.
        np.add(t, 1.0, out=P)
        np.divide(t, P, out=N)  # u = t / (1 + t) <= 1/2
        np.signbit(Z, out=mask)  # z < 0, and -0.0 with it so that sign(-0.0) = -1
        np.logical_not(mask, out=mask)
        np.subtract(mask, Y, out=D)
        np.copysign(N, Z, out=N)
        D -= N
    else:
        # c_i = log1p(r) - sum_k y_k (z_k - m),  r = sum_{k != top} e^{z_k - m}    (C3)
        # Unit by unit: the transposes are C-contiguous, one row per output unit.
        ZT, DT, PT, YT, maskT = Z.T, D.T, P.T, Y.T, mask.T
        top, r = vectors[0, :Z.shape[0]], vectors[1, :Z.shape[0]]
        _exp_but_top(ZT, DT, maskT, top, r)  # ZT = z - m, DT = e^{z - m} but at the top
        log1p_r = np.log1p(r, out=top)
        np.multiply(Y, Z, out=P)  # y (z - m), at most 0
        if sample_weight is None:
            cost = float(log1p_r.sum(dtype=np.float64)) - float(P.sum(dtype=np.float64))
        else:
            cost = _block_cost(log1p_r[:, None], sample_weight) - _block_cost(
                P, sample_weight)
        # D = softmax(z) - y = ((e - y) - y r) / (1 + r), with e = 1 at the top unit,
        # where it is ((1 - y) - y r) / (1 + r): no cancellation for y = 1.   (B1)
        np.subtract(YT, maskT, out=PT)  # y - [top]
        DT -= PT  # e - y, with e = 1 at the top (where DT held 0)
        np.multiply(YT, r, out=PT)
        DT -= PT
        inv = np.add(r, 1.0, out=top)
        np.reciprocal(inv, out=inv)
        DT *= inv
    if sample_weight is not None:
        D *= sample_weight[:, None]
    return cost


def _add_gradient(A, D, ones, sums, scratch, first=False):
    """(G1), (G2) for one block: ``sums = (coef_t, intercept)`` receive ``D.T @ A``, the
    transpose of the term ``A.T @ D``, and the sum of the rows of ``D``: written into
    them for the `first` block of a partial sum, else added through ``scratch``, arrays
    of the same shapes.

    Transposed, because with the column-major ``D`` of the kernel's buffers this product
    is the faster one (measured here: 1.2x to 1.45x for layers of 10 to 25 units on 64,
    100 and 784 inputs, about even from 100 units up), and the sums add contiguous
    arrays; :func:`partial_sums` gathers them into theta's layout once at the end.
    numpy's ``matmul`` releases the GIL meanwhile (scipy's BLAS wrappers hold it: two
    threads calling them would run one after the other).
    """
    coef_t, intercept = sums if first else scratch
    if sp.issparse(A):
        coef_t[...] = D.T @ A  # scipy.sparse computes it as (A.T @ D).T
    else:
        np.matmul(D.T, A, out=coef_t)
    np.matmul(ones[:D.shape[0]], D, out=intercept)
    if not first:
        coef_t_sum, intercept_sum = sums
        coef_t_sum += coef_t
        intercept_sum += intercept


def _accumulate(coefs, intercepts, X, Y, sample_weight, sums, ws, activation,
                output_activation, ger, first=False):
    """Partial sums over one block of rows: returns ``sum_i s_i c_i`` and adds
    ``(s * D_{l+1})^T A_l`` and ``sum_i s_i D_{l+1,i}`` to ``sums[l]``, a pair of
    arrays (the unnormalised sums of (C1), (G1) transposed, (G2)), or writes them there
    for the `first` block of a partial sum. ``ws`` is one thread's :class:`_Buffers`;
    ``ger`` as in :func:`_affine`."""
    n_layers = len(coefs)
    Zs, Ps, Ns, mask, D = ws.blocks(X.shape[0])

    activations = [X]  # (F1), (F2)
    for l in range(n_layers):
        Z = _affine(activations[l], coefs[l], intercepts[l], Zs[l], ws.ones, ger)
        if l + 1 < n_layers:
            activations.append(_hidden_forward(Z, Ps[l], Ns[l], activation))
    block_cost = _output_cost_delta(  # (C2)/(C3), (B1)
        Zs[-1], Y, D, Ps[-1], Ns[-1], mask, sample_weight, output_activation,
        ws.vectors,
    )
    for l in range(n_layers - 1, -1, -1):
        # (G1), (G2) for layer l, while D = s * D_{l+1} is in cache
        _add_gradient(activations[l], D, ws.ones, sums[l], ws.scratch_terms[l], first)
        if l:  # (B2): D_l = (D_{l+1} @ W_l^T) * g'(Z_l), into the scratch N
            np.matmul(D, coefs[l].T, out=Ns[l - 1])
            D = _hidden_backward(Ns[l - 1], Ps[l - 1])
    return block_cost


_COUNT_HINTS = {
    "n_threads": "use 1 to compute in the calling thread only.",
    "n_sums": "use 1 to add every block into one sum.",
}


def _check_count(value, name):
    """`value` of the parameter `name` (a key of ``_COUNT_HINTS``) as a positive int."""
    if type(value) is int and value >= 1:  # the usual case, without the slower ABC check
        return value
    if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
            or value < 1):
        raise ValueError(
            f"{name} must be a positive int, got {value!r}; {_COUNT_HINTS[name]}")
    return int(value)


# ----------------------------------------------------------------------------------------
# Threads. BLAS's own threads gain less on these products (hundreds of rows by tens to
# hundreds of columns, called thousands of times) than threads of our own over row
# blocks (benchmarks/run.py: columns "eval 1x2" and "eval 2x1"), and OpenBLAS rounds some
# products differently with them, which would make a fit depend on the thread setting.
# And numpy and scipy each bundle their own OpenBLAS, with separate thread pools: a scipy
# BLAS call between numpy products, both pools threaded, made an evaluation 10-15x
# slower (and it is what slows MLPClassifier's default fit with L-BFGS-B), so _affine
# calls scipy's BLAS only while every library runs one thread. So BLAS stays at one
# thread during a fit (and a threaded prediction), and the cores, when the data are worth
# it, go to threads of our own over row blocks (numpy and BLAS release the GIL while they
# compute): in an evaluation, whole partial sums, whose number depends on the cores and
# the data but not on the thread limit (_useful_threads), so that every limit gives the
# same bits; in a forward pass, disjoint rows of the output.
# ----------------------------------------------------------------------------------------

# Matrix-product flops of one evaluation below which a second thread costs more than it
# saves (about 1 ms of work on one core).
_MIN_FLOPS_PER_THREAD = 4e7

@functools.lru_cache(maxsize=None)
def _blas_controller():
    """One ``threadpoolctl.ThreadpoolController``, made on first use and then reused:
    making one scans the loaded libraries, which takes milliseconds."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _blas_limit(n_threads):
    """Context manager: BLAS libraries limited to `n_threads` (as ``threadpool_limits``)."""
    return _blas_controller().limit(limits=n_threads, user_api="blas")


@functools.lru_cache(maxsize=None)
def _blas_libraries():
    """threadpoolctl's controllers of the BLAS libraries loaded at the first call (by
    then numpy's and scipy's, the two this module calls), found once and reused."""
    return _blas_controller().select(user_api="blas").lib_controllers


def _blas_single_threaded():
    """Whether every BLAS library runs one thread now (microseconds to ask)."""
    return all(lib.num_threads == 1 for lib in _blas_libraries())


def _useful_threads(X, layer_sizes, *, gradient=True):
    """Threads that evaluations on `X` (or, with ``gradient=False``, forward passes)
    pay for: at most the usable cores, and one per ``_MIN_FLOPS_PER_THREAD`` of matrix
    products. It does not look at the BLAS thread limits: a fit splits its blocks into
    this many partial sums whatever they are, so that ``threadpool_limits(1)`` gives
    the default fit's bits, only in fewer threads (:func:`_default_n_threads`)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    pairs = [a * b for a, b in zip(layer_sizes[:-1], layer_sizes[1:])]
    # Forward: every layer's product; the gradient adds as many and the deltas' (but the
    # first layer's, which no delta needs).
    flops = 2 * X.shape[0] * ((3 * sum(pairs) - pairs[0]) if gradient else sum(pairs))
    if sp.issparse(X):
        # The first layer's products with X (X @ W, and D.T @ X for the gradient) touch
        # only the nonzeros; scipy's sparse products release the GIL (measured: two
        # threads evaluate 20 000 x 5 000 CSR rows of 50 nonzeros 1.7x to 1.9x as fast
        # as one).
        products = 2 if gradient else 1
        flops -= 2 * products * (pairs[0] * X.shape[0] - X.nnz * layer_sizes[1])
    return int(max(1, min(cores, flops // _MIN_FLOPS_PER_THREAD)))


def _default_n_threads(X, layer_sizes, *, gradient=True):
    """Threads for evaluations on `X` (forward passes with ``gradient=False``): as many
    as the work pays for (:func:`_useful_threads`), but no more than BLAS may use now, in
    the caller's ``threadpoolctl`` limits (so ``threadpool_limits(1)`` around a fit or a
    prediction keeps it on one core)."""
    useful = _useful_threads(X, layer_sizes, gradient=gradient)
    if useful == 1:  # no need to ask the BLAS libraries (microseconds, per prediction)
        return 1
    return int(max(1, min([useful, *(lib.num_threads for lib in _blas_libraries())])))


def _in_threads(function, n_threads, pool):
    """``[function(0), ..., function(n_threads - 1)]``: ``function(0)`` in the calling
    thread, the others in the executor that ``pool()`` returns (asked for only with
    ``n_threads > 1``). It waits for every thread, even when one raises, and then raises
    the first error in thread order."""
    if n_threads == 1:
        return [function(0)]
    futures = [pool().submit(function, j) for j in range(1, n_threads)]
    try:
        first = function(0)
    finally:
        wait(futures)
    return [first, *(future.result() for future in futures)]


def _row_bytes(X):
    """Bytes per row of `X` for :func:`block_rows`: ``None`` (dense rows) for arrays,
    the mean of the stored values and column indices for scipy.sparse."""
    if not sp.issparse(X) or X.shape[0] == 0:
        return None
    return (X.data.nbytes + X.indices.nbytes) / X.shape[0]


def _as_float_matrix(X, dtype):
    if sp.issparse(X):
        X = X.tocsr() if X.format != "csr" else X
        return X.astype(dtype, copy=False)
    return np.asarray(X, dtype=dtype)


def _prepare(theta, X, Y, layer_sizes, activation, output_activation):
    """Validate shapes and cast everything to the computation dtype."""
    _check_activations(activation, output_activation)
    dtype = _work_dtype(X)
    X = _as_float_matrix(X, dtype)
    Y = np.asarray(Y, dtype=dtype)
    layer_sizes = tuple(int(h) for h in layer_sizes)
    n_samples = X.shape[0]
    if Y.ndim != 2 or Y.shape != (n_samples, layer_sizes[-1]):
        raise ValueError(
            f"Y has shape {Y.shape}, expected (n_samples, n_outputs) = "
            f"({n_samples}, {layer_sizes[-1]})."
        )
    if X.shape[1] != layer_sizes[0]:
        raise ValueError(
            f"X has {X.shape[1]} features, but layer_sizes[0] is {layer_sizes[0]}."
        )
    theta = np.asarray(theta).astype(dtype, copy=False)
    return theta, X, Y, layer_sizes, dtype


def partial_sums(theta, X, Y, layer_sizes, *, sample_weight=None, activation="logistic",
                 output_activation="logistic", block_size=None, workspace=None,
                 n_threads=1, n_sums=None):
    """Unnormalised sums of the cost and gradient over the rows of `X`, block by block.

    These are the data terms of (C1), (G1) and (G2) before division by ``S`` and without
    the penalty: ``loss_sum = sum_i s_i c_i``, and ``grad_sum`` holds
    ``A_l^T (s * D_{l+1})`` and ``sum_i s_i D_{l+1,i}`` in the layout of `theta`. Sums
    over disjoint row sets add up, so a distributed evaluator computes them per block
    and hands their total to :func:`finish`.

    Parameters
    ----------
    theta : ndarray of shape (n_params,)
        All weights and intercepts, as made by :func:`pack`.
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
        Inputs. The computation runs in float32 if `X` is float32, else in float64.
    Y : ndarray of shape (n_samples, n_outputs)
        0/1 indicator matrix of the targets. Column-major (Fortran order) is fastest:
        it is the layout of the kernel's buffers.
    layer_sizes : sequence of int
        ``(n_features, *hidden_layer_sizes, n_outputs)``.
    sample_weight : ndarray of shape (n_samples,), default=None
        Weights ``s``; ``None`` means every sample weighs 1.
    activation : {"logistic", "tanh", "relu"}, default="logistic"
        Hidden activation ``g``.
    output_activation : {"logistic", "softmax"}, default="logistic"
        Output units: independent sigmoids (C2) or one softmax (C3).
    block_size : int, default=None
        Rows per block; ``None`` picks :func:`block_rows`.
    workspace : object, default=None
        Buffers from a previous call with the same shapes (internal; ``None``
        allocates).
    n_threads : int, default=1
        Threads over the row blocks, as in :func:`cost_and_gradient`.
    n_sums : int, default=None
        Partial sums over the row blocks, as in :func:`cost_and_gradient`.

    Returns
    -------
    loss_sum : float
        ``sum_i s_i c_i``, accumulated in float64.
    grad_sum : ndarray of shape (n_params,)
        The unnormalised gradient sums, in the layout of `theta` and the computation
        dtype.

    Examples
    --------
    Two halves of the rows give the sums of the whole:

    >>> import numpy as np
    >>> from sklearn_bp.backprop import cost_and_gradient, finish, n_params, partial_sums
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.normal(size=(6, 2)), np.eye(2)[[0, 1, 1, 0, 1, 0]]
    >>> theta = rng.normal(size=n_params((2, 3, 2)))
    >>> first, second = (partial_sums(theta, X[rows], Y[rows], (2, 3, 2))
    ...                  for rows in (slice(0, 4), slice(4, 6)))
    >>> cost, grad = finish(first[0] + second[0], first[1] + second[1], theta,
    ...                     (2, 3, 2), alpha=0.1, weight_sum=6)
    >>> expected = cost_and_gradient(theta, X, Y, (2, 3, 2), alpha=0.1)
    >>> bool(np.isclose(cost, expected[0]) and np.allclose(grad, expected[1]))
    True
    """
    theta, X, Y, layer_sizes, dtype = _prepare(
        theta, X, Y, layer_sizes, activation, output_activation
    )
    coefs, intercepts = unpack(theta, layer_sizes)
    n_samples = X.shape[0]
    if n_samples == 0:
        return 0.0, np.zeros(theta.shape, dtype)
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, dtype=dtype)
    n_threads = _check_count(n_threads, "n_threads")
    n_sums = n_threads if n_sums is None else _check_count(n_sums, "n_sums")
    rows = (int(block_size) if block_size
            else block_rows(layer_sizes, n_samples, n_threads=n_sums, dtype=dtype,
                            row_bytes=_row_bytes(X)))
    rows = max(1, min(rows, n_samples))
    n_blocks = -(-n_samples // rows)
    n_sums = min(n_sums, n_blocks)
    n_threads = min(n_threads, n_sums)
    if workspace is None or not workspace.fits(layer_sizes, rows, dtype, n_threads,
                                               n_sums):
        workspace = _Workspace(layer_sizes, rows, dtype, n_threads=n_threads,
                               n_sums=n_sums)
    sums = workspace.sums[:n_sums]  # each written by its first block (no zeroing)
    # Underflow of e^{-|z|} to 0 is expected and harmless; other floating-point
    # settings follow the caller's, in every thread.
    errstate = dict(np.geterr(), under="ignore") if n_threads > 1 else {"under": "ignore"}
    ger = _blas_single_threaded()

    def blocks(j):
        """Thread j's share: partial sums j, j + n_threads, ..., each over its blocks
        k, k + n_sums, ... in order."""
        buffers = workspace.buffers[j]
        losses = []
        with np.errstate(**errstate):
            for k in range(j, n_sums, n_threads):
                loss = 0.0
                for start in range(k * rows, n_samples, n_sums * rows):
                    stop = min(start + rows, n_samples)
                    loss += _accumulate(
                        coefs, intercepts, X[start:stop], Y[start:stop],
                        None if sample_weight is None else sample_weight[start:stop],
                        workspace.sum_terms[k], buffers, activation,
                        output_activation, ger, first=start == k * rows,
                    )
                losses.append((k, loss))
        return losses

    losses = [pair for share in _in_threads(blocks, n_threads, workspace.pool)
              for pair in share]
    # Combined in a fixed order, so the result depends on n_sums but neither on
    # n_threads nor on timing.
    loss_sum = 0.0
    for k, loss in sorted(losses):
        loss_sum += loss
        if k:
            sums[0] += sums[k]
    # Back from the sums' transposed coefficients to theta's layout, in one gather
    return loss_sum, sums[0].take(workspace.from_transposed)


def finish(loss_sum, grad_sum, theta, layer_sizes, *, alpha=0.0, weight_sum):
    """Normalise the partial sums by ``S`` and add the penalty: (C1), (G1), (G2).

    Parameters
    ----------
    loss_sum : float
        ``sum_i s_i c_i`` from :func:`partial_sums`, totalled over all rows.
    grad_sum : ndarray of shape (n_params,)
        The matching gradient sums; overwritten with the gradient.
    theta : ndarray of shape (n_params,)
    layer_sizes : sequence of int
    alpha : float, default=0.0
    weight_sum : float
        ``S = sum_i s_i`` (``n_samples`` without weights).

    Returns
    -------
    cost : float
    grad : ndarray of shape (n_params,)
        `grad_sum`, normalised in place.
    """
    grad = grad_sum
    weights = _weights(np.asarray(theta).astype(grad.dtype, copy=False), layer_sizes)
    penalty = float(np.dot(weights, weights))  # sum_l ||W_l||^2
    if alpha:
        _weights(grad, layer_sizes)[...] += alpha * weights
    grad /= weight_sum
    cost = (float(loss_sum) + 0.5 * alpha * penalty) / weight_sum
    return cost, grad


def cost_and_gradient(theta, X, Y, layer_sizes, *, alpha=0.0, sample_weight=None,
                      activation="logistic", output_activation="logistic",
                      block_size=None, workspace=None, n_threads=1, n_sums=None):
    """Regularised cross-entropy cost (C1) and its gradient by backpropagation (B1)-(G2).

    Parameters
    ----------
    theta : ndarray of shape (n_params,)
        All weights and intercepts, as made by :func:`pack`.
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
        Inputs. The computation runs in float32 if `X` is float32, else in float64.
    Y : ndarray of shape (n_samples, n_outputs)
        0/1 indicator matrix of the targets. Column-major (Fortran order) is fastest:
        it is the layout of the kernel's buffers.
    layer_sizes : sequence of int
        ``(n_features, *hidden_layer_sizes, n_outputs)``.
    alpha : float, default=0.0
        L2 penalty on the weights (intercepts are not penalised), as in (C1).
    sample_weight : ndarray of shape (n_samples,), default=None
        Weights ``s``; ``None`` means every sample weighs 1.
    activation : {"logistic", "tanh", "relu"}, default="logistic"
        Hidden activation ``g``.
    output_activation : {"logistic", "softmax"}, default="logistic"
        Output units: independent sigmoids (C2) or one softmax (C3).
    block_size : int, default=None
        Rows per block; ``None`` picks a cache-friendly size. The result does not depend
        on it beyond rounding.
    workspace : object, default=None
        Buffers from a previous call with the same shapes, to avoid reallocating them
        (internal; ``None`` allocates).
    n_threads : int, default=1
        Threads that evaluate the row blocks, each with its own buffers and each taking
        whole partial sums (see `n_sums`); at most `n_sums` are used. The result does not
        depend on `n_threads`, nor on timing. Keep the BLAS library at one thread
        meanwhile (``threadpoolctl.threadpool_limits(1)``), as
        :class:`~sklearn_bp.BackpropClassifier` does.
    n_sums : int, default=None
        Partial sums over the row blocks: block ``b`` goes into sum ``b % n_sums``, each
        sum is accumulated in block order, and the sums are added in a fixed order. The
        result depends on `n_sums` (by rounding only). ``None`` means `n_threads`; fix it
        to get the same bits whatever the number of threads.

    Returns
    -------
    cost : float
        ``J(theta)``.
    grad : ndarray of shape (n_params,)
        ``dJ/dtheta`` in the layout of `theta`, in the computation dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_bp.backprop import cost_and_gradient, n_params
    >>> X = np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> Y = np.array([[1.0], [0.0]])
    >>> cost, grad = cost_and_gradient(np.zeros(n_params((2, 3, 1))), X, Y, (2, 3, 1))
    >>> round(cost, 6)   # one sigmoid output at 0.5: log 2
    0.693147
    >>> grad.shape
    (13,)
    """
    loss_sum, grad_sum = partial_sums(
        theta, X, Y, layer_sizes, sample_weight=sample_weight, activation=activation,
        output_activation=output_activation, block_size=block_size, workspace=workspace,
        n_threads=n_threads, n_sums=n_sums,
    )
    weight_sum = (
        float(np.shape(X)[0]) if sample_weight is None
        else float(np.sum(sample_weight, dtype=np.float64))
    )
    return finish(loss_sum, grad_sum, theta, layer_sizes, alpha=alpha,
                  weight_sum=weight_sum)


def forward(coefs, intercepts, X, *, activation="logistic", block_size=None,
            n_threads=1):
    """Output logits ``Z_L`` by (F1)-(F2), computed in row blocks.

    Parameters
    ----------
    coefs, intercepts : list of ndarray
        As returned by :func:`unpack`.
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
    activation : {"logistic", "tanh", "relu"}, default="logistic"
    block_size : int, default=None
        Rows per block; bounds the memory of the hidden activations.
    n_threads : int, default=1
        Threads over the row blocks, each with its own buffers and writing its own rows
        of `Z`: the result does not depend on it. Keep the BLAS library at one thread
        meanwhile (``threadpoolctl.threadpool_limits(1)``), as
        :class:`~sklearn_bp.BackpropClassifier` does.

    Returns
    -------
    Z : ndarray of shape (n_samples, n_outputs)
        Logits of the output layer, before the output activation (F3).
    """
    _check_activations(activation, "logistic")
    n_threads = _check_count(n_threads, "n_threads")
    dtype = _work_dtype(X)
    X = _as_float_matrix(X, dtype)
    coefs = [np.asarray(W, dtype=dtype) for W in coefs]
    intercepts = [np.asarray(b, dtype=dtype) for b in intercepts]
    layer_sizes = (X.shape[1],) + tuple(W.shape[1] for W in coefs)
    n_samples = X.shape[0]
    out = np.empty((n_samples, layer_sizes[-1]), dtype)
    if n_samples == 0:
        return out
    rows = (int(block_size) if block_size
            else block_rows(layer_sizes, n_samples, dtype=dtype, row_bytes=_row_bytes(X)))
    rows = max(1, min(rows, n_samples))
    n_threads = min(n_threads, -(-n_samples // rows))
    ger = _blas_single_threaded()
    errstate = dict(np.geterr(), under="ignore")

    def blocks(j):
        """Thread j's share: blocks j, j + n_threads, ..., with buffers of its own."""
        ws = _Buffers(layer_sizes, rows, dtype, gradient=False)
        with np.errstate(**errstate):
            for start in range(j * rows, n_samples, n_threads * rows):
                stop = min(start + rows, n_samples)
                Zs, Ps, Ns, _, _ = ws.blocks(stop - start)
                A = X[start:stop]
                for l in range(len(coefs) - 1):
                    Z = _affine(A, coefs[l], intercepts[l], Zs[l], ws.ones, ger)
                    A = _hidden_forward(Z, Ps[l], Ns[l], activation, derivative=False)
                _affine(A, coefs[-1], intercepts[-1], out[start:stop], ws.ones, ger)

    if n_threads == 1:
        blocks(0)
    else:
        with ThreadPoolExecutor(max_workers=n_threads - 1,
                                thread_name_prefix="sklearn_bp") as pool:
            _in_threads(blocks, n_threads, lambda: pool)
    return out


def _debug_matrix(rows, cols):
    """The classic exercise's deterministic matrix: ``sin(1..rows*cols) / 10``, filled
    column by column (its ``debugInitializeWeights``)."""
    values = np.sin(np.arange(1, rows * cols + 1)) / 10.0
    return values.reshape((rows, cols), order="F")


def check_gradient(theta=None, X=None, Y=None, layer_sizes=None, *, alpha=0.0,
                   sample_weight=None, activation="logistic",
                   output_activation="logistic", epsilon=1e-5):
    """Compare the backpropagation gradient with central finite differences.

    With no arrays given, it builds the classic exercise's small debug network (3 inputs,
    5 hidden units, 3 outputs, 5 samples, weights and inputs ``sin(1..numel) / 10``,
    labels ``1 + (1..m mod 3)``). Use it after changing the maths: a correct gradient
    gives a relative difference around 1e-10.

    Parameters
    ----------
    theta : ndarray of shape (n_params,), default=None
    X : ndarray of shape (n_samples, n_features), default=None
    Y : ndarray of shape (n_samples, n_outputs), default=None
    layer_sizes : sequence of int, default=None
        Needed when `theta`, `X`, `Y` are given.
    alpha, sample_weight, activation, output_activation
        As in :func:`cost_and_gradient`.
    epsilon : float, default=1e-5
        Step of the central differences ``(J(theta + e) - J(theta - e)) / (2 epsilon)``.

    Returns
    -------
    relative_difference : float
        ``||numerical - backprop|| / ||numerical + backprop||``.

    Examples
    --------
    >>> from sklearn_bp.backprop import check_gradient
    >>> check_gradient() < 1e-9
    True
    >>> check_gradient(alpha=3.0, output_activation="softmax") < 1e-9
    True
    """
    if X is None:
        layer_sizes = (3, 5, 3) if layer_sizes is None else tuple(layer_sizes)
        m = 5
        if theta is None:
            # The course's Theta_l is (fan_out, 1 + fan_in) with the bias in column 0.
            thetas = [_debug_matrix(fan_out, 1 + fan_in)
                      for fan_in, fan_out in zip(layer_sizes[:-1], layer_sizes[1:])]
            theta = pack([T[:, 1:].T for T in thetas], [T[:, 0] for T in thetas])
        X = _debug_matrix(m, layer_sizes[0])
        labels = 1 + np.arange(1, m + 1) % layer_sizes[-1]
        Y = (labels[:, None] == np.arange(1, layer_sizes[-1] + 1)).astype(float)
    elif theta is None or Y is None or layer_sizes is None:
        raise ValueError("Give theta, X, Y and layer_sizes together, or none of them.")
    theta = np.asarray(theta, dtype=np.float64)
    kwargs = dict(alpha=alpha, sample_weight=sample_weight, activation=activation,
                  output_activation=output_activation)
    _, grad = cost_and_gradient(theta, X, Y, layer_sizes, **kwargs)
    numerical = np.empty_like(theta)
    shifted = theta.copy()
    for i in range(theta.size):
        shifted[i] = theta[i] + epsilon
        plus, _ = cost_and_gradient(shifted, X, Y, layer_sizes, **kwargs)
        shifted[i] = theta[i] - epsilon
        minus, _ = cost_and_gradient(shifted, X, Y, layer_sizes, **kwargs)
        shifted[i] = theta[i]
        numerical[i] = (plus - minus) / (2 * epsilon)
    denominator = np.linalg.norm(numerical + grad)
    if denominator == 0:
        return 0.0
    return float(np.linalg.norm(numerical - grad) / denominator)
