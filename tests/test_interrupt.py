"""Nothing is lost on interruption: a fit stopped by KeyboardInterrupt or by a callback
keeps the weights of its last completed iteration, flagged with a ConvergenceWarning."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from sklearn_bp import BackpropClassifier
from sklearn_bp._loss import Objective

SOLVERS = ["lbfgs", "cg", "bfgs", "tnc"]


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _fit_for(kwargs, k, X, y):
    """The oracle: the same fit limited to k iterations."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return BackpropClassifier(**dict(kwargs, max_iter=k)).fit(X, y)


def _assert_same_weights(model, reference):
    for ours, theirs in zip(model.coefs_ + model.intercepts_,
                            reference.coefs_ + reference.intercepts_):
        np.testing.assert_array_equal(ours, theirs)


class _StopAt:
    """A FitCallback that, at the end of iteration `k`, records the weights it is shown
    and then raises KeyboardInterrupt (``stop="interrupt"``) or asks to stop."""

    def __init__(self, k, stop):
        self.k, self.stop = k, stop
        self.seen = []

    def setup(self, estimator, context):
        pass

    def teardown(self, estimator, context):
        pass

    def on_fit_task_begin(self, estimator, context):
        pass

    def on_fit_task_end(self, estimator, context, *, fitted_estimator=None):
        if not context.task_name.endswith("-iter") or fitted_estimator is None:
            return False
        self.seen.append([W.copy() for W in fitted_estimator.coefs_])
        if len(self.seen) == self.k:
            if self.stop == "interrupt":
                raise KeyboardInterrupt
            return True
        return False


@pytest.mark.parametrize("stop", ["interrupt", "request"])
@pytest.mark.parametrize("solver", SOLVERS)
def test_callback_stops_the_fit_at_iteration_k(iris, solver, stop):
    pytest.importorskip("sklearn.callback", reason="scikit-learn < 1.9 has no callbacks")
    X, y = iris
    k = 6
    kwargs = dict(hidden_layer_sizes=(4,), solver=solver, random_state=0)
    callback = _StopAt(k, stop)
    cause = "KeyboardInterrupt" if stop == "interrupt" else "a callback asking to stop"
    with pytest.warns(ConvergenceWarning,
                      match=rf"interrupted by {cause} after {k} iteration\(s\).*"
                            rf"weights of iteration {k}.*warm_start=True"):
        model = BackpropClassifier(**kwargs).set_callbacks(callback).fit(X, y)

    # The weights are those the callback saw at iteration k ...
    for ours, seen in zip(model.coefs_, callback.seen[-1]):
        np.testing.assert_array_equal(ours, seen)
    # ... those of a fit limited to k iterations, and the attributes agree with them.
    _assert_same_weights(model, _fit_for(kwargs, k, X, y))
    assert model.n_iter_ == len(model.loss_curve_) == k
    assert model.loss_ == model.loss_curve_[-1]
    np.testing.assert_array_equal(model.predict_proba(X),
                                  _fit_for(kwargs, k, X, y).predict_proba(X))


class _Interrupting(Objective):
    """The fit's own objective, but Ctrl-C (KeyboardInterrupt) strikes in the middle of
    its `interrupt_at`-th evaluation."""

    def __init__(self, objective, interrupt_at):
        self.objective, self.interrupt_at, self.count = objective, interrupt_at, 0
        self.loss, self.weight_sum = objective.loss, objective.weight_sum

    def partial_sums(self, theta):
        self.count += 1
        if self.count == self.interrupt_at:
            raise KeyboardInterrupt
        return self.objective.partial_sums(theta)

    def close(self):
        self.objective.close()


class _InterruptedAt(BackpropClassifier):
    """Raises KeyboardInterrupt in the middle of the `interrupt_at`-th cost evaluation, as
    Ctrl-C does during a long fit (with any scikit-learn version)."""

    interrupt_at = 10

    def _minimize(self, theta0, objective, **kwargs):
        return super()._minimize(theta0, _Interrupting(objective, self.interrupt_at),
                                 **kwargs)


@pytest.mark.parametrize("solver", SOLVERS)
def test_keyboard_interrupt_during_an_evaluation_keeps_the_last_iterate(iris, solver):
    X, y = iris
    kwargs = dict(hidden_layer_sizes=(4,), solver=solver, random_state=0)
    with pytest.warns(ConvergenceWarning, match="interrupted by KeyboardInterrupt"):
        model = _InterruptedAt(**kwargs).fit(X, y)
    k = model.n_iter_
    assert 1 <= k < _InterruptedAt.interrupt_at
    assert len(model.loss_curve_) == k and model.loss_ == model.loss_curve_[-1]
    _assert_same_weights(model, _fit_for(kwargs, k, X, y))


def test_keyboard_interrupt_before_the_first_iteration_propagates(iris):
    X, y = iris
    model = _InterruptedAt(hidden_layer_sizes=(4,), random_state=0)
    model.interrupt_at = 1
    with pytest.raises(KeyboardInterrupt):
        model.fit(X, y)
    assert not hasattr(model, "coefs_")

    # With warm_start, the previous weights stay untouched.
    model.interrupt_at = 10**9
    model.set_params(warm_start=True, max_iter=300).fit(X, y)
    before = [W.copy() for W in model.coefs_]
    model.interrupt_at = 1
    with pytest.raises(KeyboardInterrupt):
        model.fit(X, y)
    for W, W0 in zip(model.coefs_, before):
        np.testing.assert_array_equal(W, W0)


def test_interrupted_fit_can_be_continued(iris):
    X, y = iris
    kwargs = dict(hidden_layer_sizes=(4,), random_state=0)
    with pytest.warns(ConvergenceWarning, match="interrupted"):
        model = _InterruptedAt(**kwargs).fit(X, y)
    interrupted_loss = model.loss_
    model.interrupt_at = 10**9
    model.set_params(warm_start=True, max_iter=500).fit(X, y)
    assert model.loss_curve_[0] < interrupted_loss
    assert model.score(X, y) > 0.95


def test_interrupt_with_early_stopping_keeps_the_best_weights(iris):
    X, y = iris
    kwargs = dict(hidden_layer_sizes=(4,), early_stopping=True, validation_fraction=0.3,
                  n_iter_no_change=50, random_state=0)
    model = _InterruptedAt(**kwargs)
    model.interrupt_at = 25
    with pytest.warns(ConvergenceWarning, match="interrupted by KeyboardInterrupt"):
        model.fit(X, y)
    best = int(np.argmax(model.validation_scores_)) + 1
    assert model.best_validation_score_ == max(model.validation_scores_)
    assert model.loss_ == model.loss_curve_[best - 1]
    _assert_same_weights(model, _fit_for(dict(kwargs, early_stopping=True), best, X, y))
