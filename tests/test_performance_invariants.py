"""What the speed-ups must not change: results, determinism, dtype and memory bounds.

Nothing here is timed (timings live in ``benchmarks/run.py``). The row blocks, the reused
buffers and the threads of :mod:`sklearn_bp.backprop` are implementation choices; these
tests pin down that the cost and gradient do not depend on them beyond rounding, that
repeated evaluations and fits are bit-for-bit reproducible, that float32 stays float32,
and that the memory of an evaluation is bounded by the block size, not by ``n_samples``.
"""

import os
import tracemalloc

import numpy as np
import scipy.sparse as sp
import pytest
from scipy.special import expit, log_expit, log_softmax, softmax
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_info, threadpool_limits

from sklearn_bp import BackpropClassifier, backprop

RTOL = 1e-12
N_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _problem(n=61, layer_sizes=(5, 7, 4, 3), output_activation="logistic", seed=0,
             weighted=False, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, layer_sizes[0])).astype(dtype)
    if output_activation == "softmax":
        Y = np.eye(layer_sizes[-1])[rng.integers(0, layer_sizes[-1], n)]
    else:
        Y = (rng.random((n, layer_sizes[-1])) < 0.4).astype(float)
    theta = rng.uniform(-1.5, 1.5, backprop.n_params(layer_sizes))
    sample_weight = rng.uniform(0.1, 3.0, n) if weighted else None
    return theta, X, Y.astype(dtype), sample_weight


def _reference(theta, X, Y, layer_sizes, alpha, sample_weight, activation, output_activation):
    """Full batch, straight from the equations (F1)-(G2), with scipy's special functions:
    an independent check of the blocked kernels."""
    coefs, intercepts = backprop.unpack(theta, layer_sizes)
    g = {"logistic": expit, "tanh": np.tanh, "relu": lambda z: np.maximum(z, 0)}[activation]
    dg = {"logistic": lambda z: expit(z) * expit(-z),
          "tanh": lambda z: 1 / np.cosh(z) ** 2,
          "relu": lambda z: (z > 0).astype(float)}[activation]
    s = np.ones(X.shape[0]) if sample_weight is None else sample_weight
    S = s.sum()
    A, Zs = [X], []
    for l, (W, b) in enumerate(zip(coefs, intercepts)):
        Zs.append(A[-1] @ W + b)
        if l + 1 < len(coefs):
            A.append(g(Zs[-1]))
    Z = Zs[-1]
    if output_activation == "logistic":
        c = -(Y * log_expit(Z) + (1 - Y) * log_expit(-Z)).sum(axis=1)
        D = expit(Z) - Y
    else:
        c = -(Y * log_softmax(Z, axis=1)).sum(axis=1)
        D = softmax(Z, axis=1) - Y
    cost = (s @ c + 0.5 * alpha * sum((W**2).sum() for W in coefs)) / S
    D = D * s[:, None]
    grads_W, grads_b = [None] * len(coefs), [None] * len(coefs)
    for l in range(len(coefs) - 1, -1, -1):
        grads_W[l] = (A[l].T @ D + alpha * coefs[l]) / S
        grads_b[l] = D.sum(axis=0) / S
        if l:
            D = (D @ coefs[l].T) * dg(Zs[l - 1])
    return cost, backprop.pack(grads_W, grads_b)


