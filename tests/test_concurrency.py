"""Fits, predictions and early stopping's scores running at the same time in threads.

Each holds BLAS at one thread while it computes (sklearn_bp._threads), a setting that is
one number per library for the whole process. Whatever the overlap, they must leave the
process's BLAS setting as they found it and give the same bits as the same calls made one
after the other. The overlaps are forced with events and barriers, not left to timing:
holds that begin and end in the same order (the first to begin ends while the others
still compute, which once restored BLAS's threads under them and left one thread for good
to the process), and holds that all compute at once.
"""

import threading
from concurrent.futures import ThreadPoolExecutor

import joblib
import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV
from threadpoolctl import threadpool_info, threadpool_limits

from sklearn_bp import BackpropClassifier, _loss, _threads

TIMEOUT = 120  # seconds: a broken schedule fails instead of hanging

# warnings.catch_warnings is not thread-safe: the fits' warnings are filtered here
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _blas_setting():
    return sorted((lib["filepath"], lib["num_threads"]) for lib in threadpool_info()
                  if lib["user_api"] == "blas")


def _data(n_samples=2000, n_features=20, seed=0):
    """Rows enough that BLAS's threaded products (D^T A over the rows of a block) round
    otherwise than its one-thread ones: a fit computed at two BLAS threads differs."""
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n_samples, n_features))
    y = (X[:, :3] @ [1.0, -1.0, 0.5] > 0).astype(int) + (X[:, 3] > 0.8)
    return X, y


def _models(n_fits):
    """Different fits: seeds, output layers, and early stopping (which scores its
    held-out rows after every iteration)."""
    return [BackpropClassifier(hidden_layer_sizes=(30,), max_iter=25, random_state=k,
                               output_activation=("logistic", "softmax")[k % 2],
                               early_stopping=k % 2 == 1, n_iter_no_change=50)
            for k in range(n_fits)]


def _fit(model, X, y):
    return model.fit(X, y)


def _weights(model):
    return model.coefs_ + model.intercepts_


class _Schedule:
    """Orders the holds of `n` fits, one per thread, through the Objective's context
    manager and its first evaluation.

    ``"staggered"``: fit k begins its hold after fit k - 1 began its own, computes only
    after fit k - 1 has ended its hold, and fit k ends its hold only once every fit holds
    one: so each fit computes while the one before it ends. ``"together"``: every fit
    holds and waits at a barrier before its first evaluation, so all compute at once.
    """

    def __init__(self, n, mode, monkeypatch):
        self.n, self.mode = n, mode
        self.began = [threading.Event() for _ in range(n)]
        self.ended = [threading.Event() for _ in range(n)]
        self.barrier = threading.Barrier(n, timeout=TIMEOUT)
        self.index = {}
        self.first = set()
        enter, exit_, call = (_loss.Objective.__enter__, _loss.Objective.__exit__,
                              _loss.Objective.__call__)
        schedule = self

        def scheduled_enter(objective):
            k = schedule.index[threading.get_ident()]
            if k:
                schedule.wait(schedule.began[k - 1])
            result = enter(objective)
            schedule.began[k].set()
            return result

        def scheduled_call(objective, theta):
            k = schedule.index[threading.get_ident()]
            if k not in schedule.first:
                schedule.first.add(k)
                if schedule.mode == "together":
                    schedule.barrier.wait()
                elif k:
                    schedule.wait(schedule.ended[k - 1])
            return call(objective, theta)

        def scheduled_exit(objective, *exc_info):
            k = schedule.index[threading.get_ident()]
            schedule.wait(schedule.began[-1])
            try:
                return exit_(objective, *exc_info)
            finally:
                schedule.ended[k].set()

        monkeypatch.setattr(_loss.Objective, "__enter__", scheduled_enter)
        monkeypatch.setattr(_loss.Objective, "__exit__", scheduled_exit)
        monkeypatch.setattr(_loss.Objective, "__call__", scheduled_call)

    @staticmethod
    def wait(event):
        assert event.wait(TIMEOUT), "the schedule is stuck"

    def run(self, k, function):
        self.index[threading.get_ident()] = k
        return function()


@pytest.mark.parametrize("mode", ["staggered", "together"])
@pytest.mark.parametrize("n_fits", [2, 4])
def test_overlapping_fits_leave_blas_alone_and_give_the_sequential_bits(
        n_fits, mode, monkeypatch):
    X, y = _data()
    sequential = [_fit(model, X, y) for model in _models(n_fits)]
    setting = _blas_setting()
    schedule = _Schedule(n_fits, mode, monkeypatch)
    with ThreadPoolExecutor(max_workers=n_fits) as pool:
        futures = [pool.submit(schedule.run, k, lambda m=model: _fit(m, X, y))
                   for k, model in enumerate(_models(n_fits))]
        concurrent = [future.result(timeout=TIMEOUT) for future in futures]
    assert _blas_setting() == setting
    for a, b in zip(sequential, concurrent):
        for u, v in zip(_weights(a), _weights(b)):
            np.testing.assert_array_equal(u, v)
        assert a.loss_curve_ == b.loss_curve_
        assert a.validation_scores_ == b.validation_scores_
        assert a.best_validation_score_ == b.best_validation_score_


