r"""Backpropagation for a multilayer perceptron: the equations, as functions on arrays.

The equations are stated once, below, in the code's orientation (rows are samples), and
every function cites the lines it computes. :func:`reference_cost_and_gradient` runs them
plainly, line by line, over the whole batch; :func:`cost_and_gradient` computes the same
numbers fast, by the fused kernel of :mod:`sklearn_bp._kernel` over row blocks (the
kernel's test oracle is the reference). Nothing here keeps state or knows about
scikit-learn; the estimators reach these equations through the loss object of
:mod:`sklearn_bp._loss`.

Notation
--------
``layer_sizes = (h_0, h_1, ..., h_L)`` with ``h_0 = n_features`` and ``h_L = n_outputs``.
``coefs[l]`` (``W_l``) has shape ``(h_l, h_{l+1})`` and ``intercepts[l]`` (``b_l``) has
shape ``(h_{l+1},)``, for ``l = 0, ..., L-1``. ``A_0 = X`` has shape ``(n, h_0)``, ``Y``
is the ``(n, h_L)`` matrix of targets (0/1 indicators for classification), ``s`` the
sample weights and ``S = sum_i s_i`` (``S = n`` without weights). ``Z_l`` and ``A_l``
(``n x h_l``) are layer ``l``'s pre-activations and activations; only the output's,
``Z_L``, are logits. ``g`` is the hidden activation, ``*`` the elementwise product.

Forward pass::

    (F1)  Z_{l+1} = A_l @ W_l + b_l                       affine map of layer l
    (F2)  A_{l+1} = g(Z_{l+1})                  for l+1 < L (hidden layers)
    (F3)  A_L = sigma(Z_L), softmax(Z_L), Z_L or e^{Z_L}   output layer

Cost, the weighted mean loss of the output layer, summed over its units, plus an L2
penalty on the weights only; each output layer with its canonical loss::

    (C1)  J = (1/S) sum_i s_i c_i + alpha / (2 S) * sum_l ||W_l||_F^2
    (C2)  c_i = sum_k  y_ik log(1 + e^{-z_ik}) + (1 - y_ik) log(1 + e^{z_ik})   (logistic)
    (C3)  c_i = log sum_k e^{z_ik} - sum_k y_ik z_ik                            (softmax)
    (C4)  c_i = sum_k (z_ik - y_ik)^2 / 2                                       (identity)
    (C5)  c_i = sum_k e^{z_ik} - y_ik z_ik + y_ik log y_ik - y_ik               (exp)

Here (C4) is half the squared error, (C5) half the Poisson deviance (``0 log 0 = 0``).

Backward pass (backpropagation), the chain rule applied from the output back; row ``i``
of the delta ``D_l`` is the derivative of ``c_i`` by row ``i`` of ``Z_l`` (unweighted)::

    (B1)  D_L = A_L - Y                                    output delta
    (B2)  D_l = (D_{l+1} @ W_l^T) * g'(Z_l)      for 0 < l < L (hidden deltas)
    (G1)  dJ/dW_l = (A_l^T @ (s * D_{l+1}) + alpha W_l) / S
    (G2)  dJ/db_l = sum_i s_i D_{l+1,i} / S

The logistic function and its derivative::

    (S1)  sigma(z) = 1 / (1 + e^{-z})
    (S2)  sigma'(z) = sigma(z) sigma(-z) = 1 / (2 (1 + cosh z))

From the classic note to this code
----------------------------------
The note writes one sample as a column and numbers the layers ``1, ..., k`` with the input
as layer 1; here a sample is a row and the input is ``A_0``. So the note's
``Theta^(l)``, of shape ``(h_l, 1 + h_{l-1})`` in our sizes, is ``[b_{l-1} | W_{l-1}^T]``:
its column 0 is the intercept (:func:`check_gradient` builds the note's debug network
this way), and its ``z^(l+1)``, ``a^(l)``, ``delta^(l)`` are the transposed rows of our
``Z_l``, ``A_{l-1}``, ``D_{l-1}``. The note maximises the log-likelihood, the negative of
our ``J``, so its delta is ``y - a = -D``. Its ``sigma'`` in the cosh form of (S2) is the
same function as the kernel's ``sigma(|z|) sigma(-|z|)``, which needs one exponential
that cannot overflow. The user guide has the whole dictionary.

How the numbers are computed
----------------------------
* (S1), (S2) from one ``t = e^{-|z|}``, which cannot overflow: ``u = sigma(-|z|) =
  t / (1 + t) <= 1/2`` and ``sigma(|z|) = 1 - u``, so ``sigma'(z) = u (1 - u)`` never
  cancels as ``a (1 - a)`` does. :func:`sigmoid` and :func:`sigmoid_gradient` also
  correct the rounding of ``1 + t`` (within 1.5 and 2.8 ulp; the fit's kernel, 2.5 and
  3.6), relative errors where the exact value is a normal number; for ``|z| > 708.4``
  it is subnormal (0 from 745.1) and the results are within a few units of ``2^-1074``.
* (C2) as ``max(z, 0) - y z + log1p(e^{-|z|})`` and (C3) around the row maximum ``m``,
  as ``log1p(r) - sum_k y_k (z_k - m)`` with ``r`` the sum of ``e^{z_k - m}`` over every
  unit but one largest: nothing cancels, so saturated logits, right or wrong, keep their
  relative accuracy, with no clipping (``y = 0``, ``z = 40`` costs 40.0, the double
  nearest to the true ``40 + 4.2e-18``). (C5) from the logit, never the log of ``e^z``.
* (B1) for logistic outputs is ``(1 - y) sigma(z) - y sigma(-z)``, computed from
  ``u = sigma(-|z|)`` in two cases told apart by the sign bit of ``z``: ``(1 - y) - u``
  where it is clear (``z >= +0``), ``u - y`` where it is set (``z <= -0``). Both give
  ``1/2 - y`` at a zero of either sign, and for ``y = 1`` and ``z >= 0`` the result is
  ``-u`` exactly, where ``sigma(z) - y`` would cancel (to 0 for large ``z``). As one
  expression, ``([z >= 0] - y) - sign(z) u``, it needs the bracket and ``sign(z) =
  copysign(1, z)`` both read from the sign bit: with the usual ``sign(0) = 0`` it would
  give ``1 - y`` at ``z = 0``.
* :mod:`sklearn_bp._kernel` says how fits and predictions fuse these forms.
"""