@pytest.mark.parametrize("activation", backprop.ACTIVATIONS)
@pytest.mark.parametrize("output_activation", backprop.OUTPUT_ACTIVATIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_block_size_and_threads_do_not_change_the_result(activation, output_activation,
                                                         weighted):
    layer_sizes = (5, 7, 4, 3)
    theta, X, Y, s = _problem(61, layer_sizes, output_activation, weighted=weighted)
    kwargs = dict(alpha=0.3, sample_weight=s, activation=activation,
                  output_activation=output_activation)
    cost, grad = backprop.cost_and_gradient(theta, X, Y, layer_sizes, block_size=61,
                                            n_threads=1, **kwargs)
    ref_cost, ref_grad = _reference(theta, X, Y, layer_sizes, 0.3, s, activation,
                                    output_activation)
    np.testing.assert_allclose(cost, ref_cost, rtol=1e-10)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-9, atol=1e-12)
    for block_size in (1, 7, 30, 61, None):
        for n_threads in (1, 2, 3):
            c, g = backprop.cost_and_gradient(theta, X, Y, layer_sizes,
                                              block_size=block_size, n_threads=n_threads,
                                              **kwargs)
            np.testing.assert_allclose(c, cost, rtol=RTOL, err_msg=f"{block_size=}")
            np.testing.assert_allclose(g, grad, rtol=RTOL, atol=RTOL * np.abs(grad).max(),
                                       err_msg=f"{block_size=}, {n_threads=}")


@pytest.mark.parametrize("output_intercepts", [(0.0, 0.0, 0.0), (1.0, 1.0, -2.0),
                                               (-2.0, 1.0, 1.0)])
@pytest.mark.parametrize("order", ["C", "F"])
def test_softmax_ties_and_either_layout_of_Y(output_intercepts, order):
    """Logits tied for the top (exactly, by zero output weights) count once in the
    softmax's sum, and ``Y`` in either memory layout gives the same result."""
    layer_sizes = (5, 7, 3)
    theta, X, Y, s = _problem(23, layer_sizes, "softmax", weighted=True)
    coefs, intercepts = backprop.unpack(theta, layer_sizes)
    coefs[-1][...] = 0.0
    intercepts[-1][...] = output_intercepts
    kwargs = dict(alpha=0.3, sample_weight=s, output_activation="softmax")
    cost, grad = backprop.cost_and_gradient(theta, X, np.asarray(Y, order=order),
                                            layer_sizes, block_size=10, **kwargs)
    ref_cost, ref_grad = _reference(theta, X, Y, layer_sizes, 0.3, s, "logistic",
                                    "softmax")
    np.testing.assert_allclose(cost, ref_cost, rtol=1e-13)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(backprop.log_softmax(np.tile(output_intercepts, (2, 1))),
                               log_softmax(np.tile(output_intercepts, (2, 1)), axis=1),
                               rtol=1e-15)


def test_partial_sums_add_up_over_threads_and_blocks():
    layer_sizes = (5, 7, 3)
    theta, X, Y, s = _problem(40, layer_sizes, weighted=True)
    whole = backprop.partial_sums(theta, X, Y, layer_sizes, sample_weight=s,
                                  block_size=40)
    parts = [backprop.partial_sums(theta, X[i:i + 9], Y[i:i + 9], layer_sizes,
                                   sample_weight=s[i:i + 9], n_threads=2, block_size=2)
             for i in range(0, 40, 9)]
    np.testing.assert_allclose(sum(p[0] for p in parts), whole[0], rtol=RTOL)
    np.testing.assert_allclose(sum(p[1] for p in parts), whole[1], rtol=RTOL,
                               atol=RTOL * np.abs(whole[1]).max())


@pytest.mark.parametrize("output_activation", backprop.OUTPUT_ACTIVATIONS)
@pytest.mark.parametrize("n_sums", [2, 3])
def test_the_number_of_threads_does_not_change_a_bit(n_sums, output_activation):
    """With the partial sums fixed, any number of threads (fewer than the sums, as
    many, or more) gives the same bits: each partial sum is accumulated in block order
    by one thread, and the sums are added in a fixed order."""
    layer_sizes = (6, 9, 4)
    theta, X, Y, s = _problem(500, layer_sizes, output_activation, weighted=True)
    kwargs = dict(alpha=0.1, sample_weight=s, output_activation=output_activation,
                  block_size=37, n_sums=n_sums)
    cost, grad = backprop.cost_and_gradient(theta, X, Y, layer_sizes, n_threads=1,
                                            **kwargs)
    for n_threads in (2, 3, 4):
        c, g = backprop.cost_and_gradient(theta, X, Y, layer_sizes, n_threads=n_threads,
                                          **kwargs)
        assert c == cost, n_threads
        np.testing.assert_array_equal(g, grad, err_msg=f"{n_threads=}")
    # n_sums=None means one partial sum per thread, as before the option existed
    c, g = backprop.cost_and_gradient(theta, X, Y, layer_sizes, n_threads=n_sums,
                                      **{**kwargs, "n_sums": None})
    assert c == cost
    np.testing.assert_array_equal(g, grad)
    # and a different number of sums changes the rounding only
    c, g = backprop.cost_and_gradient(theta, X, Y, layer_sizes, n_threads=1,
                                      **{**kwargs, "n_sums": 1})
    np.testing.assert_allclose(c, cost, rtol=RTOL)
    np.testing.assert_allclose(g, grad, rtol=RTOL, atol=RTOL * np.abs(grad).max())


