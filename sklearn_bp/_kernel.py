"""The fused kernel: the equations of :mod:`sklearn_bp.backprop` on one block of rows.

Private. One call of :func:`accumulate` runs (F1)-(F2), the cost (C2)-(C5), the output
delta (B1), the hidden deltas (B2) and the gradient terms (G1), (G2) over one block of
rows, in buffers reused from block to block (:class:`Buffers`); :func:`forward_block`
runs (F1)-(F2) for predictions. The loop over blocks, the partial sums and the threads
are :mod:`sklearn_bp._loss`'s.

The forms here are those of the module notes of :mod:`sklearn_bp.backprop`, written to
make few passes over memory and to cancel nowhere, and fused:

* a fit's hidden layer computes ``A = sigma(z)`` and ``g' = u (1 - u)`` from one ``t =
  e^{-|z|}`` in place (:func:`activate`); predictions need no ``g'`` and, in float64,
  take (S1) as ``e^z / (1 + e^z)`` when every logit of the block (of its chunk of
  columns, in wide blocks) is below about 708.4: four passes instead of eight, within
  3.1 ulp, measured;
* the output layer's cost (C2)-(C5) and delta (B1) share their exponentials
  (:func:`output_cost_delta`); a fit's class labels come as one small integer a row
  (:mod:`sklearn_bp._targets`), and the softmax (and the logistic outputs from
  ``LOGISTIC_GATHER_MIN_UNITS`` units) reads each row's label where it is: ``z`` at the
  label gathered for the cost, the label's entry of the delta written, no pass over a
  block of ``Y``;
* predictions turn each block's logits into what they return while the block is in
  cache (the loss object's ``BlockOutput``), with a softmax unit by unit for few units
  and row by row from ``ROW_SOFTMAX_MIN_UNITS`` (:func:`softmax_into`);
* the sums over samples of (C1), (G1), (G2) are accumulated block by block, so memory
  does not grow with the number of rows; the loss object deals the blocks into partial
  sums added in a fixed order, so for a given number of partial sums the same inputs
  give the same bits with any number of threads.

Each choice that is only about speed was measured; the numbers are in
``benchmarks/levers.rst`` and the user's view of them in ``docs/performance.rst``.
Nothing here imports the rest of the package.
"""

import functools
import math

import numpy as np
import scipy.sparse as sp
from scipy.linalg import blas

# Bytes of the widest layer's buffer in one block, and at most that of its rows of X:
# small enough to stay in cache, large enough for efficient products. In bytes, so that
# float32 blocks hold twice the rows of float64 ones.
BLOCK_BYTES = 1 << 19  # 2**16 float64 numbers
INPUT_BLOCK_BYTES = 1 << 24
# Rows per input of the widest dense product: each block repacks the weights and adds a
# (units x inputs) gradient term, work that grows with the inputs, not the rows.
ROWS_PER_FAN_IN = 2

# The sign bit of a float64 or float32, as the integer of the same width (exp_neg_abs)
_SIGN_BIT = {"d": (np.int64, np.int64(-(1 << 63))), "f": (np.int32, np.int32(-(1 << 31)))}

# BLAS rank-one update by dtype, to add the intercepts (see affine)
GER = {"d": blas.dger, "f": blas.sger}

# Below this logit, 1 + e^z is at most 1 / tiny, so sigma(-z) = 1 / (1 + e^z) is a normal
# float64 and sigma(z) = e^z sigma(-z) keeps its relative accuracy (see activate).
DIRECT_SIGMOID_MAX = -math.log(np.finfo(np.float64).tiny)  # 708.39...


def work_dtype(X):
    """float32 stays float32; every other input is computed in float64."""
    dtype = getattr(X, "dtype", None)
    return np.float32 if dtype == np.float32 else np.float64


# ----------------------------------------------------------------------------------------
# Elementwise forms, shared with backprop's public functions
# ----------------------------------------------------------------------------------------


def exp_neg_abs(z, out):
    """``out = e^{-|z|}``, the one exponential behind (S1), (S2) and (C2); `z` and `out`
    float64 or float32 arrays."""
    # -|z| is z with its sign bit set: one integer pass instead of abs and negative.
    ints, sign = _SIGN_BIT[z.dtype.char]
    np.bitwise_or(z.view(ints), sign, out=out.view(ints))
    return np.exp(out, out=out)


