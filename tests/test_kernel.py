"""The fused kernel of sklearn_bp._kernel: its forms, block sizes and buffers.

The kernel is an implementation of the equations for speed; its oracle is the plain
reference implementation, :func:`sklearn_bp.backprop.reference_cost_and_gradient`, and
for the activations 50-digit ``mpmath`` values. Nothing here is timed (timings live in
``benchmarks/run.py``).
"""

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
from threadpoolctl import threadpool_info, threadpool_limits

from _ulp import MAX_ULP, _assert_within_ulp, grid32, grid64  # noqa: F401 (fixtures)
from sklearn_bp import _kernel, _targets, _threads, backprop
from sklearn_bp._loss import NetworkLoss

RTOL = 1e-12


def problem(n=61, layer_sizes=(5, 7, 4, 3), output_activation="logistic", seed=0,
            weighted=False, dtype=np.float64):
    """``(theta, X, Y, sample_weight)``: random weights large enough to saturate units."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, layer_sizes[0])).astype(dtype)
    if output_activation == "softmax":
        Y = np.eye(layer_sizes[-1])[rng.integers(0, layer_sizes[-1], n)]
    else:
        Y = (rng.random((n, layer_sizes[-1])) < 0.4).astype(float)
    theta = rng.uniform(-1.5, 1.5, backprop.n_params(layer_sizes))
    sample_weight = rng.uniform(0.1, 3.0, n) if weighted else None
    return theta, X, Y.astype(dtype), sample_weight


# ----------------------------------------------------------------------------------------
# The kernel computes the reference implementation's numbers.
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("activation", backprop.ACTIVATIONS)
@pytest.mark.parametrize("output_activation", backprop.OUTPUT_ACTIVATIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_block_size_and_threads_do_not_change_the_result(activation, output_activation,
                                                         weighted):
    layer_sizes = (5, 7, 4, 3)
    theta, X, Y, s = problem(61, layer_sizes, output_activation, weighted=weighted)
    loss = NetworkLoss(layer_sizes, activation=activation,
                       output_activation=output_activation, alpha=0.3)
    cost, grad = loss.loss_gradient(theta, X, Y, s, block_size=61, n_threads=1)
    ref_cost, ref_grad = backprop.reference_cost_and_gradient(
        theta, X, Y, layer_sizes, alpha=0.3, sample_weight=s, activation=activation,
        output_activation=output_activation)
    np.testing.assert_allclose(cost, ref_cost, rtol=1e-10)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-9, atol=1e-12)
    for block_size in (1, 7, 30, 61, None):
        for n_threads in (1, 2, 3):
            c, g = loss.loss_gradient(theta, X, Y, s, block_size=block_size,
                                      n_threads=n_threads)
            np.testing.assert_allclose(c, cost, rtol=RTOL, err_msg=f"{block_size=}")
            np.testing.assert_allclose(g, grad, rtol=RTOL, atol=RTOL * np.abs(grad).max(),
                                       err_msg=f"{block_size=}, {n_threads=}")


@pytest.mark.parametrize("n_outputs", [3, 60])
@pytest.mark.parametrize("tops", ["all", "first two", "last two"])
@pytest.mark.parametrize("targets", ["C", "F", "labels"])
def test_softmax_ties_with_the_targets_in_every_form(n_outputs, tops, targets):
    """Logits tied for the top (exactly, by zero output weights) count once in the
    softmax's sum, whether the top is left out of the sum by a 0 or by a mask (60
    units), with the targets as ``Y`` in either memory layout or as labels (a row's label
    on a top or not)."""
    layer_sizes = (5, 7, n_outputs)
    theta, X, Y, s = problem(23, layer_sizes, "softmax", weighted=True)
    coefs, intercepts = backprop.unpack(theta, layer_sizes)
    coefs[-1][...] = 0.0
    intercepts[-1][...] = 0.0 if tops == "all" else -2.0
    if tops != "all":
        intercepts[-1][slice(0, 2) if tops == "first two" else slice(-2, None)] = 1.0
    T = np.argmax(Y, axis=1) if targets == "labels" else np.asarray(Y, order=targets)
    loss = NetworkLoss(layer_sizes, output_activation="softmax", alpha=0.3)
    cost, grad = loss.loss_gradient(theta, X, T, s, block_size=10)
    ref_cost, ref_grad = backprop.reference_cost_and_gradient(
        theta, X, Y, layer_sizes, alpha=0.3, sample_weight=s, output_activation="softmax")
    np.testing.assert_allclose(cost, ref_cost, rtol=1e-13)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("output_activation, n_outputs", [
    ("logistic", 1), ("logistic", 4), ("logistic", 60), ("softmax", 2), ("softmax", 4),
    ("softmax", 60), ("softmax", 200),
])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_labels_give_the_numbers_of_the_indicator_matrix(output_activation, n_outputs,
                                                         weighted, dtype):
    """A fit's targets, one label per row (issue 20), give the gradient of the indicator
    matrix to the bit, in every block size and thread count; the logistic cost too, and
    the softmax cost to rounding (its y (z - m) terms are added one per row). Multilabel
    rows as a bool matrix give the indicator's numbers to the bit."""
    layer_sizes = (6, 9, n_outputs)
    rng = np.random.default_rng(n_outputs)
    theta, X, _, s = problem(203, layer_sizes, weighted=weighted, dtype=dtype)
    units = rng.integers(-1 if output_activation == "logistic" else 0, n_outputs, 203)
    Y = _targets.indicator(units, n_outputs, dtype)
    cases = [(Y, units.astype(_targets._unit_dtype(n_outputs)))]
    if output_activation == "logistic" and n_outputs > 1:  # several labels a row
        multilabel = (rng.random((203, n_outputs)) < 0.3).astype(dtype)
        cases.append((multilabel, multilabel.astype(bool)))
    loss = NetworkLoss(layer_sizes, output_activation=output_activation, alpha=0.1,
                       dtype=dtype)
    theta = theta.astype(dtype)
    for (Y, T), block_size, n_threads in itertools.product(
            cases, (203, 17, None), (1, 3)):
        kwargs = dict(block_size=block_size, n_threads=n_threads)
        cost, grad = loss.loss_gradient(theta, X, Y, s, **kwargs)
        c, g = loss.loss_gradient(theta, X, T, s, **kwargs)
        np.testing.assert_array_equal(g, grad, err_msg=f"{kwargs}")
        if output_activation == "logistic":
            assert c == cost, kwargs
        else:
            np.testing.assert_allclose(c, cost, rtol=1e-15 if dtype == np.float64
                                       else 1e-6)
    ref_cost, ref_grad = backprop.reference_cost_and_gradient(
        theta.astype(np.float64), X.astype(np.float64), Y.astype(np.float64), layer_sizes,
        alpha=0.1, sample_weight=s, output_activation=output_activation)
    rtol = 1e-10 if dtype == np.float64 else 2e-4
    np.testing.assert_allclose(c, ref_cost, rtol=rtol)
    np.testing.assert_allclose(g, ref_grad, rtol=rtol, atol=rtol * np.abs(ref_grad).max())