def test_partial_sums_set_the_threads_and_blocks_of_a_fit():
    """The estimator's partial sums follow the cores and the data, never the BLAS
    limits; its threads follow the limits too."""
    X, _ = _fit_data()
    layer_sizes = (30, 30, 3)
    n_sums = backprop._useful_threads(X, layer_sizes)
    assert n_sums == min(N_CORES, 5)  # 1.8e8 flops: 4 threads' worth and more
    with threadpool_limits(limits=1, user_api="blas"):
        assert backprop._useful_threads(X, layer_sizes) == n_sums
        assert backprop._default_n_threads(X, layer_sizes) == 1
    assert backprop._useful_threads(X[:500], layer_sizes) == 1  # too little work


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("output_activation", backprop.OUTPUT_ACTIVATIONS)
def test_reused_workspace_gives_bit_identical_results(n_threads, output_activation):
    layer_sizes = (6, 9, 4)
    theta, X, Y, _ = _problem(500, layer_sizes, output_activation)
    workspace = backprop._Workspace(layer_sizes, 37, np.float64, n_threads=n_threads)
    kwargs = dict(alpha=0.1, output_activation=output_activation, block_size=37,
                  n_threads=n_threads)
    first = backprop.cost_and_gradient(theta, X, Y, layer_sizes, workspace=workspace,
                                       **kwargs)
    # Another evaluation in between leaves other numbers in every buffer.
    backprop.cost_and_gradient(theta[::-1].copy(), X, Y, layer_sizes,
                               workspace=workspace, **kwargs)
    for repeat in range(3):
        if repeat == 2:  # the first block of each partial sum writes it: never read
            for sums in workspace.sums:
                sums.fill(np.nan)
        again = backprop.cost_and_gradient(theta, X, Y, layer_sizes, workspace=workspace,
                                           **kwargs)
        assert again[0] == first[0]
        np.testing.assert_array_equal(again[1], first[1])
    fresh = backprop.cost_and_gradient(theta, X, Y, layer_sizes, **kwargs)
    assert fresh[0] == first[0]
    np.testing.assert_array_equal(fresh[1], first[1])


def test_blocks_hold_the_same_bytes_in_float32():
    """Blocks are sized in bytes: float32 blocks have twice the rows of float64 ones."""
    for layer_sizes in ((100, 100, 10), (50, 100, 1), (16, 128, 4)):
        rows64 = backprop.block_rows(layer_sizes, 10**6)
        rows32 = backprop.block_rows(layer_sizes, 10**6, dtype=np.float32)
        assert rows32 == 2 * rows64
        assert rows64 * max(layer_sizes[1:]) * 8 <= 2**19