import functools
import math

import numpy as np
import scipy.sparse as sp
from scipy.special import xlogy

from ._kernel import (
    exp_neg_abs,
    log_softmax_into,
    softmax_into,
    work_dtype,
)

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
    "reference_cost_and_gradient",
    "cost_and_gradient",
    "forward",
    "PartialSums",
    "partial_sums",
    "combine_partial_sums",
    "check_gradient",
]

ACTIVATIONS = ("logistic", "tanh", "relu", "identity")
OUTPUT_ACTIVATIONS = ("logistic", "softmax", "identity", "exp")


# ----------------------------------------------------------------------------------------
# The activations and their derivatives
# ----------------------------------------------------------------------------------------


def _split_one_plus_t(z):
    """For (S1), (S2): ``t = e^{-|z|}`` and ``1 + t = d + e`` exactly, in float64.

    ``d = fl(1 + t)`` and ``e = t - (d - 1)`` is its rounding error (exact, since
    ``0 <= t <= 1``). Dividing by ``d`` and then correcting by ``-e/d`` removes the one
    rounding that would otherwise cost up to an ulp in ``sigma`` and two in ``sigma'``.
    """
    x = np.asarray(z, dtype=np.float64)
    t = exp_neg_abs(x, np.empty_like(x))
    d = np.add(t, 1.0, out=np.empty_like(x))
    e = np.subtract(d, 1.0, out=np.empty_like(x))
    np.subtract(t, e, out=e)
    return x, t, d, e