def logistic_derivative(u, out):
    """(S2) from ``u = sigma(-|z|)``: ``out = sigma(z) sigma(-z) = u (1 - u)``.

    As ``u <= 1/2``, ``1 - u`` does not cancel (it is the accurate ``sigma(|z|)``), and a
    relative error ``e`` in ``u`` enters the product with weight ``(1 - 2u) / (1 - u) <=
    1``, while ``t / (1 + t)^2`` would take the rounding of ``1 + t`` twice. Within 3.6
    ulp of the exact value (tests/test_numerics.py).
    """
    np.subtract(1.0, u, out=out)
    return np.multiply(out, u, out=out)


def sum_over_units(et, out, where=None):
    """``out = et[0] + et[1] + ...``, unit after unit, for ``et`` of shape ``(n_units,
    n_samples)``, over the entries `where` is true (all of them if None): numpy adds
    whole rows so for several samples, but would sum a single sample's column pairwise,
    and so round one row alone otherwise than in a block."""
    if et.shape[1] == 1 and et.shape[0] > 1:
        out[...] = 0.0
        for i, row in enumerate(et):
            if where is None or where[i, 0]:
                out += row
        return out
    if where is None:
        return np.add.reduce(et, axis=0, out=out)
    return np.add.reduce(et, axis=0, out=out, where=where)


def exp_but_top(zt, et, mask, top, r, axis=0, keep_top=False):
    """Shift the logits by their maximum, exponentiate, and sum every unit but the top.

    Unit by unit, with ``zt`` of shape ``(n_units, n_samples)``: ``zt -= m`` (the column
    maxima, into ``top``), so that the top unit holds exactly 0; ``et = e^{zt}``, with 1
    at the top if `keep_top` (else 0 or 1 there); ``r`` the sum of ``et`` over the other
    units, plus 1 for each extra unit tied for the top. ``log1p(r)`` then keeps the
    digits that ``log(1 + r)`` would round away, and ``1 + r`` is the softmax's
    denominator. `mask` is bool scratch of the shape of ``zt``. With ``axis=1``, row by
    row: ``zt`` of shape ``(n_samples, n_units)``.

    The top is left out of the sum by a 0 in its place or, to keep its 1 from
    ``MASKED_SUM_MIN_UNITS`` units on, by a masked sum: the same bits either way.
    """
    np.maximum.reduce(zt, axis=axis, out=top)
    zt -= top if axis == 0 else top[:, None]
    n_units = zt.shape[axis]
    if keep_top and axis == 0 and n_units >= MASKED_SUM_MIN_UNITS:
        rest = np.not_equal(zt, 0.0, out=mask)
        np.exp(zt, out=et)
        sum_over_units(et, r, rest)
        n_tops, tops = rest.size - np.count_nonzero(rest), None
    else:
        tops = np.equal(zt, 0.0, out=mask)
        np.exp(zt, out=et)
        et -= tops  # e^0 = 1 exactly: now 0
        if axis == 0:
            sum_over_units(et, r)
        else:
            np.add.reduce(et, axis=1, out=r)
        if keep_top:
            et += tops
        n_tops = np.count_nonzero(tops)
    if n_tops > r.shape[0]:  # ties: the top counts once, not in r
        per_row = tops.sum(axis=axis) if tops is not None else n_units - rest.sum(axis=0)
        r += per_row - 1
    return et


# Units from which the fit's softmax leaves the top out of its sum by a masked sum,
# keeping the top's 1 in place for the delta, instead of putting a 0 there and the 1
# back: measured per block (issue 20), 18 against 14 microseconds at 10 units, even at
# 50, 67 against 157 at 200.
MASKED_SUM_MIN_UNITS = 50


# Logistic output units from which a fit reads each row's label where it is (gathers
# and writes at the label, see output_cost_delta) instead of spreading the block's
# labels into a 0/1 block of scratch: below, the fixed cost of the gathers is more than
# a pass over the narrow block (measured per block of 650 rows, issue 20: 23 against 14
# microseconds at 1 unit, 83 against 90 at 20). A softmax always reads them where they
# are: from 2 units on, no slower than the 0/1 block.
LOGISTIC_GATHER_MIN_UNITS = 16

# Output units from which a softmax for predictions runs row by row (each row's units
# contiguous, reduced along the row) instead of unit by unit (each unit's rows
# contiguous, reduced by elementwise passes over whole units): below, the passes over
# whole units are faster; from here, the reductions along rows are. Measured on blocks
# of predictions (benchmarks/levers.rst, issue 20): row by row took 3.9x the time at 2
# units, 1.1x at 50, about as long from 64 to 80, 0.8x at 100 and 200, 0.6x at 1000.
ROW_SOFTMAX_MIN_UNITS = 72