def test_blocks_have_rows_enough_for_the_widest_product():
    """Each block repacks every weight matrix and adds a (units x inputs) gradient term,
    so blocks hold at least twice as many rows as the widest dense product has inputs,
    in either dtype: 784 inputs get 1568 rows, not the 256 that 256 units' bytes allow.
    Sparse X's first product is not a dense one, and the input stays within 16 MiB."""
    for dtype in (np.float64, np.float32):
        assert backprop.block_rows((784, 256, 10), 10**6, dtype=dtype) == 2 * 784
        assert backprop.block_rows((20, 300, 400, 2), 10**6, dtype=dtype) == 2 * 400
    assert backprop.block_rows((5000, 50, 3), 10**6) == 2**24 // (5000 * 8)
    assert backprop.block_rows((5000, 50, 3), 10**6, row_bytes=600.0) == 2**16 // 50
    assert backprop.block_rows((784, 256, 10), 20000) == 1568


@pytest.mark.parametrize("layer_sizes, n_samples, n_threads", [
    ((784, 256, 10), 20000, 2),  # the rule's 1568 rows make 13 blocks: 7 and 6
    ((100, 100, 10), 100000, 2),
    ((50, 100, 1), 10**6, 3),
    ((64, 25, 10), 1797, 2),
    ((5, 7, 3), 101, 4),
])
def test_blocks_are_dealt_evenly_to_threads(layer_sizes, n_samples, n_threads):
    """With several threads (partial sums), block b going to sum b % n_threads, each
    gets the same rows to within 1%, in blocks no larger than one thread's. (The rule's
    1568-row blocks gave one of two threads 13% more rows than the other.)"""
    rows = backprop.block_rows(layer_sizes, n_samples, n_threads=n_threads)
    assert rows <= backprop.block_rows(layer_sizes, n_samples)
    sizes = np.diff(np.r_[0:n_samples:rows, n_samples])
    per_thread = [sizes[k::n_threads].sum() for k in range(n_threads)]
    assert sum(per_thread) == n_samples
    assert max(per_thread) - min(per_thread) <= max(n_threads, n_samples // 100)


def test_block_rows_of_no_samples_is_one():
    """block_rows is public: no samples give one row at any thread count (the even
    dealing divided by zero blocks per thread)."""
    for n_threads in (1, 2, 3):
        assert backprop.block_rows((4, 3, 2), 0, n_threads=n_threads) == 1


@pytest.mark.parametrize("activation", backprop.ACTIVATIONS)
@pytest.mark.parametrize("derivative", [True, False])
def test_wide_blocks_are_activated_in_column_chunks_with_the_same_bits(
        monkeypatch, activation, derivative):
    """A block whose hidden buffers hold more than _BLOCK_BYTES (the fan-in rule makes
    them) is activated in chunks of whole columns: each chunk within the budget, every
    column once, and the same bits as one pass over the block."""
    rows, units = 24, 10
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=8.0, size=(rows, units))

    def buffers():
        Z, P, N = (backprop._ColumnMajor(rows, units, np.float64).block(rows)
                   for _ in range(3))
        Z[...] = logits
        return Z, P, N

    Z1, P1, N1 = buffers()
    with np.errstate(under="ignore"):
        backprop._activate(Z1, P1, N1, activation, derivative)
    whole = backprop._activate
    chunks = []

    def recording_activate(Z, P, N, activation, derivative=True):
        assert Z.flags.f_contiguous and P.flags.f_contiguous and N.flags.f_contiguous
        chunks.append(Z.shape)
        return whole(Z, P, N, activation, derivative)

    monkeypatch.setattr(backprop, "_activate", recording_activate)
    monkeypatch.setattr(backprop, "_BLOCK_BYTES", 3 * rows * 8)  # three columns
    Z2, P2, N2 = buffers()
    with np.errstate(under="ignore"):
        assert backprop._hidden_forward(Z2, P2, N2, activation, derivative) is Z2
    assert chunks == [(rows, 3)] * 3 + [(rows, 1)]
    np.testing.assert_array_equal(Z2, Z1)
    if derivative:
        np.testing.assert_array_equal(P2, P1)