def sigmoid(z):
    """The logistic function ``sigma(z) = 1 / (1 + e^{-z})`` (S1), within 4 ulp.

    Parameters
    ----------
    z : array-like
        Logits. float32 gives float32 (evaluated in float64, rounded once), else float64.

    Returns
    -------
    a : ndarray of the same shape as `z`
        ``sigma(z)``; no floating-point error for any finite ``z`` or ``+-inf``, even
        under ``np.errstate(all="raise")``.

    Examples
    --------
    >>> from sklearn_bp.backprop import sigmoid
    >>> sigmoid([0.0, -800.0, 800.0]).tolist()
    [0.5, 0.0, 1.0]
    >>> float(sigmoid(-40.0))
    4.248354255291589e-18
    """
    z = np.asarray(z)
    dtype = work_dtype(z)
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
    :func:`reference_cost_and_gradient` uses it for (B2); the fit's kernel computes the
    same function in a fused form.

    Parameters
    ----------
    z : array-like
        Logits, not activations; float32 gives float32, as :func:`sigmoid`.

    Returns
    -------
    g : ndarray of the same shape as `z`
        ``sigma'(z)``; no floating-point error for any finite ``z`` or ``+-inf``.

    Examples
    --------
    >>> from sklearn_bp.backprop import sigmoid_gradient
    >>> float(sigmoid_gradient(0.0))
    0.25
    >>> float(sigmoid_gradient(40.0))
    4.248354255291589e-18
    """
    z = np.asarray(z)
    dtype = work_dtype(z)
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
    of the logistic cost (C2). The same function as ``scipy.special.log_expit``, in
    numpy's vectorised exponential (1.5x to 5x as fast, see benchmarks/levers.rst).

    Parameters
    ----------
    z : array-like
        Logits; float32 is computed in float32, anything else in float64.

    Returns
    -------
    log_a : ndarray of the same shape as `z`
        ``min(z, 0) - log1p(e^{-|z|})``, finite for every finite `z`.

    Examples
    --------
    >>> from sklearn_bp.backprop import log_sigmoid
    >>> log_sigmoid([0.0, -1000.0]).tolist()
    [-0.6931471805599453, -1000.0]
    """
    z = np.asarray(z)
    z = z.astype(work_dtype(z), copy=False)
    t = exp_neg_abs(z, np.empty_like(z))
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
    return log_softmax_into(z, np.empty(z.shape, work_dtype(z)))