def test_predictions_during_fits_give_the_sequential_bits():
    """Predictions in one thread while fits hold BLAS in others: the same bits as
    predictions alone, on data small enough for one thread of ours (the forward pass
    then runs in the caller's thread, with BLAS held at one as in a fit), and on data
    large enough for several."""
    X, y = _data()
    model = _fit(BackpropClassifier(hidden_layer_sizes=(30,), max_iter=10,
                                    random_state=0), X, y)
    large = np.repeat(X, 40, axis=0)  # 80 000 rows: threads of our own
    expected = [model.predict_proba(X), model.predict_proba(large)]
    setting = _blas_setting()
    started = threading.Barrier(3, timeout=TIMEOUT)
    done = threading.Event()

    def fit(seed):
        started.wait()
        return _fit(BackpropClassifier(hidden_layer_sizes=(30,), max_iter=40,
                                       random_state=seed), X, y)

    with ThreadPoolExecutor(max_workers=2) as pool:
        fits = [pool.submit(fit, seed) for seed in (1, 2)]
        fits[-1].add_done_callback(lambda _: done.set())
        started.wait()
        rounds = 0
        while not done.is_set() or rounds < 2:
            got = [model.predict_proba(X), model.predict_proba(large)]
            for a, b in zip(expected, got):
                np.testing.assert_array_equal(a, b)
            rounds += 1
        for future in fits:
            future.result(timeout=TIMEOUT)
    assert _blas_setting() == setting


@pytest.mark.parametrize("repeat", range(3))
def test_grid_search_in_threads_is_the_grid_search_in_one_job(repeat):
    """GridSearchCV with joblib's threading backend runs its fits at the same time in
    threads; its scores and best parameters are those of n_jobs=1, and BLAS's setting is
    the same after it (the race this guards against showed in about half the runs)."""
    X, y = _data(1500)
    search = dict(param_grid={"alpha": [1e-4, 1.0], "early_stopping": [False, True]},
                  cv=3)
    estimator = BackpropClassifier(hidden_layer_sizes=(20,), max_iter=20, random_state=0)
    one_job = GridSearchCV(estimator, n_jobs=1, **search).fit(X, y)
    setting = _blas_setting()
    with joblib.parallel_backend("threading", n_jobs=2):
        threaded = GridSearchCV(estimator, n_jobs=2, **search).fit(X, y)
    assert _blas_setting() == setting
    assert threaded.best_params_ == one_job.best_params_
    for key in ("mean_test_score", *(f"split{k}_test_score" for k in range(3))):
        np.testing.assert_array_equal(threaded.cv_results_[key], one_job.cv_results_[key])


# ----------------------------------------------------------------------------------------
# The hold itself
# ----------------------------------------------------------------------------------------


def test_holds_begun_and_ended_in_other_threads_restore_the_first_setting():
    """The first hold to begin sets one thread; the last to end, in another thread,
    restores what the first found, also inside the caller's threadpool_limits (whose
    own exit then restores the caller's setting)."""
    for limit in (None, 2):
        with threadpool_limits(limits=limit, user_api="blas"):
            setting = _blas_setting()
            first, second = _threads.single_threaded_blas(), _threads.single_threaded_blas()
            with ThreadPoolExecutor(max_workers=1) as pool:
                pool.submit(first.__enter__).result()
            second.__enter__()
            assert _threads.blas_single_threaded()
            with ThreadPoolExecutor(max_workers=1) as pool:
                pool.submit(first.__exit__, None, None, None).result()
            assert _threads.blas_single_threaded()  # the second still holds
            second.__exit__(None, None, None)
            second.__exit__(None, None, None)  # leaving twice does nothing more
            assert _blas_setting() == setting


def test_the_threads_budget_is_the_callers_while_other_fits_hold_blas():
    """A fit that starts while another holds BLAS at one thread takes the threads the
    caller's setting allows, not the hold's one."""
    X = np.zeros((20_000, 30))
    expected = _threads.default_n_threads(X, (30, 30, 3))
    with _threads.single_threaded_blas():
        assert _threads.blas_single_threaded()
        assert _threads.default_n_threads(X, (30, 30, 3)) == expected
    with threadpool_limits(limits=1, user_api="blas"):
        with _threads.single_threaded_blas():
            assert _threads.default_n_threads(X, (30, 30, 3)) == 1


def test_a_per_thread_limit_is_held_and_restored_in_its_own_thread(monkeypatch):
    """Libraries whose limit belongs to the calling thread (OpenBLAS on OpenMP) are set
    and restored by each hold in its own thread, never by another thread's hold."""

    class PerThreadLibrary:
        """A limit per thread, as OpenMP keeps it."""

        internal_api, threading_layer = "openblas", "openmp"

        def __init__(self):
            self.limits = threading.local()

        @property
        def num_threads(self):
            return getattr(self.limits, "n", 4)

        def set_num_threads(self, n):
            self.limits.n = n

    library = PerThreadLibrary()
    monkeypatch.setattr(_threads, "_held_libraries", lambda: ([], [library]))

    def hold_in_another_thread():
        before = library.num_threads
        with _threads.single_threaded_blas():
            during = library.num_threads
        return before, during, library.num_threads

    first = _threads.single_threaded_blas().__enter__()
    assert library.num_threads == 1
    with ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(hold_in_another_thread).result() == (4, 1, 4)
    assert library.num_threads == 1  # this thread's hold is its own
    first.__exit__(None, None, None)
    assert library.num_threads == 4