def test_sparse_rows_are_counted_by_their_nonzeros(monkeypatch):
    """A sparse block's input holds only its nonzeros, so sparse data get the blocks
    that the hidden layers allow (the dense rows' 8 MiB bound would give 209 rows here,
    half the speed), and the estimator sizes its workspace as the kernel does: every
    evaluation of a fit reuses it."""
    layer_sizes = (5000, 50, 3)
    X = sp.random(3000, 5000, density=0.01, format="csr",
                  random_state=np.random.default_rng(0))
    assert backprop._row_bytes(X) == 600.0  # 50 values and column indices per row
    assert backprop._row_bytes(X.toarray()) is None
    rows = backprop.block_rows(layer_sizes, 3000, row_bytes=backprop._row_bytes(X))
    assert rows == 2**16 // 50 > backprop.block_rows(layer_sizes, 3000)

    made = []
    workspace = backprop._Workspace

    def counted(*args, **kwargs):
        made.append(args)
        return workspace(*args, **kwargs)

    monkeypatch.setattr(backprop, "_Workspace", counted)
    y = np.arange(3000) % 3
    with pytest.warns(ConvergenceWarning):
        model = BackpropClassifier(hidden_layer_sizes=(50,), max_iter=3).fit(X, y)
    assert model.n_iter_ == 3 and len(made) == 1 and made[0][1] == rows


def test_sparse_data_get_threads_by_their_nonzeros():
    """The threads' flop count takes a sparse first layer's products at its nonzeros
    (scipy's sparse products release the GIL), and two threads give the same cost and
    gradient as one, to rounding."""
    layer_sizes = (5000, 50, 3)
    X = sp.random(20_000, 5000, density=0.01, format="csr",
                  random_state=np.random.default_rng(0))
    budget = min(N_CORES, *(lib["num_threads"] for lib in threadpool_info()
                            if lib["user_api"] == "blas"))
    assert backprop._default_n_threads(X, layer_sizes) == min(budget, 5)  # 2.2e8 flops
    # As dense, 2000 rows would be 3 GFLOP; their 100 000 nonzeros are far too few.
    assert backprop._default_n_threads(X[:2000], layer_sizes) == 1
    assert backprop._default_n_threads(X[:2000].toarray(), layer_sizes) == budget
    rng = np.random.default_rng(0)
    X = X[:6000]
    Y = np.eye(3)[rng.integers(0, 3, X.shape[0])]
    theta = rng.uniform(-0.1, 0.1, backprop.n_params(layer_sizes))
    one, two = (backprop.cost_and_gradient(theta, X, Y, layer_sizes, n_threads=n)
                for n in (1, 2))
    np.testing.assert_allclose(two[0], one[0], rtol=RTOL)
    np.testing.assert_allclose(two[1], one[1], rtol=RTOL, atol=1e-15)


def test_workspace_memory_is_bounded_by_the_block_size():
    layer_sizes = (50, 100, 10)
    sizes = {}
    for n_samples in (10_000, 10_000_000):
        for n_threads in (1, 2):
            rows = backprop.block_rows(layer_sizes, n_samples, n_threads=n_threads)
            workspace = backprop._Workspace(layer_sizes, rows, np.float64,
                                            n_threads=n_threads)
            for array in workspace.sums:  # each thread's gradient sums
                assert array.shape == (backprop.n_params(layer_sizes),)
            for buffers in workspace.buffers:
                for layer in (*buffers.Z, *buffers.P, *buffers.N, buffers.mask,
                              buffers.D):
                    assert layer.flat.shape == (rows * layer.h,)
                assert buffers.vectors.shape == (2, rows)
                assert buffers.ones.shape == (rows,)
                # one block's gradient terms: the shapes of the gradient's parts
                assert [a.shape for terms in buffers.scratch_terms for a in terms] == [
                    (100, 50), (100,), (10, 100), (10,)]
            sizes[n_samples, n_threads] = sum(a.nbytes for a in workspace.arrays())
    assert sizes[10_000, 1] == sizes[10_000_000, 1]
    # Two threads deal the rows out evenly (a few rows per block fewer, by n_samples),
    # never in blocks larger than one thread's.
    bound = backprop._Workspace(layer_sizes, backprop.block_rows(layer_sizes, 10**7),
                                np.float64, n_threads=2)
    assert max(sizes[10_000, 2], sizes[10_000_000, 2]) <= sum(
        a.nbytes for a in bound.arrays())
    # A few megabytes, whatever the number of samples.
    assert sizes[10_000_000, 2] < 16 * 2**20