def _scratch(buffers, name, shape, dtype, order):
    """Scratch of `shape`: the thread's own reused buffer `name` (:meth:`Buffers.scratch`)
    or, without `buffers`, a new array."""
    if buffers is None:
        return np.empty(shape, dtype, order=order)
    return buffers.scratch(name, *shape, dtype, order)


def softmax_into(Z, out, buffers=None):
    """(F3) ``out = softmax(Z)`` row by row, from the logits ``Z`` (n_samples, n_units);
    ``out`` is C-contiguous, of the computation's float dtype, and may be ``Z`` itself.
    Scratch comes from `buffers` (:class:`Buffers`), or is allocated without them.

    Below ``ROW_SOFTMAX_MIN_UNITS`` units, unit by unit in column-major scratch of
    ``out``'s shape and dtype: the maxima and sums over units are elementwise passes
    over whole units. From there on row by row, in ``out``. Either way ``e^{z - m} / sum
    e^{z - m}``, with ``m`` the row maximum; the form depends on the number of units
    only, so that a row's probabilities do not depend on the rows around it.
    """
    if Z.shape[1] < ROW_SOFTMAX_MIN_UNITS:
        units = _scratch(buffers, "units", Z.shape, out.dtype, "F")
        np.copyto(units, Z)
        e = units.T  # one C-contiguous row per unit
        e -= np.maximum.reduce(e, axis=0)
        np.exp(e, out=e)
        e /= sum_over_units(e, np.empty(e.shape[1], e.dtype))
        np.copyto(out, units)
        return out
    if out is not Z:
        np.copyto(out, Z)
    out -= np.maximum.reduce(out, axis=1)[:, None]
    np.exp(out, out=out)
    out /= np.add.reduce(out, axis=1)[:, None]
    return out


def log_softmax_into(Z, out, buffers=None):
    """``out = log softmax(Z)`` row by row, ``z_k - m - log1p(r)`` as in (C3) (see
    :func:`exp_but_top`), from the logits ``Z`` (n_samples, n_units); ``out`` and
    `buffers` as for :func:`softmax_into`, which it follows in its choice of form: below
    ``ROW_SOFTMAX_MIN_UNITS`` units unit by unit, in column-major scratch; from there
    on row by row in ``out``, with row-major scratch (see :func:`exp_but_top`)."""
    n = Z.shape[0]
    top, r = np.empty(n, out.dtype), np.empty(n, out.dtype)
    by_unit = Z.shape[1] < ROW_SOFTMAX_MIN_UNITS
    order = "F" if by_unit else "C"
    et = _scratch(buffers, "et", Z.shape, out.dtype, order)
    mask = _scratch(buffers, "top", Z.shape, bool, order)
    if by_unit:
        units = _scratch(buffers, "units", Z.shape, out.dtype, "F")
        np.copyto(units, Z)
        exp_but_top(units.T, et.T, mask.T, top, r)
        return np.subtract(units, np.log1p(r)[:, None], out=out)
    if out is not Z:
        np.copyto(out, Z)
    exp_but_top(out, et, mask, top, r, axis=1)
    out -= np.log1p(r)[:, None]
    return out


# ----------------------------------------------------------------------------------------
# Block size and buffers
# ----------------------------------------------------------------------------------------


def block_rows(layer_sizes, n_samples, *, n_sums=1, dtype=np.float64, row_bytes=None):
    """Rows per block: about ``BLOCK_BYTES`` in the widest layer after the input, or
    ``ROWS_PER_FAN_IN`` rows per input of the widest dense product if that is more, at
    most ``INPUT_BLOCK_BYTES`` of input, and at least 64 rows.

    With ``n_sums > 1`` (partial sums, see :mod:`sklearn_bp._loss`) the rows are also cut
    so that every partial sum gets as many blocks as the others, all of nearly equal
    size. `row_bytes` is the bytes of one row of the input; ``None`` means a dense row of
    `dtype` (a sparse row holds only its nonzeros, and its product with the first layer's
    weights is not a dense one). Between 1 and `n_samples`.
    """
    return _block_rows(tuple(layer_sizes), int(n_samples), int(n_sums),
                       np.dtype(dtype).itemsize, row_bytes)


