"""The loss object of sklearn_bp._loss and the thread policy of sklearn_bp._threads.

What the row blocks, the partial sums, the reused buffers and the threads must not
change: results (beyond rounding where the summation order changes), determinism, dtype
and memory bounds. Nothing here is timed (timings live in ``benchmarks/run.py``).
"""

import os
import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp
from threadpoolctl import threadpool_info, threadpool_limits

from sklearn_bp import _kernel, _loss, _threads, backprop
from sklearn_bp._loss import NetworkLoss
from test_kernel import RTOL, problem

N_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _blas_budget():
    return min(N_CORES, *(lib["num_threads"] for lib in threadpool_info()
                          if lib["user_api"] == "blas"))


def fit_data():
    """Large enough for the default to use every core: see _threads.default_n_threads."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((20_000, 30))
    y = (X[:, :3] @ [1.0, -2.0, 0.5] > 0).astype(int) + (X[:, 3] > 1)
    return X, y


# ----------------------------------------------------------------------------------------
# Partial sums and threads
# ----------------------------------------------------------------------------------------


def test_partial_sums_add_up_over_threads_and_blocks():
    layer_sizes = (5, 7, 3)
    theta, X, Y, s = problem(40, layer_sizes, weighted=True)
    loss = NetworkLoss(layer_sizes)
    whole = loss.partial_sums(theta, X, Y, s, block_size=40)
    parts = [loss.partial_sums(theta, X[i:i + 9], Y[i:i + 9], s[i:i + 9], n_threads=2,
                               block_size=2)
             for i in range(0, 40, 9)]
    np.testing.assert_allclose(sum(p.loss for p in parts), whole.loss, rtol=RTOL)
    np.testing.assert_allclose(sum(p.gradient for p in parts), whole.gradient, rtol=RTOL,
                               atol=RTOL * np.abs(whole.gradient).max())
    cost, grad = loss.combine(parts, theta, s.sum())
    expected = loss.loss_gradient(theta, X, Y, s)
    np.testing.assert_allclose(cost, expected[0], rtol=RTOL)
    np.testing.assert_allclose(grad, expected[1], rtol=RTOL, atol=1e-15)


@pytest.mark.parametrize("output_activation", backprop.OUTPUT_ACTIVATIONS)
@pytest.mark.parametrize("n_sums", [2, 3])
def test_the_number_of_threads_does_not_change_a_bit(n_sums, output_activation):
    """With the partial sums fixed, any number of threads (fewer than the sums, as
    many, or more) gives the same bits: each partial sum is accumulated in block order
    by one thread, and the sums are added in a fixed order."""
    layer_sizes = (6, 9, 4)
    theta, X, Y, s = problem(500, layer_sizes, output_activation, weighted=True)
    loss = NetworkLoss(layer_sizes, output_activation=output_activation, alpha=0.1)
    kwargs = dict(block_size=37, n_sums=n_sums)
    cost, grad = loss.loss_gradient(theta, X, Y, s, n_threads=1, **kwargs)
    for n_threads in (2, 3, 4):
        c, g = loss.loss_gradient(theta, X, Y, s, n_threads=n_threads, **kwargs)
        assert c == cost, n_threads
        np.testing.assert_array_equal(g, grad, err_msg=f"{n_threads=}")
    # n_sums=None means one partial sum per thread
    c, g = loss.loss_gradient(theta, X, Y, s, n_threads=n_sums, block_size=37)
    assert c == cost
    np.testing.assert_array_equal(g, grad)
    # and a different number of sums changes the rounding only
    c, g = loss.loss_gradient(theta, X, Y, s, n_threads=1, block_size=37, n_sums=1)
    np.testing.assert_allclose(c, cost, rtol=RTOL)
    np.testing.assert_allclose(g, grad, rtol=RTOL, atol=RTOL * np.abs(grad).max())


def test_partial_sums_set_the_threads_and_blocks_of_a_fit():
    """The estimator's partial sums follow the cores and the data, never the BLAS
    limits; its threads follow the limits too."""
    X, _ = fit_data()
    layer_sizes = (30, 30, 3)
    n_sums = _threads.useful_threads(X, layer_sizes)
    assert n_sums == min(N_CORES, 5)  # 1.8e8 flops: 4 threads' worth and more
    with threadpool_limits(limits=1, user_api="blas"):
        assert _threads.useful_threads(X, layer_sizes) == n_sums
        assert _threads.default_n_threads(X, layer_sizes) == 1
        objective = NetworkLoss(layer_sizes).objective(X, np.eye(3)[np.arange(20_000) % 3])
        assert (objective.n_sums, objective.n_threads) == (min(n_sums, 5), 1)
    assert _threads.useful_threads(X[:500], layer_sizes) == 1  # too little work


def test_default_threads_follow_the_blas_budget():
    X, _ = fit_data()
    layer_sizes = (30, 30, 3)
    budget = _blas_budget()
    n_threads = _threads.default_n_threads(X, layer_sizes)
    assert 1 <= n_threads <= budget
    assert n_threads > 1 or budget == 1
    with threadpool_limits(limits=1, user_api="blas"):
        assert _threads.default_n_threads(X, layer_sizes) == 1
    assert _threads.default_n_threads(X[:500], layer_sizes) == 1  # too little work


def test_sparse_data_get_threads_by_their_nonzeros():
    """The threads' flop count takes a sparse first layer's products at its nonzeros
    (scipy's sparse products release the GIL), and two threads give the same cost and
    gradient as one, to rounding."""
    layer_sizes = (5000, 50, 3)
    X = sp.random(20_000, 5000, density=0.01, format="csr",
                  random_state=np.random.default_rng(0))
    budget = _blas_budget()
    assert _threads.default_n_threads(X, layer_sizes) == min(budget, 5)  # 2.2e8 flops
    # As dense, 2000 rows would be 3 GFLOP; their 100 000 nonzeros are far too few.
    assert _threads.default_n_threads(X[:2000], layer_sizes) == 1
    assert _threads.default_n_threads(X[:2000].toarray(), layer_sizes) == budget
    rng = np.random.default_rng(0)
    X = X[:6000]
    Y = np.eye(3)[rng.integers(0, 3, X.shape[0])]
    theta = rng.uniform(-0.1, 0.1, backprop.n_params(layer_sizes))
    loss = NetworkLoss(layer_sizes, output_activation="softmax")
    one, two = (loss.loss_gradient(theta, X, Y, n_threads=n) for n in (1, 2))
    np.testing.assert_allclose(two[0], one[0], rtol=RTOL)
    np.testing.assert_allclose(two[1], one[1], rtol=RTOL, atol=1e-15)


@pytest.mark.parametrize("name", ["n_threads", "n_sums"])
@pytest.mark.parametrize("value", [0, -1, 1.5, True, "2"])
def test_bad_thread_and_sum_counts_are_refused(name, value):
    theta, X, Y, _ = problem(10, (5, 7, 4, 3))
    with pytest.raises(ValueError, match=f"{name} must be a positive int"):
        NetworkLoss((5, 7, 4, 3)).loss_gradient(theta, X, Y, **{name: value})


# ----------------------------------------------------------------------------------------
# Buffers reused over evaluations, and memory
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("output_activation", backprop.OUTPUT_ACTIVATIONS)
def test_reused_workspace_gives_bit_identical_results(n_threads, output_activation):
    layer_sizes = (6, 9, 4)
    theta, X, Y, _ = problem(500, layer_sizes, output_activation)
    loss = NetworkLoss(layer_sizes, output_activation=output_activation, alpha=0.1)
    workspace = _loss.Workspace(layer_sizes, 37, np.float64, n_threads=n_threads)
    kwargs = dict(block_size=37, n_threads=n_threads, workspace=workspace)
    first = loss.loss_gradient(theta, X, Y, **kwargs)
    # Another evaluation in between leaves other numbers in every buffer.
    loss.loss_gradient(theta[::-1].copy(), X, Y, **kwargs)
    for repeat in range(3):
        if repeat == 2:  # the first block of each partial sum writes it: never read
            for sums in workspace.sums:
                sums.fill(np.nan)
        again = loss.loss_gradient(theta, X, Y, **kwargs)
        assert again[0] == first[0]
        np.testing.assert_array_equal(again[1], first[1])
    fresh = loss.loss_gradient(theta, X, Y, block_size=37, n_threads=n_threads)
    assert fresh[0] == first[0]
    np.testing.assert_array_equal(fresh[1], first[1])
    workspace.close()


def test_workspace_memory_is_bounded_by_the_block_size():
    layer_sizes = (50, 100, 10)
    sizes = {}
    for n_samples in (10_000, 10_000_000):
        for n_threads in (1, 2):
            rows = _kernel.block_rows(layer_sizes, n_samples, n_sums=n_threads)
            workspace = _loss.Workspace(layer_sizes, rows, np.float64,
                                        n_threads=n_threads)
            for array in workspace.sums:  # each partial sum's gradient
                assert array.shape == (backprop.n_params(layer_sizes),)
            assert len(workspace.buffers) == n_threads
            for buffers in workspace.buffers:
                assert buffers.ones.shape == (rows,)
            sizes[n_samples, n_threads] = sum(a.nbytes for a in workspace.arrays())
    assert sizes[10_000, 1] == sizes[10_000_000, 1]
    # Two threads deal the rows out evenly (a few rows per block fewer, by n_samples),
    # never in blocks larger than one thread's.
    bound = _loss.Workspace(layer_sizes, _kernel.block_rows(layer_sizes, 10**7),
                            np.float64, n_threads=2)
    assert max(sizes[10_000, 2], sizes[10_000_000, 2]) <= sum(
        a.nbytes for a in bound.arrays())
    # A few megabytes, whatever the number of samples.
    assert sizes[10_000_000, 2] < 16 * 2**20


def test_evaluation_allocates_no_array_of_n_samples_rows():
    """tracemalloc sees numpy's allocations: with its buffers made, an evaluation on
    200 000 rows must not allocate anything near one (n_samples, n_hidden) array."""
    layer_sizes = (20, 50, 3)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200_000, 20))
    Y = np.eye(3)[rng.integers(0, 3, 200_000)]
    theta = rng.uniform(-0.5, 0.5, backprop.n_params(layer_sizes))
    loss = NetworkLoss(layer_sizes)
    for n_threads in (1, 2):
        rows = _kernel.block_rows(layer_sizes, X.shape[0], n_sums=n_threads)
        workspace = _loss.Workspace(layer_sizes, rows, np.float64, n_threads=n_threads)
        loss.loss_gradient(theta, X, Y, n_threads=n_threads, workspace=workspace)
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            loss.loss_gradient(theta, X, Y, n_threads=n_threads, workspace=workspace)
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
        one_activation = X.shape[0] * 50 * 8
        assert peak < 0.05 * one_activation, (n_threads, peak)
        workspace.close()


def test_float32_is_computed_in_float32():
    layer_sizes = (5, 7, 3)
    theta, X, Y, _ = problem(80, layer_sizes, dtype=np.float32)
    loss = NetworkLoss(layer_sizes, dtype=np.float32)
    cost, grad = loss.loss_gradient(theta, X, Y, n_threads=2, block_size=16)
    assert grad.dtype == np.float32
    cost64, grad64 = NetworkLoss(layer_sizes).loss_gradient(
        theta, X.astype(np.float64), Y.astype(np.float64))
    np.testing.assert_allclose(cost, cost64, rtol=1e-5)
    np.testing.assert_allclose(grad, grad64, rtol=1e-3, atol=1e-5)
    coefs, intercepts = backprop.unpack(theta, layer_sizes)
    assert loss.forward(coefs, intercepts, X).dtype == np.float32
    assert backprop.forward(coefs, intercepts, X).dtype == np.float32


# ----------------------------------------------------------------------------------------
# The objective of a fit
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("sparse", [False, True])
def test_the_objective_is_the_loss_with_its_plan_and_holds_blas_meanwhile(sparse):
    """An Objective is the loss on its rows, evaluated with its own partial sums,
    threads and reused buffers; as a context manager it holds BLAS at one thread and,
    at the end, gives back the BLAS setting and stops its threads."""
    X, y = fit_data()
    X = sp.csr_matrix(np.where(np.abs(X) > 1, X, 0.0)) if sparse else X
    Y = np.eye(3)[y]
    layer_sizes = (30, 20, 3)
    loss = NetworkLoss(layer_sizes, output_activation="softmax", alpha=0.5)
    theta = np.random.default_rng(0).uniform(-0.3, 0.3, loss.n_params)
    before = [lib["num_threads"] for lib in threadpool_info()]
    objective = loss.objective(X, Y)
    with threadpool_limits(limits=1, user_api="blas"):  # BLAS rounds by its threads
        expected = loss.loss_gradient(theta, X, Y, n_sums=objective.n_sums,
                                      n_threads=objective.n_threads)
    with objective:
        assert _threads.blas_single_threaded()
        for _ in range(2):
            cost, grad = objective(theta)
            assert cost == expected[0]
            np.testing.assert_array_equal(grad, expected[1])
        workspace = objective.workspace
    assert [lib["num_threads"] for lib in threadpool_info()] == before
    assert workspace._pool is None  # stopped (or never started)
    assert objective.weight_sum == X.shape[0]


def test_a_fit_makes_its_buffers_once(monkeypatch):
    """The estimator's objective makes one workspace, the kernel's size, and every
    evaluation of the fit reuses it."""
    from sklearn.exceptions import ConvergenceWarning

    from sklearn_bp import BackpropClassifier

    layer_sizes = (5000, 50, 3)
    X = sp.random(3000, 5000, density=0.01, format="csr",
                  random_state=np.random.default_rng(0))
    rows = _kernel.block_rows(layer_sizes, 3000, row_bytes=_kernel.row_bytes(X))
    made = []
    workspace = _loss.Workspace

    def counted(*args, **kwargs):
        made.append(args)
        return workspace(*args, **kwargs)

    monkeypatch.setattr(_loss, "Workspace", counted)
    y = np.arange(3000) % 3
    with pytest.warns(ConvergenceWarning):
        model = BackpropClassifier(hidden_layer_sizes=(50,), max_iter=3).fit(X, y)
    assert model.n_iter_ == 3 and len(made) == 1 and made[0][1] == rows


# ----------------------------------------------------------------------------------------
# The forward pass
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("sparse", [False, True])
def test_forward_threads_do_not_change_a_bit(sparse):
    layer_sizes = (5, 7, 4, 3)
    theta, X, _, _ = problem(61, layer_sizes)
    X = sp.csr_matrix(X) if sparse else X
    coefs, intercepts = backprop.unpack(theta, layer_sizes)
    loss = NetworkLoss(layer_sizes)
    one = loss.forward(coefs, intercepts, X, block_size=7, n_threads=1)
    for n_threads in (2, 3, 20):
        np.testing.assert_array_equal(
            loss.forward(coefs, intercepts, X, block_size=7, n_threads=n_threads),
            one, err_msg=f"{n_threads=}")
    with pytest.raises(ValueError, match="n_threads must be a positive int"):
        loss.forward(coefs, intercepts, X, n_threads=0)


@pytest.mark.parametrize("activation", backprop.ACTIVATIONS)
def test_forward_does_not_depend_on_the_block_size(activation):
    layer_sizes = (5, 7, 4, 3)
    theta, X, _, _ = problem(61, layer_sizes)
    coefs, intercepts = backprop.unpack(theta, layer_sizes)
    loss = NetworkLoss(layer_sizes, activation=activation)
    whole = loss.forward(coefs, intercepts, X, block_size=61)
    for block_size in (1, 7, None):
        np.testing.assert_allclose(
            loss.forward(coefs, intercepts, X, block_size=block_size),
            whole, rtol=RTOL, atol=RTOL * np.abs(whole).max(),
        )


def test_forward_takes_threads_by_its_flops():
    X, _ = fit_data()
    layer_sizes = (30, 30, 3)
    loss = NetworkLoss(layer_sizes)
    assert _threads.useful_threads(X, layer_sizes, gradient=False) == min(N_CORES, 1)
    wide = np.repeat(X, 4, axis=0)  # 80 000 rows: 1.6e8 forward flops
    assert _threads.useful_threads(wide, layer_sizes, gradient=False) == min(N_CORES, 3)
    assert loss.forward_threads(wide) == min(_blas_budget(), 3)
    with threadpool_limits(limits=1, user_api="blas"):
        assert loss.forward_threads(wide) == 1