def test_evaluation_allocates_no_array_of_n_samples_rows():
    """tracemalloc sees numpy's allocations: with a reused workspace, an evaluation on
    200 000 rows must not allocate anything near one (n_samples, n_hidden) array."""
    layer_sizes = (20, 50, 3)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200_000, 20))
    Y = np.eye(3)[rng.integers(0, 3, 200_000)]
    theta = rng.uniform(-0.5, 0.5, backprop.n_params(layer_sizes))
    for n_threads in (1, 2):
        rows = backprop.block_rows(layer_sizes, X.shape[0], n_threads=n_threads)
        workspace = backprop._Workspace(layer_sizes, rows, np.float64, n_threads=n_threads)
        backprop.cost_and_gradient(theta, X, Y, layer_sizes, workspace=workspace,
                                   n_threads=n_threads)
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            backprop.cost_and_gradient(theta, X, Y, layer_sizes, workspace=workspace,
                                       n_threads=n_threads)
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
        one_activation = X.shape[0] * 50 * 8
        assert peak < 0.05 * one_activation, (n_threads, peak)


def test_float32_is_computed_and_kept_in_float32():
    layer_sizes = (5, 7, 3)
    theta, X, Y, _ = _problem(80, layer_sizes, dtype=np.float32)
    cost, grad = backprop.cost_and_gradient(theta, X, Y, layer_sizes, n_threads=2,
                                            block_size=16)
    assert grad.dtype == np.float32
    cost64, grad64 = backprop.cost_and_gradient(theta, X.astype(np.float64),
                                                Y.astype(np.float64), layer_sizes)
    np.testing.assert_allclose(cost, cost64, rtol=1e-5)
    np.testing.assert_allclose(grad, grad64, rtol=1e-3, atol=1e-5)

    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 6)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    model = BackpropClassifier(hidden_layer_sizes=(5,), max_iter=30, random_state=0)
    model.fit(X, y)
    assert all(W.dtype == np.float32 for W in model.coefs_)
    assert all(b.dtype == np.float32 for b in model.intercepts_)
    assert backprop.forward(model.coefs_, model.intercepts_, X).dtype == np.float32


def _fit_data():
    # Large enough for the default to use every core: see _default_n_threads.
    rng = np.random.default_rng(1)
    X = rng.standard_normal((20_000, 30))
    y = (X[:, :3] @ [1.0, -2.0, 0.5] > 0).astype(int) + (X[:, 3] > 1)
    return X, y


def test_default_threads_follow_the_blas_budget():
    X, _ = _fit_data()
    layer_sizes = (30, 30, 3)
    budget = min(N_CORES, *(lib["num_threads"] for lib in threadpool_info()
                            if lib["user_api"] == "blas"))
    n_threads = backprop._default_n_threads(X, layer_sizes)
    assert 1 <= n_threads <= budget
    assert n_threads > 1 or budget == 1
    with threadpool_limits(limits=1, user_api="blas"):
        assert backprop._default_n_threads(X, layer_sizes) == 1
    assert backprop._default_n_threads(X[:500], layer_sizes) == 1  # too little work