def softmax(z):
    """Row-wise ``e^{z_k} / sum_j e^{z_j}`` (F3), without overflow.

    The same function as ``scipy.special.softmax(z, axis=1)``, computed unit by unit
    for few columns (faster for a network's usual outputs) and row by row for many (see
    benchmarks/levers.rst).

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
    return softmax_into(z, np.empty(z.shape, work_dtype(z)))


# g and g' for (F2), (B2), by activation, as the reference implementation uses them
_HIDDEN = {
    "logistic": (sigmoid, sigmoid_gradient),
    "tanh": (np.tanh, lambda z: 1.0 - np.tanh(z) ** 2),
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(float)),
    "identity": (lambda z: z, np.ones_like),
}


def check_activations(activation, output_activation):
    """Refuse unknown activations, naming the ones there are."""
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"activation={activation!r} is not supported; use one of {ACTIVATIONS}."
        )
    if output_activation not in OUTPUT_ACTIVATIONS:
        raise ValueError(
            f"output_activation={output_activation!r} is not supported; use one of "
            f"{OUTPUT_ACTIVATIONS}."
        )


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


def flat_weights(theta, layer_sizes):
    """Every ``coefs[l]`` at once, flattened: one view of ``theta``, whose weights come
    before all intercepts (see :func:`pack`)."""
    n_layers, parts, _ = _layout(layer_sizes)
    return theta[:parts[n_layers - 1][1] if n_layers else 0]


# ----------------------------------------------------------------------------------------
# The cost and its gradient
# ----------------------------------------------------------------------------------------


def reference_cost_and_gradient(theta, X, Y, layer_sizes, *, alpha=0.0, sample_weight=None,
                                activation="logistic", output_activation="logistic"):
    """(C1) and its gradient by (B1)-(G2), computed plainly, one line per equation.

    The forward pass (F1)-(F3), the cost (C2) to (C5), the deltas (B1), (B2) and the
    gradient (G1), (G2) are each a line of code, over the whole batch at once, in
    float64: the equations as they read, for reading and for testing (it is the kernel's
    test oracle). :func:`cost_and_gradient` gives the same numbers to rounding, faster
    and in bounded memory.

    Parameters
    ----------
    theta, X, Y, layer_sizes, alpha, sample_weight, activation, output_activation
        As in :func:`cost_and_gradient`.

    Returns
    -------
    cost : float
        ``J(theta)`` (C1) with (C2), (C3), (C4) or (C5).
    grad : ndarray of shape (n_params,)
        ``dJ/dtheta`` in the layout of `theta`.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_bp.backprop import (cost_and_gradient, n_params,
    ...                                  reference_cost_and_gradient)
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.normal(size=(6, 2)), np.eye(2)[[0, 1, 1, 0, 1, 0]]
    >>> theta = rng.normal(size=n_params((2, 3, 2)))
    >>> plain = reference_cost_and_gradient(theta, X, Y, (2, 3, 2), alpha=0.1)
    >>> fast = cost_and_gradient(theta, X, Y, (2, 3, 2), alpha=0.1)
    >>> bool(np.isclose(plain[0], fast[0]) and np.allclose(plain[1], fast[1]))
    True
    """
    check_activations(activation, output_activation)
    coefs, intercepts = unpack(np.asarray(theta, dtype=np.float64), layer_sizes)
    X = X.toarray() if sp.issparse(X) else np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    s = np.ones(X.shape[0]) if sample_weight is None else np.asarray(sample_weight, float)
    S = s.sum()
    g, g_prime = _HIDDEN[activation]
    L = len(coefs)

    A, Z = [X], [None]  # A[l] = A_l and Z[l] = Z_l; A_0 = X has no Z
    for l in range(L):
        Z.append(A[l] @ coefs[l] + intercepts[l])  # (F1)
        if l + 1 < L:
            A.append(g(Z[l + 1]))  # (F2)
    if output_activation == "logistic":
        A.append(sigmoid(Z[L]))  # (F3)
        c = -(Y * log_sigmoid(Z[L]) + (1 - Y) * log_sigmoid(-Z[L])).sum(axis=1)  # (C2)
    elif output_activation == "softmax":
        A.append(softmax(Z[L]))  # (F3)
        c = -(Y * log_softmax(Z[L])).sum(axis=1)  # (C3), with sum_k y_ik = 1
    elif output_activation == "identity":
        A.append(Z[L])  # (F3)
        c = ((Z[L] - Y) ** 2 / 2).sum(axis=1)  # (C4)
    else:
        A.append(np.exp(Z[L]))  # (F3)
        c = (A[L] - Y * Z[L] + xlogy(Y, Y) - Y).sum(axis=1)  # (C5)
    J = (s @ c + alpha / 2 * sum((W**2).sum() for W in coefs)) / S  # (C1)

    D = A[L] - Y  # (B1): D = D_{l+1} in the loop below
    dW, db = [None] * L, [None] * L
    for l in reversed(range(L)):
        dW[l] = (A[l].T @ (s[:, None] * D) + alpha * coefs[l]) / S  # (G1)
        db[l] = (s @ D) / S  # (G2)
        if l > 0:
            D = (D @ coefs[l].T) * g_prime(Z[l])  # (B2)
    return float(J), pack(dW, db)


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
    labels ``1 + (1..m mod 3)``), with the note's ``Theta^(l) = [b | W^T]`` mapped to
    ``coefs`` and ``intercepts``. Use it after changing the maths: a correct gradient
    gives a relative difference around 1e-10 (the differences estimate each derivative
    to about that).

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


# The fast evaluation of these equations (the fused kernel over row blocks, by the loss
# object of sklearn_bp._loss), public here: imported last, as that module builds on this.
from ._loss import (  # noqa: E402
    PartialSums,
    combine_partial_sums,
    cost_and_gradient,
    forward,
    partial_sums,
)