@functools.lru_cache(maxsize=256)  # every evaluation asks again
def _block_rows(layer_sizes, n_samples, n_sums, itemsize, row_bytes):
    layer_sizes = [max(int(h), 1) for h in layer_sizes]
    widest = max(layer_sizes[1:], default=1)
    # inputs of the dense products: every layer's, but the first one's if X is sparse
    fan_in = max(layer_sizes[:-1] if row_bytes is None else layer_sizes[1:-1], default=1)
    if row_bytes is None:
        row_bytes = itemsize * layer_sizes[0]
    rows = max(BLOCK_BYTES // itemsize // widest, ROWS_PER_FAN_IN * fan_in)
    rows = max(64, min(rows, int(INPUT_BLOCK_BYTES // max(row_bytes, 1))))
    if n_sums > 1:
        # Dealt evenly: as many blocks per partial sum, of nearly equal rows.
        per_sum = max(1, -(-n_samples // (n_sums * rows)))
        rows = -(-n_samples // (n_sums * per_sum))
    return int(max(1, min(n_samples, rows)))


def row_bytes(X):
    """Bytes per row of `X` for :func:`block_rows`: ``None`` (dense rows) for arrays,
    the mean of the stored values and column indices for scipy.sparse."""
    if not sp.issparse(X) or X.shape[0] == 0:
        return None
    return (X.data.nbytes + X.indices.nbytes) / X.shape[0]


class ColumnMajor:
    """Storage for up to ``rows`` rows of ``h`` columns whose :meth:`block` views are
    column-major: each column (one unit over the block's rows) is contiguous, whatever
    the number of rows used. BLAS writes ``A @ W`` faster into this layout for up to
    about a hundred units, and the softmax's sums over units become elementwise
    operations on whole columns."""

    def __init__(self, rows, h, dtype):
        self.h = int(h)
        self.flat = np.empty(int(rows) * self.h, dtype)

    def block(self, m):
        """The first ``m`` rows, an F-contiguous array of shape ``(m, h)``."""
        return self.flat[:m * self.h].reshape(self.h, m).T


class Buffers:
    """One thread's buffers for a block of up to ``rows`` rows, each column-major.

    Per layer ``l + 1`` after the input:

    - ``pre_activations[l]``: ``Z_{l+1}`` (logits, at the output), overwritten in place
      by the activations ``A_{l+1}``;
    - ``derivatives[l]``: ``g'(Z_{l+1})`` for (B2) (scratch in predictions);
    - ``deltas[l]``: scratch in the forward pass, then ``D_{l+1}`` in the backward pass.

    For the output layer, ``output_delta`` holds ``D_L``, ``top_mask`` (bool) marks the
    softmax's top unit (or the others, see :func:`exp_but_top`; scratch for logistic
    outputs), and ``row_stats`` hold its row maxima and sums; ``targets``, made
    on first use, holds a block of targets that are not column-major floats (a compact
    indicator, or C-ordered values); ``rows_index`` is ``0, 1, ...``, to find each row's
    label (:func:`label_positions`). Per layer, ``gradient_terms`` receive one block's
    gradient terms (see :func:`add_gradient`). With ``gradient=False`` (predictions)
    the output layer's buffers are made on first use, by :meth:`scratch`.
    """

    def __init__(self, layer_sizes, rows, dtype, *, gradient=True):
        widths = [int(h) for h in layer_sizes[1:]]
        if not gradient:
            widths = widths[:-1]
        self.pre_activations = [ColumnMajor(rows, h, dtype) for h in widths]
        self.derivatives = [ColumnMajor(rows, h, dtype) for h in widths]
        self.deltas = [ColumnMajor(rows, h, dtype) for h in widths]
        self.top_mask = ColumnMajor(rows, widths[-1], bool) if gradient else None
        self.output_delta = ColumnMajor(rows, widths[-1], dtype) if gradient else None
        self.row_stats = np.empty((2, rows), dtype) if gradient else None
        self.rows, self.n_outputs, self.dtype = int(rows), int(layer_sizes[-1]), dtype
        self.rows_index = np.arange(rows) if gradient else None
        # for the intercepts (affine) and the column sums over rows (add_gradient)
        self.ones = np.ones(rows, dtype)
        self._views = {}  # see blocks()
        self._scratch = {}  # see scratch()
        self.gradient_terms = (
            [(np.empty((w, h), dtype), np.empty(w, dtype))
             for h, w in zip(layer_sizes[:-1], layer_sizes[1:])] if gradient else None)

    def blocks(self, m):
        """``(pre_activations, derivatives, deltas, top_mask, output_delta)`` for the
        first ``m`` rows: lists of views per layer (the last two one view each, of the
        output layer), made once per ``m``."""
        views = self._views.get(m)
        if views is None:
            views = self._views[m] = (
                *([b.block(m) for b in layer]
                  for layer in (self.pre_activations, self.derivatives, self.deltas)),
                *(None if b is None else b.block(m)
                  for b in (self.top_mask, self.output_delta)),
            )
        return views

    def target_block(self, Y):
        """The block of targets `Y` as columns of contiguous values of the computation
        dtype: `Y` itself if it is (a row block of a column-major matrix, which is not
        column-major itself), else a copy in the buffer ``targets``; unit labels (1-D)
        spread into their 0/1 matrix there."""
        if Y.ndim == 2 and Y.dtype == self.dtype and (Y.strides[0] == Y.itemsize
                                                      or Y.flags.f_contiguous):
            return Y
        block = self.scratch("targets", Y.shape[0], self.n_outputs, self.dtype)
        if Y.ndim == 1:
            units = np.arange(self.n_outputs, dtype=Y.dtype)
            np.equal(Y[:, None], units, out=block, casting="unsafe")
        else:
            np.copyto(block, Y)
        return block

    def scratch(self, name, m, k, dtype, order="F"):
        """A buffer of this thread's own for up to ``rows`` rows of `k` columns, made on
        first use and reused: its first `m` rows, column-major (``order="F"``) or
        row-major."""
        key = (name, int(k), np.dtype(dtype), order)
        flat = self._scratch.get(key)
        if flat is None:
            flat = self._scratch[key] = np.empty(self.rows * int(k), dtype)
        if order == "F":
            return flat[:m * k].reshape(k, m).T
        return flat[:m * k].reshape(m, k)

    def arrays(self):
        """Every buffer, to account for memory."""
        layers = (*self.pre_activations, *self.derivatives, *self.deltas)
        output = ([] if self.output_delta is None
                  else [self.top_mask.flat, self.output_delta.flat, self.row_stats,
                        self.rows_index])
        terms = [a for pair in self.gradient_terms or () for a in pair]
        return ([b.flat for b in layers] + [self.ones] + output + terms
                + list(self._scratch.values()))


# ----------------------------------------------------------------------------------------
# The equations on one block
# ----------------------------------------------------------------------------------------


def affine(A, W, b, out, ones, ger):
    """(F1) ``out = A @ W + b``; ``A`` may be scipy.sparse, ``ones`` holds at least as
    many ones as ``out`` has rows.

    With `ger` true and ``out`` contiguous, ``b`` is added as the rank-one update
    ``ones b^T`` by scipy's BLAS ``ger``: a third of the time of numpy's broadcast
    addition. Callers pass `ger` false unless every BLAS library runs one thread: numpy's
    and scipy's OpenBLAS keep separate thread pools, and alternating between them while
    both have threads is many times slower.
    """
    if sp.issparse(A):
        out[...] = A @ W
    else:
        np.matmul(A, W, out=out)
    ger = GER.get(out.dtype.char) if ger else None
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


def hidden_forward(Z, derivative, scratch, activation, with_derivative=True):
    """(F2) in place: ``Z`` becomes ``A = g(Z)``, `derivative` receives ``g'(Z)`` for
    (B2) (scratch, with ``with_derivative=False``); `scratch` is scratch.

    The three are column-major; they are taken in chunks of whole columns of at most
    ``BLOCK_BYTES`` each, so that a chunk's three stay in a core's cache over the
    activation's passes (blocks wider than that come from the fan-in rule). The bits do
    not depend on the chunks. See :func:`activate` for the forms.
    """
    step = max(1, BLOCK_BYTES // max(1, Z.shape[0] * Z.itemsize))
    if step >= Z.shape[1]:
        return activate(Z, derivative, scratch, activation, with_derivative)
    for j in range(0, Z.shape[1], step):
        cols = slice(j, j + step)
        activate(Z[:, cols], derivative[:, cols], scratch[:, cols], activation,
                 with_derivative)
    return Z


def activate(Z, derivative, scratch, activation, with_derivative=True):
    """:func:`hidden_forward` on arrays of any size, in one go.

    For logistic units, one ``t = e^{-|z|}`` gives ``u = sigma(-|z|) = t/(1+t)``, at most
    1/2, and ``sigma(|z|) = 1 - u`` (S1); ``A`` is the second where ``z >= 0`` and the
    first elsewhere, and ``g' = u (1 - u)`` (S2), never ``A (1 - A)``.

    Without the derivative (predictions), float64 arrays whose values are all below
    ``DIRECT_SIGMOID_MAX`` take the direct form ``e^z sigma(-z)`` with ``sigma(-z) = 1 /
    (1 + e^z)``: four passes instead of eight, within 3.1 ulp. Fits keep the form above,
    as the direct form's ``g'`` takes the rounding of ``1 + e^z`` twice (up to 5 ulp);
    so does float32, whose ``e^z`` alone is up to 2.4 ulp off.
    """
    if (activation == "logistic" and not with_derivative and Z.dtype == np.float64
            and Z.size and Z.max() < DIRECT_SIGMOID_MAX):
        e = np.exp(Z, out=Z)  # e^z, finite and at most 1 / tiny
        one_plus_e = np.add(e, 1.0, out=scratch)
        sigma_minus = np.reciprocal(one_plus_e, out=scratch)  # sigma(-z) = 1 / (1 + e)
        return np.multiply(e, sigma_minus, out=Z)  # A = sigma(z) = e sigma(-z)
    if activation == "logistic":
        t = exp_neg_abs(Z, scratch)
        # [z >= 0] as 1.0 or 0.0 (written as floats: no bool-to-float pass below)
        nonnegative = np.greater_equal(Z, 0.0, out=derivative, casting="unsafe")
        one_plus_t = np.add(t, 1.0, out=Z)
        u = np.divide(t, one_plus_t, out=scratch)  # sigma(-|z|) <= 1/2
        signed = np.subtract(nonnegative, u, out=Z)  # 1 - u where z >= 0, -u elsewhere
        np.abs(signed, out=Z)  # A = sigma(z)
        if with_derivative:
            logistic_derivative(u, derivative)
    elif activation == "tanh":
        if with_derivative:
            # tanh'(z) = 1 - tanh(z)^2 = 4 sigma(2|z|) sigma(-2|z|): no cancellation.
            minus_2abs = np.abs(Z, out=scratch)
            np.multiply(minus_2abs, -2.0, out=minus_2abs)
            t = np.exp(minus_2abs, out=scratch)  # e^{-2|z|}
            one_plus_t = np.add(t, 1.0, out=derivative)
            u = np.divide(t, one_plus_t, out=scratch)  # sigma(-2|z|)
            logistic_derivative(u, derivative)
            np.multiply(derivative, 4.0, out=derivative)
        np.tanh(Z, out=Z)
    elif activation == "relu":
        if with_derivative:
            np.greater(Z, 0.0, out=derivative)  # relu'(z), 0 or 1
        np.maximum(Z, 0.0, out=Z)
    elif with_derivative:  # identity: A = Z as it is, and g' = 1
        derivative.fill(1.0)
    return Z


def _block_cost(terms, sample_weight):
    """``sum_i s_i sum_k terms_ik``, accumulated in float64."""
    if sample_weight is None:
        return float(terms.sum(dtype=np.float64))
    if terms.dtype == np.float64:
        return float(np.dot(sample_weight, terms).sum())
    return float(np.dot(terms.sum(axis=1, dtype=np.float64), sample_weight))


def label_positions(units, n_rows, rows_index):
    """Where each row's label is in a column-major ``(n_rows, k)`` block read flat: the
    positions ``unit * n_rows + row`` of the rows that have a unit (``units >= 0``, see
    :mod:`sklearn_bp._targets`). `rows_index` holds ``0, 1, ...`` (at least `n_rows`)."""
    positions = units.astype(np.intp)
    positions *= n_rows
    positions += rows_index[:n_rows]
    if units.size and units.min() < 0:  # a row without a unit (one logistic unit)
        positions = positions[units >= 0]
    return positions


def output_cost_delta(Z, Y, delta, scratch, scratch2, top_mask, row_stats,
                      sample_weight, output_activation, positions=None):
    """Block cost ``sum_i s_i c_i`` (C2)-(C5), returned, and the output delta ``delta =
    s * (A_L - Y)`` (B1), from the logits ``Z``; ``Z``, `scratch`, `scratch2`,
    `top_mask` and `row_stats` may be overwritten (the block's :class:`Buffers`).

    ``Y`` is the targets' matrix, or, for logistic and softmax outputs, None with
    `positions` the flat positions of the 1s of ``Y`` in a column-major block
    (:func:`label_positions`): the work then takes one row's label where ``Y`` would
    take a whole row, the same numbers but for the order in which the softmax cost adds
    up its ``y (z - m)`` terms (one per row instead of all of ``Y``'s, zeros included).
    """
    labels = Y is None
    if output_activation == "identity":
        residual = np.subtract(Z, Y, out=delta)  # D = z - y                  (B1)
        squares = np.multiply(residual, residual, out=scratch)
        cost = 0.5 * _block_cost(squares, sample_weight)  # (C4)
    elif output_activation == "exp":
        cost = _poisson_cost_delta(Z, Y, delta, scratch, scratch2, top_mask,
                                   sample_weight)
    elif output_activation == "logistic":
        t = exp_neg_abs(Z, scratch2)
        # c_i = sum_k (max(z, 0) - y z) + log1p(e^{-|z|})        (C2)
        # The bracket first: for y in {0, 1} it is exactly 0 or |z|, so the small
        # log1p term is never added to z and subtracted again.
        bracket = np.maximum(Z, 0.0, out=scratch)
        if labels:  # y = 1 at the label only, where the bracket is max(z, 0) - z
            flat_bracket = bracket.T.reshape(-1)
            flat_bracket[positions] -= Z.T.reshape(-1)[positions]
        else:
            bracket -= np.multiply(Y, Z, out=delta)
        terms = np.log1p(t, out=delta)
        terms += bracket
        cost = _block_cost(terms, sample_weight)
        # D = (1 - y) sigma(z) - y sigma(-z)                      (B1)
        #   = (1 - y) - u where z >= 0, and u - y where z < 0, with u = sigma(-|z|):
        #   = ([z >= 0] - y) - [z >= 0 ? 1 : -1] u, which for y = 1 and z >= 0 is -u.
        one_plus_t = np.add(t, 1.0, out=scratch)
        u = np.divide(t, one_plus_t, out=scratch2)  # <= 1/2
        nonnegative = np.signbit(Z, out=top_mask)  # z < 0, and -0.0 with it ...
        np.logical_not(nonnegative, out=nonnegative)  # ... so that -0.0 counts as < 0
        signed_u = np.copysign(u, Z, out=scratch2)
        if labels:  # [z >= 0] - u' where y = 0; ([z >= 0] - 1) - u' at the label
            np.subtract(nonnegative, signed_u, out=delta)
            at_label = nonnegative.T.reshape(-1)[positions] - 1.0
            at_label -= signed_u.T.reshape(-1)[positions]
            delta.T.reshape(-1)[positions] = at_label
        else:
            np.subtract(nonnegative, Y, out=delta)
            delta -= signed_u
    else:
        # c_i = log1p(r) - sum_k y_k (z_k - m),  r = sum_{k != top} e^{z_k - m}    (C3)
        # Unit by unit: the transposes are C-contiguous, one row per output unit.
        n = Z.shape[0]
        top, rest = row_stats[0, :n], row_stats[1, :n]
        shifted_t = Z.T  # becomes z - m
        exp_t = exp_but_top(shifted_t, delta.T, top_mask.T, top, rest,
                            keep_top=True)  # e^{z - m}, 1 at the top
        log1p_rest = np.log1p(rest, out=top)
        if labels:  # sum_k y_k (z_k - m) = z_label - m, gathered
            y_shifted = shifted_t.reshape(-1)[positions][:, None]
        else:
            y_shifted = np.multiply(Y, Z, out=scratch)  # y (z - m), at most 0
        if sample_weight is None:
            cost = (float(log1p_rest.sum(dtype=np.float64))
                    - float(y_shifted.sum(dtype=np.float64)))
        else:
            cost = _block_cost(log1p_rest[:, None], sample_weight) - _block_cost(
                y_shifted, sample_weight)
        # D = softmax(z) - y = ((e - y) - y r) / (1 + r), with e = 1 at the top unit,
        # where it is ((1 - y) - y r) / (1 + r): no cancellation for y = 1.   (B1)
        if labels:  # e where y = 0, and ((e - 1) - r) at the label
            flat_exp = exp_t.reshape(-1)
            at_label = flat_exp[positions] - 1.0
            at_label -= rest
            flat_exp[positions] = at_label
        else:
            y_t = Y.T
            exp_t -= y_t  # e - y
            exp_t -= np.multiply(y_t, rest, out=scratch.T)
        inverse = np.reciprocal(np.add(rest, 1.0, out=top), out=top)  # 1 / (1 + r)
        exp_t *= inverse
    if sample_weight is not None:
        delta *= sample_weight[:, None]
    return cost


def _poisson_cost_delta(Z, Y, delta, scratch, scratch2, zero, sample_weight):
    """(C5) and (B1) for exp outputs, from the logits and ``d = z - log y``.

    For ``y > 0``, ``c = e^z - y z + y log y - y = y (e^d - 1 - d)`` and ``D = e^z - y =
    y (e^d - 1)``: ``expm1`` keeps them accurate near the fit (``d`` near 0), where
    ``e^z - y z`` and ``y log y - y`` would cancel, and nothing overflows while ``c``
    is a finite number. For ``y = 0``, ``c = D = e^z``.
    """
    is_zero = np.equal(Y, 0.0, out=zero)
    # log 0 = -inf makes d = +inf and 0 * inf = nan where y = 0, replaced below
    with np.errstate(divide="ignore", invalid="ignore"):
        log_y = np.log(Y, out=scratch)
        d = np.subtract(Z, log_y, out=scratch)
        expm1_d = np.expm1(d, out=scratch2)
        np.multiply(Y, expm1_d, out=delta)  # D = y (e^d - 1)             (B1)
        terms = np.subtract(expm1_d, d, out=scratch2)
        np.multiply(Y, terms, out=terms)  # c = y (e^d - 1 - d)           (C5)
    if is_zero.any():
        exp_z = np.exp(Z, out=scratch)  # A = e^z                         (F3)
        np.copyto(delta, exp_z, where=is_zero)
        np.copyto(terms, exp_z, where=is_zero)
    return _block_cost(terms, sample_weight)


def add_gradient(A, delta, ones, sums, scratch_terms, first):
    """(G1), (G2) for one block: ``sums = (coef_t, intercept)`` receive ``delta.T @ A``,
    the transpose of ``A.T @ delta``, and the sum of the rows of ``delta``: written into
    them for the `first` block of a partial sum, else added through `scratch_terms`.

    Transposed, because with the column-major delta this product is the faster one for
    narrow layers, and the sums add contiguous arrays (the loss gathers them into theta's
    layout once per evaluation). numpy's ``matmul`` releases the GIL meanwhile.
    """
    coef_t, intercept = sums if first else scratch_terms
    if sp.issparse(A):
        coef_t[...] = delta.T @ A  # scipy.sparse computes it as (A.T @ delta).T
    else:
        np.matmul(delta.T, A, out=coef_t)
    np.matmul(ones[:delta.shape[0]], delta, out=intercept)
    if not first:
        coef_t_sum, intercept_sum = sums
        coef_t_sum += coef_t
        intercept_sum += intercept


def accumulate(coefs, intercepts, X, Y, sample_weight, sums, buffers, activation,
               output_activation, ger, first):
    """One block of rows: returns ``sum_i s_i c_i`` and adds ``(s * D_{l+1})^T A_l`` and
    ``sum_i s_i D_{l+1,i}`` to ``sums[l]``, a pair of arrays (the unnormalised sums of
    (C1), (G1) transposed, (G2)), or writes them there for the `first` block of a
    partial sum. `Y` is the block's targets in a form of :mod:`sklearn_bp._targets`
    (unit labels, a compact indicator or values); `buffers` are one thread's
    :class:`Buffers`; `ger` as in :func:`affine`."""
    n_layers = len(coefs)
    m = X.shape[0]
    pre_activations, derivatives, deltas, top_mask, delta = buffers.blocks(m)
    if Y.ndim == 1 and (output_activation == "softmax"
                        or coefs[-1].shape[1] >= LOGISTIC_GATHER_MIN_UNITS):
        positions, Y = label_positions(Y, m, buffers.rows_index), None  # where the 1s are
    else:
        positions, Y = None, buffers.target_block(Y)

    activations = [X]  # (F1), (F2)
    for l in range(n_layers):
        Z = affine(activations[l], coefs[l], intercepts[l], pre_activations[l],
                   buffers.ones, ger)
        if l + 1 < n_layers:
            activations.append(
                hidden_forward(Z, derivatives[l], deltas[l], activation))
    block_cost = output_cost_delta(  # (C2)-(C5), (B1)
        pre_activations[-1], Y, delta, derivatives[-1], deltas[-1], top_mask,
        buffers.row_stats,
        sample_weight, output_activation, positions,
    )
    for l in range(n_layers - 1, -1, -1):
        # (G1), (G2) for layer l, while delta = s * D_{l+1} is in cache
        add_gradient(activations[l], delta, buffers.ones, sums[l],
                     buffers.gradient_terms[l], first)
        if l:  # (B2): D_l = (D_{l+1} @ W_l^T) * g'(Z_l)
            delta = np.matmul(delta, coefs[l].T, out=deltas[l - 1])
            delta *= derivatives[l - 1]
    return block_cost


def forward_block(coefs, intercepts, X, out, buffers, activation, ger):
    """(F1)-(F2) for predictions on one block of rows: the output logits into `out`."""
    pre_activations, derivatives, deltas, _, _ = buffers.blocks(X.shape[0])
    A = X
    for l in range(len(coefs) - 1):
        Z = affine(A, coefs[l], intercepts[l], pre_activations[l], buffers.ones, ger)
        A = hidden_forward(Z, derivatives[l], deltas[l], activation, with_derivative=False)
    return affine(A, coefs[-1], intercepts[-1], out, buffers.ones, ger)