def test_scipy_blas_only_while_blas_runs_one_thread(monkeypatch):
    """scipy's and numpy's bundled OpenBLAS keep separate thread pools: alternating
    between them while both have threads made an evaluation on digits 10x to 15x slower
    (each product waiting for the other pool's spinning threads). The kernel calls
    scipy's ``ger`` (_affine) only while every BLAS library runs one thread, as in a
    fit, and numpy's addition otherwise, with the same result."""
    if not threadpool_info():
        pytest.skip("no BLAS library that threadpoolctl can control")
    calls = []

    def spy(ger):
        def counted(*args, **kwargs):
            calls.append(ger)
            return ger(*args, **kwargs)
        return counted

    monkeypatch.setattr(backprop, "_GER", {k: spy(g) for k, g in backprop._GER.items()})
    layer_sizes = (5, 7, 4, 3)
    theta, X, Y, _ = _problem(layer_sizes=layer_sizes)
    coefs, intercepts = backprop.unpack(theta, layer_sizes)
    results = {}
    for threads in (1, 2):
        calls.clear()
        with threadpool_limits(limits=threads, user_api="blas"):
            cost, grad = backprop.cost_and_gradient(theta, X, Y, layer_sizes)
            logits = backprop.forward(coefs, intercepts, X)
        results[threads] = calls[:], cost, grad, logits
    assert results[1][0] and not results[2][0]
    for one, two in zip(results[1][1:], results[2][1:]):
        np.testing.assert_allclose(two, one, rtol=RTOL)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_the_layout_of_x_does_not_change_a_fit_in_one_block():
    """Data that fit in one row block are evaluated from a column-major copy (faster
    products): a C- or F-ordered X gives the very same fit."""
    X, y = _fit_data()
    X = X[:1500]
    assert backprop.block_rows((30, 20, 3), len(X)) == len(X)
    fits = [BackpropClassifier(hidden_layer_sizes=(20,), max_iter=15, random_state=0).fit(
        data, y[:1500]) for data in (np.ascontiguousarray(X), np.asfortranarray(X))]
    for a, b in zip(fits[0].coefs_ + fits[0].intercepts_,
                    fits[1].coefs_ + fits[1].intercepts_):
        np.testing.assert_array_equal(a, b)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_repeated_fits_are_bit_identical():
    X, y = _fit_data()
    kwargs = dict(hidden_layer_sizes=(30,), max_iter=8, random_state=0)
    first = BackpropClassifier(**kwargs).fit(X, y)
    second = BackpropClassifier(**kwargs).fit(X, y)
    for a, b in zip(first.coefs_ + first.intercepts_, second.coefs_ + second.intercepts_):
        np.testing.assert_array_equal(a, b)
    # One thread or all: the same fit up to rounding.
    with threadpool_limits(limits=1, user_api="blas"):
        single = BackpropClassifier(**kwargs).fit(X, y)
    np.testing.assert_allclose(single.loss_, first.loss_, rtol=1e-9)


def test_saturated_logits_raise_no_floating_point_error_in_any_thread():
    layer_sizes = (2, 3, 2)
    X = np.array([[800.0, -800.0], [-40.0, 40.0], [0.0, 1e-300], [3.0, -2.0]] * 8)
    Y = np.tile([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]], (8, 1))
    theta = np.linspace(-3, 3, backprop.n_params(layer_sizes))
    for output_activation in backprop.OUTPUT_ACTIVATIONS:
        with np.errstate(all="raise"):
            cost, grad = backprop.cost_and_gradient(
                theta, X, Y, layer_sizes, output_activation=output_activation,
                n_threads=2, block_size=4,
            )
        assert np.isfinite(cost) and np.all(np.isfinite(grad))


@pytest.mark.parametrize("name", ["n_threads", "n_sums"])
@pytest.mark.parametrize("value", [0, -1, 1.5, True, "2"])
def test_bad_thread_and_sum_counts_are_refused(name, value):
    theta, X, Y, _ = _problem(10, (5, 7, 4, 3))
    with pytest.raises(ValueError, match=f"{name} must be a positive int"):
        backprop.cost_and_gradient(theta, X, Y, (5, 7, 4, 3), **{name: value})