@pytest.mark.parametrize("output_activation, n_outputs", [
    ("logistic", 1), ("logistic", 5), ("softmax", 5), ("softmax", 40)])
def test_gradient_from_labels_matches_central_differences(output_activation, n_outputs):
    layer_sizes = (3, 4, n_outputs)
    theta, X, _, s = problem(30, layer_sizes, weighted=True, seed=3)
    theta *= 0.5
    rng = np.random.default_rng(3)
    units = rng.integers(-1 if n_outputs == 1 else 0, n_outputs, 30).astype(np.int8)
    # check_gradient evaluates the loss object (cost_and_gradient) on the labels as given
    assert backprop.check_gradient(
        theta, X, units, layer_sizes, alpha=0.2, sample_weight=s,
        output_activation=output_activation, epsilon=1e-6) < 1e-8


@pytest.mark.parametrize("output_activation, units, match", [
    ("softmax", [0, 1, -1], r"\[0, 3\)"), ("logistic", [0, 3, 1], r"\[-1, 3\)"),
    ("identity", [0, 1, 2], "classes"), ("softmax", [0, 1], "per row"),
])
def test_unit_labels_out_of_range_are_refused(output_activation, units, match):
    loss = NetworkLoss((2, 3, 3), output_activation=output_activation)
    X = np.zeros((3, 2))
    with pytest.raises(ValueError, match=match):
        loss.loss_gradient(np.zeros(loss.n_params), X, np.array(units))


