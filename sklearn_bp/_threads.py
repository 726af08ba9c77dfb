"""Threads and BLAS: how many threads an evaluation takes, and BLAS held at one meanwhile.

Private. BLAS's own threads gain less on the kernel's products (hundreds of rows by tens
to hundreds of columns, called thousands of times) than threads of our own over row
blocks, and numpy's and scipy's bundled OpenBLAS keep separate thread pools that slow
each other down many times when both have threads (scipy's L-BFGS-B among the callers).
So a fit, and a threaded prediction, hold BLAS at one thread and use the cores as
threads of their own over row blocks; numpy and BLAS release the GIL while they compute.
The measurements are in ``docs/performance.rst``.

An evaluation's partial sums follow the cores and the data (:func:`useful_threads`), never
the thread limits, so that every limit gives the same bits; its threads
(:func:`default_n_threads`) also stay within the caller's ``threadpoolctl`` limits.
"""

import functools
import os
from concurrent.futures import wait

import scipy.sparse as sp

# Matrix-product flops of one evaluation below which a second thread costs more than it
# saves (about 1 ms of work on one core).
MIN_FLOPS_PER_THREAD = 4e7


@functools.lru_cache(maxsize=None)
def _controller():
    """One ``threadpoolctl.ThreadpoolController``, made on first use and then reused:
    making one scans the loaded libraries, which takes milliseconds."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@functools.lru_cache(maxsize=None)
def _blas_libraries():
    """threadpoolctl's controllers of the BLAS libraries loaded at the first call (by
    then numpy's and scipy's, the two the kernel calls), found once and reused."""
    return _controller().select(user_api="blas").lib_controllers


def single_threaded_blas():
    """Context manager: every BLAS library at one thread (as ``threadpool_limits(1)``)."""
    return _controller().limit(limits=1, user_api="blas")


def blas_single_threaded():
    """Whether every BLAS library runs one thread now (microseconds to ask)."""
    return all(lib.num_threads == 1 for lib in _blas_libraries())


def cores():
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def useful_threads(X, layer_sizes, *, gradient=True):
    """Threads that evaluations on `X` (with ``gradient=False``, forward passes) pay for:
    at most the usable cores, and one per ``MIN_FLOPS_PER_THREAD`` of matrix products.
    Not the BLAS limits: a fit splits its blocks into this many partial sums whatever they
    are, so that ``threadpool_limits(1)`` gives the default fit's bits, only in fewer
    threads (:func:`default_n_threads`)."""
    pairs = [a * b for a, b in zip(layer_sizes[:-1], layer_sizes[1:])]
    # Forward: every layer's product; the gradient adds as many and the deltas' (but the
    # first layer's, which no delta needs).
    flops = 2 * X.shape[0] * ((3 * sum(pairs) - pairs[0]) if gradient else sum(pairs))
    if sp.issparse(X):
        # The first layer's products with X touch only the nonzeros (and scipy's sparse
        # products release the GIL).
        products = 2 if gradient else 1
        flops -= 2 * products * (pairs[0] * X.shape[0] - X.nnz * layer_sizes[1])
    return int(max(1, min(cores(), flops // MIN_FLOPS_PER_THREAD)))


def default_n_threads(X, layer_sizes, *, gradient=True):
    """Threads for evaluations on `X` (forward passes with ``gradient=False``): as many
    as the work pays for (:func:`useful_threads`), but no more than BLAS may use now, in
    the caller's ``threadpoolctl`` limits (so ``threadpool_limits(1)`` around a fit or a
    prediction keeps it on one core)."""
    useful = useful_threads(X, layer_sizes, gradient=gradient)
    if useful == 1:  # no need to ask the BLAS libraries (microseconds, per prediction)
        return 1
    return int(max(1, min([useful, *(lib.num_threads for lib in _blas_libraries())])))


def in_threads(function, n_threads, pool):
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