@pytest.mark.parametrize("sparse", [False, True])
def test_forward_threads_do_not_change_a_bit(sparse):
    layer_sizes = (5, 7, 4, 3)
    theta, X, _, _ = _problem(61, layer_sizes)
    X = sp.csr_matrix(X) if sparse else X
    coefs, intercepts = backprop.unpack(theta, layer_sizes)
    one = backprop.forward(coefs, intercepts, X, block_size=7)
    for n_threads in (2, 3, 20):
        np.testing.assert_array_equal(
            backprop.forward(coefs, intercepts, X, block_size=7, n_threads=n_threads),
            one, err_msg=f"{n_threads=}")
    with pytest.raises(ValueError, match="n_threads must be a positive int"):
        backprop.forward(coefs, intercepts, X, n_threads=0)


def _record_forward_threads(monkeypatch):
    """A list that gets ``(n_threads, BLAS at one thread)`` for every call of
    ``backprop.forward`` from now on."""
    calls = []
    forward = backprop.forward

    def recorded(*args, **kwargs):
        calls.append((kwargs.get("n_threads", 1), backprop._blas_single_threaded()))
        return forward(*args, **kwargs)

    monkeypatch.setattr(backprop, "forward", recorded)
    return calls


def test_predictions_take_threads_by_the_forward_flops(monkeypatch):
    """Prediction takes threads of its own (BLAS at one meanwhile) when its forward
    pass is worth it, within the BLAS budget, and predicts the same bits."""
    X, y = _fit_data()
    layer_sizes = (30, 30, 3)
    assert backprop._useful_threads(X, layer_sizes, gradient=False) == min(N_CORES, 1)
    wide = np.repeat(X, 4, axis=0)  # 80 000 rows: 1.6e8 forward flops
    assert backprop._useful_threads(wide, layer_sizes, gradient=False) == min(N_CORES, 3)
    with threadpool_limits(limits=1, user_api="blas"):
        assert backprop._default_n_threads(wide, layer_sizes, gradient=False) == 1
    model = BackpropClassifier(hidden_layer_sizes=(30,), max_iter=5,
                               random_state=0).fit(X[:2000], y[:2000])
    calls = _record_forward_threads(monkeypatch)
    with threadpool_limits(limits=1, user_api="blas"):
        one = model.predict_proba(wide)
    default = model.predict_proba(wide)
    np.testing.assert_array_equal(default, one)
    budget = backprop._default_n_threads(wide, layer_sizes, gradient=False)
    assert calls == [(1, True), (budget, True)]


def test_early_stopping_scores_with_the_threads_of_predictions(monkeypatch):
    """Early stopping's forward pass over the held-out rows takes threads as predictions
    do, as many as the BLAS budget allows when the fit starts (the fit then holds BLAS
    at one thread), and scores the same with any number."""
    X, y = _fit_data()  # 20 000 rows: 5000 held out, three blocks of the forward pass
    calls = _record_forward_threads(monkeypatch)
    fits = {}
    for n_threads in (1, 3):
        monkeypatch.setattr(backprop, "_default_n_threads",
                            lambda X, layer_sizes, gradient=True, n=n_threads:
                            n if not gradient else 1)
        calls.clear()
        fits[n_threads] = BackpropClassifier(
            hidden_layer_sizes=(30,), early_stopping=True, validation_fraction=0.25,
            n_iter_no_change=50, max_iter=6, random_state=0).fit(X, y)
        assert calls == [(n_threads, True)] * fits[n_threads].n_iter_
    assert fits[3].validation_scores_ == fits[1].validation_scores_
    np.testing.assert_array_equal(fits[3].coefs_[0], fits[1].coefs_[0])


@pytest.mark.parametrize("activation", backprop.ACTIVATIONS)
def test_forward_does_not_depend_on_the_block_size(activation):
    layer_sizes = (5, 7, 4, 3)
    theta, X, _, _ = _problem(61, layer_sizes)
    coefs, intercepts = backprop.unpack(theta, layer_sizes)
    whole = backprop.forward(coefs, intercepts, X, activation=activation, block_size=61)
    for block_size in (1, 7, None):
        np.testing.assert_allclose(
            backprop.forward(coefs, intercepts, X, activation=activation,
                             block_size=block_size),
            whole, rtol=RTOL, atol=RTOL * np.abs(whole).max(),
        )