def test_saturated_logits_raise_no_floating_point_error_in_any_thread():
    layer_sizes = (2, 3, 2)
    X = np.array([[800.0, -800.0], [-40.0, 40.0], [0.0, 1e-300], [3.0, -2.0]] * 8)
    Y = np.tile([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]], (8, 1))
    theta = np.linspace(-3, 3, backprop.n_params(layer_sizes))
    for output_activation in backprop.OUTPUT_ACTIVATIONS:
        loss = NetworkLoss(layer_sizes, output_activation=output_activation)
        with np.errstate(all="raise"):
            cost, grad = loss.loss_gradient(theta, X, Y, n_threads=2, block_size=4)
        assert np.isfinite(cost) and np.all(np.isfinite(grad))


# ----------------------------------------------------------------------------------------
# The forms of the activations, against mpmath
# ----------------------------------------------------------------------------------------

# The fit's kernel computes sigma'(z) as u (1 - u) with u = sigma(-|z|) = t / (1 + t),
# t = e^{-|z|}, which takes the rounding of 1 + t once rather than twice as (t/d)/d did
# (4.26 ulp at worst on 7 million random points); measured worst case over 64 million
# random points against long double: 3.6 ulp (sigmoid_gradient: 2.8; a (1 - a): 1e300).


# float32 fits run the same kernel in float32, where numpy's float32 exp alone is up to
# 2.4 float32 ulp off: measured over 4 million random points, sigma within 3.4 and
# sigma' within 4.2 float32 ulp. Evaluating that exp in float64 would hold 4 ulp but cost
# 1.4 ns more per element, a third of the float32 kernel.
FLOAT32_KERNEL_MAX_ULP = 4.5


@pytest.mark.parametrize("grid, dtype, gradient_bound, min_points", [
    ("grid64", np.float64, MAX_ULP, 8000),
    ("grid32", np.float32, FLOAT32_KERNEL_MAX_ULP, 5000),
])
def test_estimator_kernel_within_a_few_ulp_of_mpmath(request, grid, dtype, gradient_bound,
                                                     min_points):
    """The fit's own hidden-layer kernel: sigma(z) within 4 ulp, sigma'(z) within 4 ulp
    in float64 (4.5 float32 ulp in float32 fits)."""
    z, sigma_reference, gradient_reference = request.getfixturevalue(grid)
    Z = z[None, :].copy()
    P, N = np.empty_like(Z), np.empty_like(Z)
    with np.errstate(under="ignore"):
        _kernel.hidden_forward(Z, P, N, "logistic")  # Z becomes A, P holds g'
    assert Z.dtype == P.dtype == dtype
    for got, reference, bound, what in ((Z[0], sigma_reference, MAX_ULP, "sigma"),
                                        (P[0], gradient_reference, gradient_bound,
                                         "sigma'")):
        _assert_within_ulp(got, reference, dtype, bound, z, min_points, f"kernel {what}")


@pytest.mark.parametrize("grid, dtype, min_points", [("grid64", np.float64, 7000),
                                                    ("grid32", np.float32, 5000)])
