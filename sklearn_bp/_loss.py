"""The loss object: the objective (C1) of one network, and how it is evaluated.

Private; the seam between the maths and the estimators, in the spirit of scikit-learn's
``LinearModelLoss``. :class:`NetworkLoss` is made from the layer sizes, the hidden and
output activations, ``alpha`` and the computation dtype, and owns everything about *how*
the objective is evaluated: the row blocks, the buffers, the threads and the BLAS
setting. The estimators see only its interface:

- :meth:`NetworkLoss.objective` binds it to rows in this process: an :class:`Objective`,
  ``theta -> (cost, grad)`` for ``scipy.optimize.minimize(jac=True)``, used as a context
  manager around the minimisation (it holds BLAS at one thread meanwhile);
- :meth:`NetworkLoss.partial_sums` over a set of rows and :meth:`NetworkLoss.combine`,
  for evaluators that split the rows (:mod:`sklearn_bp.dask` subclasses
  :class:`Objective` with blocks held by Dask workers);
- :meth:`NetworkLoss.forward`, the output logits for predictions.

An evaluation deals its row blocks round-robin into partial sums, each accumulated in
block order by one thread (:func:`sklearn_bp._kernel.accumulate`) and added in a fixed
order at the end, so the same inputs give the same bits with any number of threads.

The end of this module is the fast evaluation that :mod:`sklearn_bp.backprop` exports
(:func:`~sklearn_bp.backprop.partial_sums`,
:func:`~sklearn_bp.backprop.combine_partial_sums`,
:func:`~sklearn_bp.backprop.cost_and_gradient`, :func:`~sklearn_bp.backprop.forward`):
one call of a loss object each.
"""

import numbers
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from sklearn.utils.validation import check_scalar

from . import _kernel, _threads, backprop


def _transposed_terms(flat, layer_sizes):
    """Per layer, ``(coef_t, intercept)`` views of `flat`: the segments of theta's layout
    (:func:`~sklearn_bp.backprop.unpack`), each coefficient segment read as the
    C-contiguous transpose, of shape ``(h_{l+1}, h_l)``: the orientation in which the
    kernel sums the gradient (:func:`sklearn_bp._kernel.add_gradient`)."""
    coefs, intercepts = backprop.unpack(flat, layer_sizes)
    return [(W.reshape(W.shape[::-1]), b) for W, b in zip(coefs, intercepts)]


def _from_transposed(layer_sizes):
    """Indices that gather a vector in the layout of :func:`_transposed_terms` into
    theta's: ``theta_layout = transposed_layout[_from_transposed(layer_sizes)]``."""
    index = np.arange(backprop.n_params(layer_sizes))
    for W, (W_t, _) in zip(backprop.unpack(index, layer_sizes)[0],
                           _transposed_terms(index, layer_sizes)):
        W[...] = W_t.T.copy()  # W and W_t are the same segment of `index`
    return index


class Workspace:
    """Buffers reused over blocks and over evaluations: one set per thread, one gradient
    sum per partial sum, and the helper threads.

    ``buffers[j]`` are thread ``j``'s block buffers (:class:`sklearn_bp._kernel.Buffers`),
    ``sums[k]`` the gradient of partial sum ``k``, read through ``sum_terms[k]`` (see
    :func:`_transposed_terms`) and put back in theta's layout by the indices
    ``from_transposed``. Their size depends on ``rows`` and the layer sizes, never on the
    number of samples. The threads are started on first use and stopped by
    :meth:`close`.
    """

    def __init__(self, layer_sizes, rows, dtype, *, n_threads=1, n_sums=1):
        self.layer_sizes = tuple(int(h) for h in layer_sizes)
        self.rows, self.dtype = int(rows), np.dtype(dtype)
        self.n_threads = max(1, int(n_threads))
        self.n_sums = max(self.n_threads, int(n_sums))
        self.buffers = [_kernel.Buffers(self.layer_sizes, self.rows, self.dtype)
                        for _ in range(self.n_threads)]
        size = backprop.n_params(self.layer_sizes)
        self.sums = [np.empty(size, self.dtype) for _ in range(self.n_sums)]
        self.sum_terms = [_transposed_terms(a, self.layer_sizes) for a in self.sums]
        self.from_transposed = _from_transposed(self.layer_sizes)
        self._pool = None

    def fits(self, layer_sizes, rows, dtype, n_threads, n_sums):
        """Whether these buffers serve blocks of `rows` rows."""
        return (self.dtype == dtype and self.rows >= rows and self.n_threads >= n_threads
                and self.n_sums >= n_sums and self.layer_sizes == layer_sizes)

    def arrays(self):
        """Every buffer, to account for memory."""
        return [a for b in self.buffers for a in b.arrays()] + self.sums + [
            self.from_transposed]

    def pool(self):
        """The helper threads (``n_threads - 1`` of them), started on first use."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.n_threads - 1,
                                            thread_name_prefix="sklearn_bp")
        return self._pool

    def close(self):
        """Stop the helper threads, if any were started."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


