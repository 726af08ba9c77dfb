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

Holding BLAS at one thread while other threads run (:func:`single_threaded_blas`). The
thread limit of numpy's and scipy's OpenBLAS (pthreads builds, as in their wheels) is
one number per library for the whole process: ``openblas_set_num_threads_local`` sets
that same number (measured with OpenBLAS 0.3.30), and threadpoolctl has no other. So a
hold cannot be local to a call: holds that overlap, in any threads, share one
process-wide setting. The first hold to begin saves the libraries' limits and sets them
to one; the last to end puts back what the first saved; a count under a lock says which
is which, so fits, predictions and scores running at the same time in threads leave the
process's setting as they found it, and every one of them computes with BLAS at one
thread. Libraries whose limit is the calling thread's own (OpenBLAS built on OpenMP)
are held per call instead: each hold sets and restores them in its own thread.
"""

import functools
import os
import threading
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


def _per_thread(lib):
    """Whether `lib`'s thread limit is the calling thread's own, not the process's:
    OpenBLAS built on OpenMP, whose limit is OpenMP's per-thread setting."""
    return lib.internal_api == "openblas" and getattr(lib, "threading_layer", "") == "openmp"


@functools.lru_cache(maxsize=None)
def _held_libraries():
    """``(process_wide, per_thread)``: the BLAS libraries, by the scope of their limit."""
    libraries = _blas_libraries()
    return ([lib for lib in libraries if not _per_thread(lib)],
            [lib for lib in libraries if _per_thread(lib)])


def _set_num_threads(lib, n_threads):
    """Set `lib`'s thread limit from whichever thread calls.

    threadpoolctl 3.8 lets one thread at a time change a process-wide OpenBLAS limit
    (its "controlling thread") and silently ignores the others; the holds below, which
    the first holder's thread sets and the last holder's thread restores, coordinate
    among themselves, so they set the library directly.
    """
    if n_threads is not None:
        getattr(lib, "_real_set_num_threads", lib.set_num_threads)(n_threads)


class _Holds:
    """The process-wide holds: how many are running, and the limits the first found."""

    lock = threading.Lock()
    count = 0
    saved = None  # the process-wide libraries' limits when the first hold began


if hasattr(os, "register_at_fork"):  # a child of fork() must not inherit a held lock
    os.register_at_fork(after_in_child=lambda: setattr(_Holds, "lock", threading.Lock()))


class _SingleThreadedBlas:
    """:func:`single_threaded_blas`'s context manager (one use)."""

    def __init__(self):
        self._own = None

    def __enter__(self):
        process_wide, per_thread = _held_libraries()
        own = [lib.num_threads for lib in per_thread]
        for lib in per_thread:
            _set_num_threads(lib, 1)
        self._own = own
        with _Holds.lock:
            if _Holds.count == 0:
                _Holds.saved = [lib.num_threads for lib in process_wide]
                for lib in process_wide:
                    _set_num_threads(lib, 1)
            _Holds.count += 1
        return self

    def __exit__(self, *exc_info):
        own, self._own = self._own, None
        if own is None:  # not entered, or already left
            return
        process_wide, per_thread = _held_libraries()
        with _Holds.lock:
            _Holds.count -= 1
            if _Holds.count == 0:
                saved, _Holds.saved = _Holds.saved, None
                for lib, n_threads in zip(process_wide, saved):
                    _set_num_threads(lib, n_threads)
        for lib, n_threads in zip(per_thread, own):
            _set_num_threads(lib, n_threads)


def single_threaded_blas():
    """Context manager: every BLAS library at one thread meanwhile, and at the end the
    process's limits as the first of the holds running at the same time found them (see
    the module); safe in any number of threads."""
    return _SingleThreadedBlas()


def blas_single_threaded():
    """Whether every BLAS library runs one thread now (microseconds to ask)."""
    return all(lib.num_threads == 1 for lib in _blas_libraries())


def blas_budget():
    """The BLAS threads the caller allows: the smallest of the libraries' limits, those
    from before the holds of :func:`single_threaded_blas` while any runs (a fit in
    another thread does not shrink this one's budget)."""
    process_wide, per_thread = _held_libraries()
    with _Holds.lock:
        saved = _Holds.saved
    limits = saved if saved is not None else [lib.num_threads for lib in process_wide]
    limits = [n for n in [*limits, *(lib.num_threads for lib in per_thread)] if n]
    return min(limits, default=1)


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
    as the work pays for (:func:`useful_threads`), but no more than BLAS may use, in
    the caller's ``threadpoolctl`` limits (:func:`blas_budget`; so
    ``threadpool_limits(1)`` around a fit or a prediction keeps it on one core)."""
    useful = useful_threads(X, layer_sizes, gradient=gradient)
    if useful == 1:  # no need to ask the BLAS libraries (microseconds, per prediction)
        return 1
    return int(max(1, min(useful, blas_budget())))


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