def test_prediction_kernel_within_4_ulp_of_mpmath(request, monkeypatch, grid, dtype,
                                                  min_points):
    """Predictions need no derivative: float64 logits below DIRECT_SIGMOID_MAX take the
    direct sigma(z) = e^z / (1 + e^z); the rest (larger logits, float32) the fit's form.
    Each within 4 ulp; the spy on the fit's exponential shows which form ran."""
    z, (hi, lo), _ = request.getfixturevalue(grid)
    calls = []
    fit_form = _kernel.exp_neg_abs

    def recording_exp_neg_abs(values, out):
        calls.append(values.size)
        return fit_form(values, out)

    monkeypatch.setattr(_kernel, "exp_neg_abs", recording_exp_neg_abs)
    below = z < _kernel.DIRECT_SIGMOID_MAX
    assert dtype == np.float32 or not below.all()  # the float64 grid reaches beyond it
    for part in (below, np.ones_like(below)):
        calls.clear()
        Z = z[part][None, :].copy()
        P, N = np.empty_like(Z), np.empty_like(Z)
        with np.errstate(under="ignore"):
            _kernel.hidden_forward(Z, P, N, "logistic", with_derivative=False)
        direct = dtype == np.float64 and below[part].all()
        assert calls == ([] if direct else [Z.size])
        normal = _assert_within_ulp(Z[0], (hi[part], lo[part]), dtype, MAX_ULP, z[part],
                                    min_points, "prediction kernel sigma")
        subnormal = np.abs(((Z[0] - hi[part]) - lo[part])[~normal])
        assert np.all(subnormal <= MAX_ULP * np.finfo(dtype).smallest_subnormal)



# ----------------------------------------------------------------------------------------
# (F1) and the intercepts
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("ger", [True, False])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape, layout", [
    ((6, 4), "F"), ((6, 4), "C"), ((1, 4), "C"), ((6, 1), "F"), ((6, 4), "strided"),
])
def test_affine_adds_the_intercepts_in_every_layout(dtype, shape, layout, ger):
    """(F1) by the kernel's affine, whose intercepts go through BLAS ger (or numpy's
    addition) for contiguous results: every layout of the result gives A @ W + b, and
    both ways of adding the intercepts give the same bits."""
    rng = np.random.default_rng(0)
    A = rng.normal(size=(shape[0], 3)).astype(dtype)
    W = rng.normal(size=(3, shape[1])).astype(dtype)
    b = rng.normal(size=shape[1]).astype(dtype)
    def empty():
        if layout == "strided":  # every other row of a larger array: neither contiguity
            return np.empty((2 * shape[0], shape[1]), dtype, order="F")[::2]
        return np.empty(shape, dtype, order=layout)

    out = empty()
    result = _kernel.affine(A, W, b, out, np.ones(shape[0], dtype), ger)
    assert result is out
    product = empty()  # the same layout: numpy 1.23 multiplies into strided arrays
    np.matmul(A, W, out=product)  # without BLAS, in another order
    np.testing.assert_array_equal(out, product + b)  # one rounding, either way
    np.testing.assert_allclose(out, A @ W + b, rtol=1e-5 if dtype == np.float32 else 1e-13)


def test_scipy_blas_only_while_blas_runs_one_thread(monkeypatch):
    """scipy's and numpy's bundled OpenBLAS keep separate thread pools: alternating
    between them while both have threads made an evaluation on digits 10x to 15x slower
    (each product waiting for the other pool's spinning threads). The kernel calls
    scipy's ``ger`` (affine) only while every BLAS library runs one thread, as in a
    fit or a forward pass (which holds BLAS at one), and numpy's addition otherwise,
    with the same result."""
    if not threadpool_info():
        pytest.skip("no BLAS library that threadpoolctl can control")
    calls = []

    def spy(ger):
        def counted(*args, **kwargs):
            calls.append(_threads.blas_single_threaded())
            return ger(*args, **kwargs)
        return counted

    monkeypatch.setattr(_kernel, "GER", {k: spy(g) for k, g in _kernel.GER.items()})
    layer_sizes = (5, 7, 4, 3)
    theta, X, Y, _ = problem(layer_sizes=layer_sizes)
    coefs, intercepts = backprop.unpack(theta, layer_sizes)
    results = {}
    for threads in (1, 2):
        calls.clear()
        with threadpool_limits(limits=threads, user_api="blas"):
            cost, grad = backprop.cost_and_gradient(theta, X, Y, layer_sizes)
            in_gradient = calls[:]
            logits = backprop.forward(coefs, intercepts, X)
        results[threads] = in_gradient, calls[len(in_gradient):], cost, grad, logits
    assert results[1][0] and not results[2][0]  # at the caller's BLAS setting
    assert all(results[1][1]) and results[2][1] == results[1][1]  # BLAS held at one
    for one, two in zip(results[1][2:], results[2][2:]):
        np.testing.assert_allclose(two, one, rtol=RTOL)