def _as_float_matrix(X, dtype):
    if sp.issparse(X):
        X = X.tocsr() if X.format != "csr" else X
        return X.astype(dtype, copy=False)
    return np.asarray(X, dtype=dtype)


def _positive_count(value, name, hint):
    """`value` of the count `name` as a positive int (``check_scalar``, but no bool)."""
    if type(value) is int and value >= 1:  # the usual case, without check_scalar's cost
        return value
    try:
        if isinstance(value, bool):
            raise TypeError(f"{name} is a bool")
        return check_scalar(value, name, target_type=numbers.Integral, min_val=1)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a positive int, got {value!r}; {hint}") from exc


class NetworkLoss:
    """The objective (C1) of a network, with its gradient by backpropagation.

    Parameters
    ----------
    layer_sizes : sequence of int
        ``(n_features, *hidden_layer_sizes, n_outputs)``.
    activation : {"logistic", "tanh", "relu", "identity"}, default="logistic"
        Hidden activation ``g`` (F2).
    output_activation : {"logistic", "softmax", "identity", "exp"}, default="logistic"
        Output units (F3), with their cost (C2) to (C5).
    alpha : float, default=0.0
        L2 penalty on the weights (C1).
    dtype : dtype, default=np.float64
        The computation dtype: float32 or float64.
    """

    def __init__(self, layer_sizes, *, activation="logistic", output_activation="logistic",
                 alpha=0.0, dtype=np.float64):
        backprop.check_activations(activation, output_activation)
        self.layer_sizes = tuple(int(h) for h in layer_sizes)
        self.activation = activation
        self.output_activation = output_activation
        self.alpha = alpha
        self.dtype = np.dtype(dtype)

    @property
    def n_params(self):
        """Length of theta."""
        return backprop.n_params(self.layer_sizes)

    # ------------------------------------------------------------------------------------
    # Cost and gradient
    # ------------------------------------------------------------------------------------

    def prepare(self, X, Y=None, sample_weight=None):
        """`X`, `Y` and `sample_weight` in the computation dtype (CSR for sparse `X`),
        with their shapes checked against the layer sizes.

        `Y`, the targets, takes one of the forms of :mod:`sklearn_bp._targets`, kept as
        it is (no copy): unit labels (a 1-D integer array, for logistic and softmax
        outputs) or a compact indicator (a 2-D bool array); any other `Y` is the
        ``(n_samples, n_outputs)`` matrix of the equations, in the computation dtype.
        """
        X = _as_float_matrix(X, self.dtype)
        n_samples = X.shape[0]
        if X.ndim != 2 or X.shape[1] != self.layer_sizes[0]:
            raise ValueError(
                f"X has {X.shape[-1]} features, but layer_sizes[0] is "
                f"{self.layer_sizes[0]}: give X of shape (n_samples, "
                f"{self.layer_sizes[0]})."
            )
        if Y is not None:
            Y = self._prepare_targets(Y, n_samples)
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight, dtype=self.dtype)
        return X, Y, sample_weight

    def _prepare_targets(self, Y, n_samples):
        Y = np.asarray(Y)
        n_outputs = self.layer_sizes[-1]
        if Y.ndim == 1 and Y.dtype.kind in "iu":  # unit labels
            if self.output_activation not in ("logistic", "softmax"):
                raise ValueError(
                    f"Unit labels (a 1-D integer Y) describe classes, but the output "
                    f"layer is {self.output_activation!r}; give Y of shape (n_samples, "
                    f"{n_outputs}).")
            lowest = -1 if self.output_activation == "logistic" else 0
            if Y.shape[0] != n_samples or (Y.size and not (
                    lowest <= Y.min() and Y.max() < n_outputs)):
                raise ValueError(
                    f"Unit labels must be one integer in [{lowest}, {n_outputs}) per row "
                    f"of X ({n_samples}); got {Y.shape[0]} of them"
                    + (f" from {Y.min()} to {Y.max()}." if Y.size else "."))
            return Y
        if not (Y.ndim == 2 and Y.dtype == bool):  # a compact indicator stays compact
            Y = Y.astype(self.dtype, copy=False)
        if Y.ndim != 2 or Y.shape != (n_samples, n_outputs):
            raise ValueError(
                f"Y has shape {Y.shape}, expected (n_samples, n_outputs) = "
                f"({n_samples}, {n_outputs})."
            )
        return Y

    def plan(self, X, *, n_sums=1, n_threads=1, block_size=None):
        """``(rows, n_sums, n_threads)``: rows per block, partial sums and threads for an
        evaluation on `X` (prepared), as :meth:`partial_sums` runs it."""
        n_samples = X.shape[0]
        rows = (int(block_size) if block_size
                else _kernel.block_rows(self.layer_sizes, n_samples, n_sums=n_sums,
                                        dtype=self.dtype, row_bytes=_kernel.row_bytes(X)))
        rows = max(1, min(rows, n_samples))
        n_sums = min(n_sums, -(-n_samples // rows))
        return rows, n_sums, min(n_threads, n_sums)

    def partial_sums(self, theta, X, Y, sample_weight=None, *, n_sums=None, n_threads=1,
                     block_size=None, workspace=None):
        """The unnormalised sums of (C1), (G1), (G2) over the rows of `X`: a
        :class:`~sklearn_bp.backprop.PartialSums`.

        `n_sums` partial sums over the row blocks (block ``b`` into sum ``b % n_sums``,
        each accumulated in block order, added in a fixed order: the result depends on
        `n_sums` by rounding only; None: `n_threads`), computed by at most `n_threads`
        threads (the result does not depend on them). `block_size` rows per block (None:
        :func:`_kernel.block_rows`); `workspace` buffers from a previous call (None:
        allocated).
        """
        n_threads = _positive_count(n_threads, "n_threads",
                                    "use 1 to compute in the calling thread only.")
        n_sums = n_threads if n_sums is None else _positive_count(
            n_sums, "n_sums", "use 1 to add every block into one sum.")
        X, Y, sample_weight = self.prepare(X, Y, sample_weight)
        if X.shape[0] == 0:
            return PartialSums(0.0, np.zeros(self.n_params, self.dtype))
        rows, n_sums, n_threads = self.plan(X, n_sums=n_sums, n_threads=n_threads,
                                            block_size=block_size)
        if workspace is None or not workspace.fits(self.layer_sizes, rows, self.dtype,
                                                   n_threads, n_sums):
            workspace = Workspace(self.layer_sizes, rows, self.dtype, n_threads=n_threads,
                                  n_sums=n_sums)
        return self._blocked_sums(theta, X, Y, sample_weight, workspace, rows, n_sums,
                                  n_threads)

    def _blocked_sums(self, theta, X, Y, sample_weight, workspace, rows, n_sums,
                      n_threads):
        """:meth:`partial_sums` on prepared arrays, with the plan decided."""
        theta = np.asarray(theta).astype(self.dtype, copy=False)
        coefs, intercepts = backprop.unpack(theta, self.layer_sizes)
        n_samples = X.shape[0]
        sums = workspace.sums[:n_sums]  # each written by its first block (no zeroing)
        # Underflow of e^{-|z|} to 0 is expected and harmless; other floating-point
        # settings follow the caller's, in every thread.
        errstate = dict(np.geterr(), under="ignore") if n_threads > 1 else {"under": "ignore"}
        ger = _threads.blas_single_threaded()
        activation, output_activation = self.activation, self.output_activation

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
                        loss += _kernel.accumulate(
                            coefs, intercepts, X[start:stop], Y[start:stop],
                            None if sample_weight is None else sample_weight[start:stop],
                            workspace.sum_terms[k], buffers, activation,
                            output_activation, ger, first=start == k * rows,
                        )
                    losses.append((k, loss))
            return losses

        losses = [pair for share in _threads.in_threads(blocks, n_threads, workspace.pool)
                  for pair in share]
        # Combined in a fixed order: the result depends on n_sums, not on the threads.
        loss_sum = 0.0
        for k, loss in sorted(losses):
            loss_sum += loss
            if k:
                sums[0] += sums[k]
        # Back from the sums' transposed coefficients to theta's layout, in one gather
        return PartialSums(loss_sum, sums[0].take(workspace.from_transposed))

    def combine(self, parts, theta, weight_sum):
        """``(cost, grad)`` from the partial sums of all rows (added in order), whose
        total weight is `weight_sum`: :func:`~sklearn_bp.backprop.combine_partial_sums`."""
        return combine_partial_sums(parts, theta, self.layer_sizes,
                                    alpha=self.alpha, weight_sum=weight_sum)

    def loss_gradient(self, theta, X, Y, sample_weight=None, *, n_sums=None, n_threads=1,
                      block_size=None, workspace=None):
        """``(cost, grad)`` over the rows of `X`, evaluated as :meth:`partial_sums`."""
        parts = self.partial_sums(theta, X, Y, sample_weight, n_sums=n_sums,
                                  n_threads=n_threads, block_size=block_size,
                                  workspace=workspace)
        return self.combine([parts], theta, weight_sum(X, sample_weight))

    def objective(self, X, Y, sample_weight=None):
        """The objective on these rows, evaluated as fast as this machine allows: an
        :class:`Objective` (use it as a context manager around the minimisation). `Y`
        in a form of :meth:`prepare`, kept as it is."""
        return RowObjective(self, X, Y, sample_weight)

    # ------------------------------------------------------------------------------------
    # Forward pass
    # ------------------------------------------------------------------------------------

    def forward_threads(self, X):
        """Threads that a forward pass on `X` pays for, within the caller's BLAS budget."""
        return _threads.default_n_threads(X, self.layer_sizes, gradient=False)

    def forward(self, coefs, intercepts, X, *, n_threads=None, block_size=None,
                output=None):
        """Output logits ``Z_L`` by (F1)-(F2), in row blocks of bounded memory, or what
        `output` keeps of them.

        `n_threads` threads of our own over the row blocks, each writing its own rows of
        the result, which therefore does not depend on them; None: as many as the work
        pays for, within the caller's BLAS budget (:meth:`forward_threads`). BLAS is held
        at one thread meanwhile. `output`, a :class:`BlockOutput`, turns each block's
        logits into its rows of the result (probabilities, labels) while they are in
        cache: the logits of all the rows never exist at once.
        """
        X = _as_float_matrix(X, self.dtype)
        coefs = [np.asarray(W, dtype=self.dtype) for W in coefs]
        intercepts = [np.asarray(b, dtype=self.dtype) for b in intercepts]
        n_samples = X.shape[0]
        if output is None:
            out = np.empty((n_samples, self.layer_sizes[-1]), self.dtype)
        else:
            out = np.empty((n_samples, *output.columns), output.dtype)
        if n_samples == 0:
            return out
        if n_threads is None:
            n_threads = self.forward_threads(X)
        n_threads = _positive_count(n_threads, "n_threads",
                                    "use 1 to compute in the calling thread only.")
        rows = (int(block_size) if block_size
                else _kernel.block_rows(self.layer_sizes, n_samples, dtype=self.dtype,
                                        row_bytes=_kernel.row_bytes(X)))
        rows = max(1, min(rows, n_samples))
        n_threads = min(n_threads, -(-n_samples // rows))
        # BLAS at one thread, on one thread of ours too: the result is then the same
        # whatever the BLAS setting (and whatever runs in other threads meanwhile).
        with _threads.single_threaded_blas():
            return self._forward(coefs, intercepts, X, out, rows, n_threads, output)

    def _forward(self, coefs, intercepts, X, out, rows, n_threads, output=None):
        n_samples = X.shape[0]
        ger = _threads.blas_single_threaded()
        errstate = dict(np.geterr(), under="ignore")
        layer_sizes, activation = self.layer_sizes, self.activation
        n_outputs = layer_sizes[-1]
        # the logits straight into the result's rows, when the output works there
        in_place = output is None or (output.in_place and out.dtype == self.dtype
                                      and out.shape[1:] == (n_outputs,))

        def blocks(j):
            """Thread j's share: blocks j, j + n_threads, ..., with buffers of its own."""
            buffers = _kernel.Buffers(layer_sizes, rows, self.dtype, gradient=False)
            with np.errstate(**errstate):
                for start in range(j * rows, n_samples, n_threads * rows):
                    stop = min(start + rows, n_samples)
                    result = out[start:stop]
                    Z = (result if in_place else  # row-major, as the result
                         buffers.scratch("logits", stop - start, n_outputs, self.dtype,
                                         order="C"))
                    _kernel.forward_block(coefs, intercepts, X[start:stop], Z, buffers,
                                          activation, ger)
                    if output is not None:
                        output.write(Z, result, buffers)

        if n_threads == 1:
            blocks(0)
        else:
            with ThreadPoolExecutor(max_workers=n_threads - 1,
                                    thread_name_prefix="sklearn_bp") as pool:
                _threads.in_threads(blocks, n_threads, lambda: pool)
        return out


class BlockOutput:
    """What a forward pass (:meth:`NetworkLoss.forward`) keeps of each block's logits.

    The result has shape ``(n_samples, *columns)`` and dtype `dtype`; ``write(Z, out,
    buffers)`` writes one block's rows ``out`` of it from the block's logits ``Z``
    (row-major, in the computation dtype; scratch that it may overwrite), with the
    thread's :class:`~sklearn_bp._kernel.Buffers` for scratch of its own. With
    `in_place`, and a result of the logits' dtype and shape, the logits are computed in
    the result's rows and ``write(out, out, buffers)`` transforms them there.
    """

    def __init__(self, write, columns=(), dtype=np.float64, in_place=False):
        self.write, self.columns = write, tuple(columns)
        self.dtype, self.in_place = np.dtype(dtype), in_place


def weight_sum(X, sample_weight):
    """``S = sum_i s_i``, or the number of rows without weights (C1)."""
    if sample_weight is None:
        return float(np.shape(X)[0])
    return float(np.sum(sample_weight, dtype=np.float64))


class Objective:
    """``theta -> (cost, grad)`` for ``scipy.optimize.minimize(jac=True)``.

    Subclasses say where the rows are: they implement :meth:`partial_sums` and set
    ``loss`` (the :class:`NetworkLoss`) and ``weight_sum`` (``S``). Use the objective as
    a context manager around the minimisation: it holds BLAS at one thread meanwhile
    (see :mod:`sklearn_bp._threads`) and releases what it holds at the end.
    """

    loss = None
    weight_sum = None

    def partial_sums(self, theta):
        """A list of :class:`~sklearn_bp.backprop.PartialSums` at `theta`, of disjoint
        sets of rows that make up all of them, in a fixed order."""
        raise NotImplementedError

    def __call__(self, theta):
        return self.loss.combine(self.partial_sums(theta), theta, self.weight_sum)

    def __enter__(self):
        self._blas = _threads.single_threaded_blas()
        self._blas.__enter__()
        return self

    def __exit__(self, *exc_info):
        blas, self._blas = self._blas, None
        blas.__exit__(*exc_info)
        self.close()

    def close(self):
        """Release what the evaluations hold (threads, buffers); nothing by default."""


class RowObjective(Objective):
    """:class:`Objective` on rows held in this process (:meth:`NetworkLoss.objective`).

    Its partial sums are as many as the machine's cores and the data pay for, whatever
    the BLAS limits, so that every thread setting gives the same bits; its threads are
    one per partial sum, within the caller's BLAS budget when it is made (before the
    minimisation holds BLAS at one thread). Buffers and threads are made at the first
    evaluation and reused by the others.
    """

    def __init__(self, loss, X, Y, sample_weight=None):
        self.loss = loss
        self.weight_sum = weight_sum(X, sample_weight)  # of the weights as given
        X, Y, sample_weight = loss.prepare(X, Y, sample_weight)
        n_sums = _threads.useful_threads(X, loss.layer_sizes)
        n_threads = _threads.default_n_threads(X, loss.layer_sizes)
        self.rows, self.n_sums, self.n_threads = loss.plan(X, n_sums=n_sums,
                                                           n_threads=n_threads)
        if self.rows >= X.shape[0] and not sp.issparse(X):
            # One block: a column-major copy (of at most one block's input) makes the
            # first layer's product faster.
            X = np.asfortranarray(X)
        self.X, self.sample_weight = X, sample_weight
        self.targets = Y  # as given: the kernel reads them block by block
        self.workspace = None

    def partial_sums(self, theta):
        if self.workspace is None:
            self.workspace = Workspace(self.loss.layer_sizes, self.rows, self.loss.dtype,
                                       n_threads=self.n_threads, n_sums=self.n_sums)
        return [self.loss._blocked_sums(theta, self.X, self.targets, self.sample_weight,
                                        self.workspace, self.rows, self.n_sums,
                                        self.n_threads)]

    def close(self):
        if self.workspace is not None:
            self.workspace.close()


# ----------------------------------------------------------------------------------------
# The fast evaluation in sklearn_bp.backprop's public interface, one call each
# ----------------------------------------------------------------------------------------
# Documented and exported by sklearn_bp.backprop, which imports them last (this module
# builds on it): the partial sums and their combination, cost_and_gradient and forward.


class PartialSums(NamedTuple):
    """The data terms of (C1), (G1), (G2) over a set of rows, before division by ``S``
    and without the penalty. Partial sums over disjoint sets of rows add up."""

    #: ``sum_i s_i c_i``, accumulated in float64.
    loss: float
    #: ``A_l^T (s * D_{l+1})`` and ``sum_i s_i D_{l+1,i}``, in the layout of theta.
    gradient: np.ndarray


def combine_partial_sums(parts, theta, layer_sizes, *, alpha=0.0, weight_sum):
    """The cost (C1) and gradient (G1), (G2) from the partial sums of all rows.

    Adds `parts` in their order, adds the penalty and divides by ``S``.

    Parameters
    ----------
    parts : sequence of PartialSums
        From :func:`~sklearn_bp.backprop.partial_sums` over disjoint sets of rows that
        make up the data; not modified.
    theta, layer_sizes, alpha
        As in :func:`~sklearn_bp.backprop.cost_and_gradient`: the weights the sums were
        computed at.
    weight_sum : float
        ``S = sum_i s_i`` over all rows (``n_samples`` without weights).

    Returns
    -------
    cost : float
        ``J(theta)``.
    grad : ndarray of shape (n_params,)
        ``dJ/dtheta``, a new array in the dtype of the sums.
    """
    loss_sum, grad = 0.0, None
    for part in parts:
        loss_sum += part.loss
        if grad is None:
            grad = np.array(part.gradient)  # a copy, to normalise in place
        else:
            grad += part.gradient
    theta = np.asarray(theta).astype(grad.dtype, copy=False)
    weights = backprop.flat_weights(theta, layer_sizes)
    penalty = float(np.dot(weights, weights))  # sum_l ||W_l||^2
    if alpha:
        backprop.flat_weights(grad, layer_sizes)[...] += alpha * weights
    grad /= weight_sum
    cost = (float(loss_sum) + 0.5 * alpha * penalty) / weight_sum
    return cost, grad


def partial_sums(theta, X, Y, layer_sizes, *, sample_weight=None, activation="logistic",
                 output_activation="logistic"):
    """Unnormalised sums of the cost and gradient over the rows of `X`.

    These are the data terms of (C1), (G1) and (G2) before division by ``S`` and without
    the penalty. Sums over disjoint row sets add up, so an evaluator that splits the rows
    (over machines, say) computes them where the rows are and hands them all to
    :func:`~sklearn_bp.backprop.combine_partial_sums`.

    Parameters
    ----------
    theta, X, Y, layer_sizes, sample_weight, activation, output_activation
        As in :func:`~sklearn_bp.backprop.cost_and_gradient`.

    Returns
    -------
    sums : PartialSums
        ``sums.loss``, ``sum_i s_i c_i`` (float); ``sums.gradient``, the unnormalised
        gradient sums in the layout of `theta` and the computation dtype.

    Examples
    --------
    Two halves of the rows give the cost and gradient of the whole:

    >>> import numpy as np
    >>> from sklearn_bp.backprop import (combine_partial_sums, cost_and_gradient,
    ...                                  n_params, partial_sums)
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.normal(size=(6, 2)), np.eye(2)[[0, 1, 1, 0, 1, 0]]
    >>> theta = rng.normal(size=n_params((2, 3, 2)))
    >>> halves = [partial_sums(theta, X[rows], Y[rows], (2, 3, 2))
    ...           for rows in (slice(0, 4), slice(4, 6))]
    >>> cost, grad = combine_partial_sums(halves, theta, (2, 3, 2), alpha=0.1,
    ...                                   weight_sum=6)
    >>> expected = cost_and_gradient(theta, X, Y, (2, 3, 2), alpha=0.1)
    >>> bool(np.isclose(cost, expected[0]) and np.allclose(grad, expected[1]))
    True
    """
    loss = _loss_for(X, layer_sizes, activation=activation,
                     output_activation=output_activation)
    return loss.partial_sums(theta, X, Y, sample_weight)


def cost_and_gradient(theta, X, Y, layer_sizes, *, alpha=0.0, sample_weight=None,
                      activation="logistic", output_activation="logistic"):
    """The regularised cost (C1) and its gradient by backpropagation (B1)-(G2).

    The numbers of :func:`~sklearn_bp.backprop.reference_cost_and_gradient`, computed
    by the fused kernel over row blocks of bounded memory, in one thread.

    Parameters
    ----------
    theta : ndarray of shape (n_params,)
        All weights and intercepts, as made by :func:`~sklearn_bp.backprop.pack`.
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
        Inputs. The computation runs in float32 if `X` is float32, else in float64.
    Y : ndarray of shape (n_samples, n_outputs)
        Targets: 0/1 indicators for logistic and softmax outputs, real numbers for
        identity outputs, non-negative ones (counts, rates) for exp outputs.
    layer_sizes : sequence of int
        ``(n_features, *hidden_layer_sizes, n_outputs)``.
    alpha : float, default=0.0
        L2 penalty on the weights (intercepts are not penalised), as in (C1).
    sample_weight : ndarray of shape (n_samples,), default=None
        Weights ``s``; ``None`` means every sample weighs 1.
    activation : {"logistic", "tanh", "relu", "identity"}, default="logistic"
        Hidden activation ``g``.
    output_activation : {"logistic", "softmax", "identity", "exp"}, default="logistic"
        Output units and their loss: independent sigmoids (C2), one softmax (C3),
        identity with half the squared error (C4), or exp with half the Poisson
        deviance (C5).

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
    loss = _loss_for(X, layer_sizes, activation=activation,
                     output_activation=output_activation, alpha=alpha)
    return loss.loss_gradient(theta, X, Y, sample_weight)


def forward(coefs, intercepts, X, *, activation="logistic"):
    """Output logits ``Z_L`` by (F1)-(F2), computed in row blocks of bounded memory.

    Parameters
    ----------
    coefs, intercepts : list of ndarray
        As returned by :func:`~sklearn_bp.backprop.unpack`.
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
        Inputs. The computation runs in float32 if `X` is float32, else in float64.
    activation : {"logistic", "tanh", "relu", "identity"}, default="logistic"
        Hidden activation ``g``.

    Returns
    -------
    Z : ndarray of shape (n_samples, n_outputs)
        Logits of the output layer, before the output activation (F3).
    """
    layer_sizes = (np.shape(X)[1], *(np.shape(W)[1] for W in coefs))
    loss = _loss_for(X, layer_sizes, activation=activation)
    return loss.forward(coefs, intercepts, X, n_threads=1)


def _loss_for(X, layer_sizes, **options):
    """The loss object of the public functions: in `X`'s working dtype."""
    return NetworkLoss(layer_sizes, dtype=_kernel.work_dtype(X), **options)