# ----------------------------------------------------------------------------------------
# Block sizes and buffers
# ----------------------------------------------------------------------------------------


def test_blocks_hold_the_same_bytes_in_float32():
    """Blocks are sized in bytes: float32 blocks have twice the rows of float64 ones."""
    for layer_sizes in ((100, 100, 10), (50, 100, 1), (16, 128, 4)):
        rows64 = _kernel.block_rows(layer_sizes, 10**6)
        rows32 = _kernel.block_rows(layer_sizes, 10**6, dtype=np.float32)
        assert rows32 == 2 * rows64
        assert rows64 * max(layer_sizes[1:]) * 8 <= 2**19


def test_blocks_have_rows_enough_for_the_widest_product():
    """Each block repacks every weight matrix and adds a (units x inputs) gradient term,
    so blocks hold at least twice as many rows as the widest dense product has inputs,
    in either dtype: 784 inputs get 1568 rows, not the 256 that 256 units' bytes allow.
    Sparse X's first product is not a dense one, and the input stays within 16 MiB."""
    for dtype in (np.float64, np.float32):
        assert _kernel.block_rows((784, 256, 10), 10**6, dtype=dtype) == 2 * 784
        assert _kernel.block_rows((20, 300, 400, 2), 10**6, dtype=dtype) == 2 * 400
    assert _kernel.block_rows((5000, 50, 3), 10**6) == 2**24 // (5000 * 8)
    assert _kernel.block_rows((5000, 50, 3), 10**6, row_bytes=600.0) == 2**16 // 50
    assert _kernel.block_rows((784, 256, 10), 20000) == 1568


@pytest.mark.parametrize("layer_sizes, n_samples, n_sums", [
    ((784, 256, 10), 20000, 2),  # the rule's 1568 rows make 13 blocks: 7 and 6
    ((100, 100, 10), 100000, 2),
    ((50, 100, 1), 10**6, 3),
    ((64, 25, 10), 1797, 2),
    ((5, 7, 3), 101, 4),
])
def test_blocks_are_dealt_evenly_to_partial_sums(layer_sizes, n_samples, n_sums):
    """With several partial sums (one per thread), block b going to sum b % n_sums,
    each gets the same rows to within 1%, in blocks no larger than one sum's. (The
    rule's 1568-row blocks gave one of two threads 13% more rows than the other.)"""
    rows = _kernel.block_rows(layer_sizes, n_samples, n_sums=n_sums)
    assert rows <= _kernel.block_rows(layer_sizes, n_samples)
    sizes = np.diff(np.r_[0:n_samples:rows, n_samples])
    per_sum = [sizes[k::n_sums].sum() for k in range(n_sums)]
    assert sum(per_sum) == n_samples
    assert max(per_sum) - min(per_sum) <= max(n_sums, n_samples // 100)


def test_block_rows_of_no_samples_is_one():
    """No samples give one row at any number of partial sums (the even dealing divided
    by zero blocks per sum)."""
    for n_sums in (1, 2, 3):
        assert _kernel.block_rows((4, 3, 2), 0, n_sums=n_sums) == 1


def test_sparse_rows_are_counted_by_their_nonzeros():
    """A sparse block's input holds only its nonzeros, so sparse data get the blocks
    that the hidden layers allow (the dense rows' 8 MiB bound would give 209 rows here,
    half the speed)."""
    layer_sizes = (5000, 50, 3)
    X = sp.random(3000, 5000, density=0.01, format="csr",
                  random_state=np.random.default_rng(0))
    assert _kernel.row_bytes(X) == 600.0  # 50 values and column indices per row
    assert _kernel.row_bytes(X.toarray()) is None
    rows = _kernel.block_rows(layer_sizes, 3000, row_bytes=_kernel.row_bytes(X))
    assert rows == 2**16 // 50 > _kernel.block_rows(layer_sizes, 3000)


@pytest.mark.parametrize("activation", backprop.ACTIVATIONS)
@pytest.mark.parametrize("with_derivative", [True, False])
def test_wide_blocks_are_activated_in_column_chunks_with_the_same_bits(
        monkeypatch, activation, with_derivative):
    """A block whose hidden buffers hold more than BLOCK_BYTES (the fan-in rule makes
    them) is activated in chunks of whole columns: each chunk within the budget, every
    column once, and the same bits as one pass over the block."""
    rows, units = 24, 10
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=8.0, size=(rows, units))

    def buffers():
        Z, P, N = (_kernel.ColumnMajor(rows, units, np.float64).block(rows)
                   for _ in range(3))
        Z[...] = logits
        return Z, P, N

    Z1, P1, N1 = buffers()
    with np.errstate(under="ignore"):
        _kernel.activate(Z1, P1, N1, activation, with_derivative)
    whole = _kernel.activate
    chunks = []

    def recording_activate(Z, P, N, activation, with_derivative=True):
        assert Z.flags.f_contiguous and P.flags.f_contiguous and N.flags.f_contiguous
        chunks.append(Z.shape)
        return whole(Z, P, N, activation, with_derivative)

    monkeypatch.setattr(_kernel, "activate", recording_activate)
    monkeypatch.setattr(_kernel, "BLOCK_BYTES", 3 * rows * 8)  # three columns
    Z2, P2, N2 = buffers()
    with np.errstate(under="ignore"):
        assert _kernel.hidden_forward(Z2, P2, N2, activation, with_derivative) is Z2
    assert chunks == [(rows, 3)] * 3 + [(rows, 1)]
    np.testing.assert_array_equal(Z2, Z1)
    if with_derivative:
        np.testing.assert_array_equal(P2, P1)


def test_buffers_are_named_after_their_quantities_and_sized_by_the_block():
    layer_sizes, rows = (50, 100, 10), 300
    buffers = _kernel.Buffers(layer_sizes, rows, np.float64)
    for layer in (*buffers.pre_activations, *buffers.derivatives, *buffers.deltas,
                  buffers.top_mask, buffers.output_delta):
        assert layer.flat.shape == (rows * layer.h,)
    assert buffers.row_stats.shape == (2, rows)
    assert buffers.ones.shape == (rows,)
    # one block's gradient terms: the shapes of the gradient's parts, transposed
    assert [a.shape for terms in buffers.gradient_terms for a in terms] == [
        (100, 50), (100,), (10, 100), (10,)]
    pre_activations, derivatives, deltas, top_mask, output_delta = buffers.blocks(7)
    assert [Z.shape for Z in pre_activations] == [(7, 100), (7, 10)]
    views = (*pre_activations, *derivatives, *deltas, top_mask, output_delta)
    assert all(Z.flags.f_contiguous for Z in views)
    assert buffers.blocks(7)[0][0] is pre_activations[0]  # views made once per size
    prediction = _kernel.Buffers(layer_sizes, rows, np.float64, gradient=False)
    assert [b.h for b in prediction.pre_activations] == [100]  # the output: the caller's
    assert prediction.output_delta is None and prediction.gradient_terms is None
