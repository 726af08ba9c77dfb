"""What scikit-learn users expect: class weights, metadata routing, callbacks, early
stopping, solvers, warm starts, DataFrames, the HTML repr and secure persistence."""

import io
import pickle
import re
import subprocess
import sys
import warnings
from contextlib import redirect_stdout

import numpy as np
import pytest
import sklearn
from sklearn.base import clone
from sklearn.datasets import load_digits, load_iris, make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, make_scorer
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import LabelBinarizer, StandardScaler
from sklearn.utils import estimator_html_repr
from sklearn.utils.class_weight import compute_class_weight, compute_sample_weight

import sklearn_bp
from sklearn_bp import BackpropClassifier, backprop
from sklearn_bp import _monitor, _targets

ignore_convergence = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning"
)


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return StandardScaler().fit_transform(X[:600]), y[:600]


def _cost(model, X, Y, sample_weight=None):
    """The training cost at the fitted weights, recomputed from :mod:`backprop`."""
    theta = backprop.pack(model.coefs_, model.intercepts_)
    cost, _ = backprop.cost_and_gradient(
        theta, X, Y, model._layer_sizes(), alpha=model.alpha,
        sample_weight=sample_weight, activation=model.activation,
        output_activation=model.output_activation,
    )
    return cost


# ----------------------------------------------------------------------------------------
# 1. class_weight
# ----------------------------------------------------------------------------------------


def _unbalanced(random_state=0):
    X, y = make_classification(
        n_samples=150, n_features=6, n_informative=4, n_classes=3,
        weights=[0.6, 0.3, 0.1], random_state=random_state,
    )
    return X, y


@ignore_convergence
def test_class_weight_dict_multiplies_sample_weight():
    X, y = _unbalanced()
    s = np.random.RandomState(0).uniform(0.5, 2.0, size=y.shape[0])
    class_weight = {0: 0.5, 1: 2.0, 2: 4.0}
    per_sample = np.array([0.5, 2.0, 4.0])[y]
    kwargs = dict(hidden_layer_sizes=(5,), max_iter=60, random_state=0)
    weighted = BackpropClassifier(class_weight=class_weight, **kwargs).fit(
        X, y, sample_weight=s)
    expected = BackpropClassifier(**kwargs).fit(X, y, sample_weight=s * per_sample)
    np.testing.assert_allclose(weighted.predict_proba(X), expected.predict_proba(X),
                               rtol=1e-12, atol=1e-14)
    # Without sample_weight, the class weights alone; classes a dict omits weigh 1.
    partial = BackpropClassifier(class_weight={2: 4.0}, **kwargs).fit(X, y)
    expected = BackpropClassifier(**kwargs).fit(X, y, sample_weight=np.where(y == 2, 4.0, 1.0))
    np.testing.assert_allclose(partial.predict_proba(X), expected.predict_proba(X),
                               rtol=1e-12, atol=1e-14)


@ignore_convergence
def test_class_weight_balanced_is_compute_sample_weight():
    X, y = _unbalanced()
    kwargs = dict(hidden_layer_sizes=(5,), max_iter=60, random_state=0)
    balanced = BackpropClassifier(class_weight="balanced", **kwargs).fit(X, y)
    expected = BackpropClassifier(**kwargs).fit(
        X, y, sample_weight=compute_sample_weight("balanced", y))
    np.testing.assert_allclose(balanced.predict_proba(X), expected.predict_proba(X),
                               rtol=1e-12, atol=1e-14)


@pytest.mark.skipif(
    not _targets.CLASS_WEIGHT_TAKES_SAMPLE_WEIGHT,
    reason="this scikit-learn counts the classes of 'balanced' without sample_weight",
)
def test_class_weight_balanced_counts_weighted_samples():
    """An integer weight is a repetition, and a zero weight an absence, also for the
    class frequencies of "balanced" (as ``compute_class_weight`` counts them)."""
    X, y = _unbalanced()
    s = np.random.RandomState(1).randint(0, 4, size=y.shape[0]).astype(float)
    classes = np.unique(y)
    expected_cw = compute_class_weight("balanced", classes=classes, y=y[s > 0],
                                       sample_weight=s[s > 0])
    got = _targets.training_weights("balanced", "multiclass", classes, y, s)
    np.testing.assert_allclose(got, s * expected_cw[y], rtol=1e-15)

    # Both fits run until the gradient is below tol (BFGS, no ftol stop; no
    # ConvergenceWarning): L-BFGS-B's stop on the relative decrease left the two up to
    # 3e-4 apart for most initial weights, by where the rounding made each path stop.
    X = StandardScaler().fit_transform(X)
    kwargs = dict(hidden_layer_sizes=(4,), alpha=1.0, class_weight="balanced",
                  solver="bfgs", tol=1e-8, max_iter=1000, random_state=0)
    repeats = s.astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        weighted = BackpropClassifier(**kwargs).fit(X, y, sample_weight=s)
        repeated = BackpropClassifier(**kwargs).fit(np.repeat(X, repeats, axis=0),
                                                    np.repeat(y, repeats))
    # measured over 20 initial weights: at most 1.4e-7 apart
    np.testing.assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X),
                               rtol=0, atol=2e-6)


@ignore_convergence
def test_class_weight_string_labels_and_errors():
    X, y = _unbalanced()
    labels = np.array(["ant", "bee", "cat"])[y]
    model = BackpropClassifier(hidden_layer_sizes=(4,), max_iter=300, random_state=0,
                               class_weight={"cat": 3.0}).fit(X, labels)
    assert set(model.predict(X)) <= {"ant", "bee", "cat"}
    with pytest.raises(ValueError, match=r"keys \['dog'\] that are not classes of y"):
        BackpropClassifier(class_weight={"cat": 3.0, "dog": 1.0}).fit(X, labels)
    with pytest.raises(ValueError, match=r"keys \[7\] that are not classes of y"):
        BackpropClassifier(class_weight={7: 1.0}).fit(X, y)
    with pytest.raises(ValueError, match="finite non-negative"):
        BackpropClassifier(class_weight={0: -1.0}).fit(X, y)
    with pytest.raises(ValueError, match="every training sample has weight 0"):
        BackpropClassifier(class_weight={0: 0, 1: 0, 2: 0}).fit(X, y)


def test_class_weight_is_refused_for_multilabel_targets():
    X, _ = _unbalanced()
    Y = (np.random.RandomState(0).uniform(size=(X.shape[0], 3)) < 0.4).astype(int)
    with pytest.raises(ValueError, match="multilabel.*compute_sample_weight"):
        BackpropClassifier(class_weight="balanced").fit(X, Y)


# ----------------------------------------------------------------------------------------
# 2. Metadata routing
# ----------------------------------------------------------------------------------------

_fits_seen = []


class _RecordingClassifier(BackpropClassifier):
    """Records the sample_weight each fit receives."""

    def fit(self, X, y, sample_weight=None):
        _fits_seen.append(None if sample_weight is None else np.array(sample_weight))
        return super().fit(X, y, sample_weight=sample_weight)


@ignore_convergence
def test_metadata_routing_through_pipeline_and_grid_search():
    X, y = make_classification(n_samples=90, n_features=5, random_state=0)
    w = np.arange(1, 91) / 30.0  # distinct weights identify the rows
    params = dict(hidden_layer_sizes=(3,), max_iter=40, random_state=0)
    alphas = [1e-4, 1e-1]
    cv = StratifiedKFold(3)
    _fits_seen.clear()
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = make_pipeline(
            StandardScaler().set_fit_request(sample_weight=True),
            _RecordingClassifier(**params).set_fit_request(sample_weight=True)
                                         .set_score_request(sample_weight=True),
        )
        scoring = make_scorer(accuracy_score).set_score_request(sample_weight=True)
        search = GridSearchCV(pipe, {"_recordingclassifier__alpha": alphas}, cv=cv,
                              scoring=scoring)
        search.fit(X, y, sample_weight=w)

    # Every fit got the weights of its own training rows; the refit got all of them.
    folds = list(cv.split(X, y))
    expected = [w[train] for _ in alphas for train, _ in folds] + [w]
    assert len(_fits_seen) == len(expected)
    assert sorted(map(tuple, _fits_seen)) == sorted(map(tuple, expected))

    # The oracle: the same fits by hand, scored with the test rows' weights.
    for a, alpha in enumerate(alphas):
        for i, (train, test) in enumerate(folds):
            manual = make_pipeline(StandardScaler(), BackpropClassifier(alpha=alpha, **params))
            manual.fit(X[train], y[train], standardscaler__sample_weight=w[train],
                       backpropclassifier__sample_weight=w[train])
            score = accuracy_score(y[test], manual.predict(X[test]), sample_weight=w[test])
            assert search.cv_results_[f"split{i}_test_score"][a] == pytest.approx(score,
                                                                                 abs=1e-15)
    best = search.best_params_["_recordingclassifier__alpha"]
    manual = make_pipeline(StandardScaler(), BackpropClassifier(alpha=best, **params))
    manual.fit(X, y, standardscaler__sample_weight=w, backpropclassifier__sample_weight=w)
    np.testing.assert_array_equal(search.best_estimator_[-1].coefs_[0], manual[-1].coefs_[0])


# ----------------------------------------------------------------------------------------
# 3. Callbacks (scikit-learn >= 1.9)
# ----------------------------------------------------------------------------------------


class _Recorder:
    """A FitCallback that records every hook call and the fitted estimator it is shown."""

    def __init__(self):
        self.calls = []

    def setup(self, estimator, context):
        self.calls.append(("setup", context.task_name, None))

    def teardown(self, estimator, context):
        self.calls.append(("teardown", context.task_name, None))

    def on_fit_task_begin(self, estimator, context, *, fitted_estimator=None):
        self.calls.append(("begin", context.task_name, fitted_estimator))

    def on_fit_task_end(self, estimator, context, *, X=None, fitted_estimator=None):
        self.calls.append(("end", context.task_name, fitted_estimator))


def _needs_callbacks():
    pytest.importorskip("sklearn.callback", reason="scikit-learn < 1.9 has no callbacks")


@pytest.mark.parametrize("solver", ["lbfgs", "cg", "bfgs", "tnc"])
@ignore_convergence
def test_callback_hooks_and_fitted_estimators(iris, solver):
    _needs_callbacks()
    X, y = iris
    recorder = _Recorder()
    kwargs = dict(hidden_layer_sizes=(4,), solver=solver, max_iter=8, random_state=0)
    model = BackpropClassifier(**kwargs).set_callbacks(recorder).fit(X, y)
    names = [name for name, _, _ in recorder.calls]
    assert names.count("setup") == names.count("teardown") == 1
    task = f"{solver}-iter"
    ends = [est for name, t, est in recorder.calls if name == "end" and t == task]
    begins = [est for name, t, est in recorder.calls if name == "begin" and t == task]
    assert len(begins) == len(ends) >= model.n_iter_ == 8
    # Iteration k's fitted estimator is the fit with max_iter=k.
    for k in (1, 5, 8):
        alone = BackpropClassifier(**dict(kwargs, max_iter=k)).fit(X, y)
        np.testing.assert_array_equal(ends[k - 1].coefs_[0], alone.coefs_[0])
        np.testing.assert_array_equal(ends[k - 1].predict_proba(X), alone.predict_proba(X))
        assert ends[k - 1].n_iter_ == k
    # The left-over task after the last iteration (if any) is empty.
    assert all(est is None for est in ends[model.n_iter_:])


@ignore_convergence
def test_progress_bar(iris, capsys):
    _needs_callbacks()
    pytest.importorskip("rich")
    from sklearn.callback import ProgressBar

    X, y = iris
    BackpropClassifier(hidden_layer_sizes=(3,), max_iter=10).set_callbacks(
        ProgressBar()).fit(X, y)
    out = capsys.readouterr().out
    assert re.search(r"BackpropClassifier - fit", out)
    assert re.search(r"100%", out) and not re.search(r"\b[0-9]{1,2}%", out)


@ignore_convergence
def test_progress_bar_carried_by_pipeline_and_grid_search(iris, capsys):
    _needs_callbacks()
    pytest.importorskip("rich")
    from sklearn.callback import ProgressBar

    X, y = iris
    pipe = make_pipeline(StandardScaler(), BackpropClassifier(hidden_layer_sizes=(3,),
                                                              max_iter=5))
    pipe.set_callbacks(ProgressBar()).fit(X, y)
    out = capsys.readouterr().out
    assert "Pipeline - fit-final-estimator | BackpropClassifier - fit" in out

    pipe.set_callbacks()
    search = GridSearchCV(pipe, {"backpropclassifier__alpha": [1e-4, 1.0]}, cv=2)
    search.set_callbacks(ProgressBar(max_propagation_depth=None)).fit(X, y)
    out = capsys.readouterr().out
    # 2 candidates x 2 folds, plus the refit.
    assert out.count("Pipeline - fit-final-estimator | BackpropClassifier - fit") == 5
    assert re.search(r"100%", out) and not re.search(r"\b[0-9]{1,2}%", out)


@ignore_convergence
def test_scoring_monitor_records_a_score_per_iteration(iris):
    """With a softmax output and no penalty, the training cost is the log-loss, so the
    monitor's per-iteration neg_log_loss is minus loss_curve_."""
    _needs_callbacks()
    pytest.importorskip("pandas")
    from sklearn.callback import ScoringMonitor

    X, y = iris
    monitor = ScoringMonitor(scoring=["neg_log_loss", "accuracy"])
    model = BackpropClassifier(hidden_layer_sizes=(4,), output_activation="softmax",
                               alpha=0.0, max_iter=12, random_state=0)
    model.set_callbacks(monitor).fit(X, y)
    log = monitor.get_logs().data_as_pandas
    per_iter = log[log["task_name"] == "lbfgs-iter"]
    assert len(per_iter) == model.n_iter_ == 12
    np.testing.assert_allclose(-per_iter["neg_log_loss"].to_numpy(), model.loss_curve_,
                               rtol=1e-10)
    final = log[log["task_name"] == "fit"]
    assert final["accuracy"].item() == model.score(X, y)


@pytest.mark.skipif(_monitor.CALLBACKS_SUPPORTED,
                    reason="this scikit-learn has sklearn.callback")
@ignore_convergence
def test_set_callbacks_raises_a_clear_error_before_scikit_learn_1_9(iris):
    X, y = iris
    model = BackpropClassifier(hidden_layer_sizes=(3,), max_iter=5).fit(X, y)
    assert model.n_iter_ == 5 and len(model.loss_curve_) == 5
    with pytest.raises(ImportError, match="set_callbacks needs scikit-learn >= 1.9"):
        model.set_callbacks(object())


@pytest.mark.skipif(not _monitor.CALLBACKS_SUPPORTED,
                    reason="the real scikit-learn < 1.9 is tested directly")
def test_set_callbacks_without_sklearn_callback_module():
    """As with scikit-learn < 1.9 (simulated: sklearn.callback unimportable while
    sklearn_bp is imported), set_callbacks raises a clear error and fitting works."""
    code = """
import sys, warnings
import sklearn.base, sklearn.model_selection, sklearn.preprocessing
import sklearn.utils.class_weight, sklearn.utils.validation
real = sys.modules["sklearn.callback"]
sys.modules["sklearn.callback"] = None
import sklearn_bp._classifier as c
sys.modules["sklearn.callback"] = real
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
warnings.simplefilter("ignore", ConvergenceWarning)
assert not c._monitor.CALLBACKS_SUPPORTED
X, y = load_iris(return_X_y=True)
model = c.BackpropClassifier(hidden_layer_sizes=(3,), max_iter=5).fit(X, y)
assert model.n_iter_ == 5 and len(model.loss_curve_) == 5
try:
    model.set_callbacks(object())
except ImportError as exc:
    print(exc)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "set_callbacks needs scikit-learn >= 1.9" in result.stdout


# ----------------------------------------------------------------------------------------
# 4. Early stopping
# ----------------------------------------------------------------------------------------


def _stopping_iteration(scores, tol, n_iter_no_change):
    """Independent replay of the rule: the first iteration at which `n_iter_no_change`
    consecutive scores have not beaten the best so far by `tol`."""
    best, count = -np.inf, 0
    for i, score in enumerate(scores, start=1):
        count = count + 1 if score < best + tol else 0
        best = max(best, score)
        if count >= n_iter_no_change:
            return i
    return None


def test_early_stopping_keeps_the_best_weights(digits):
    X, y = digits
    kwargs = dict(hidden_layer_sizes=(10,), alpha=1e-5, early_stopping=True,
                  validation_fraction=0.2, n_iter_no_change=5, random_state=3)
    out = io.StringIO()
    with redirect_stdout(out):
        model = BackpropClassifier(verbose=1, **kwargs).fit(X, y)
    scores = model.validation_scores_
    assert len(scores) == len(model.loss_curve_) == model.n_iter_ < 200
    lines = out.getvalue().splitlines()
    assert len(lines) == model.n_iter_ + 1 and lines[-1].endswith("Stopping.")
    assert lines[0].endswith(f"validation score = {scores[0]:.6f}")
    assert model.n_iter_ == _stopping_iteration(scores, model.tol, 5)
    assert model.best_validation_score_ == max(scores)

    # The documented split; the kept weights score best_validation_score_ on it.
    train, held_out = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y,
                                       random_state=3)
    assert model.score(X[held_out], y[held_out]) == model.best_validation_score_
    # loss_ is the training cost of the kept weights, on the training rows only.
    best_iter = int(np.argmax(scores)) + 1
    assert model.loss_ == model.loss_curve_[best_iter - 1]
    Y_train = LabelBinarizer().fit(y).transform(y[np.sort(train)])
    assert _cost(model, X[np.sort(train)], Y_train) == pytest.approx(model.loss_, rel=1e-10)


@ignore_convergence
def test_early_stopping_scores_every_iteration(iris):
    """Each validation score is the held-out accuracy of that iteration's weights, and
    the training rows are the others."""
    _needs_callbacks()
    X, y = iris
    recorder = _Recorder()
    model = BackpropClassifier(hidden_layer_sizes=(3,), early_stopping=True,
                               validation_fraction=0.3, max_iter=15, random_state=0)
    model.set_callbacks(recorder).fit(X, y)
    train, held_out = train_test_split(np.arange(len(y)), test_size=0.3, stratify=y,
                                       random_state=0)
    ends = [est for name, t, est in recorder.calls
            if name == "end" and t == "lbfgs-iter" and est is not None]
    assert len(ends) == model.n_iter_
    got = [est.score(X[held_out], y[held_out]) for est in ends]
    assert got == model.validation_scores_


def test_early_stopping_with_weights_and_multilabel(iris):
    X, y = iris
    w = np.random.RandomState(0).uniform(0.1, 3, size=len(y))
    model = BackpropClassifier(hidden_layer_sizes=(3,), early_stopping=True,
                               n_iter_no_change=3, validation_fraction=0.3,
                               random_state=1).fit(X, y, sample_weight=w)
    _, held_out = train_test_split(np.arange(len(y)), test_size=0.3, stratify=y,
                                   random_state=1)
    assert model.best_validation_score_ == pytest.approx(
        model.score(X[held_out], y[held_out], sample_weight=w[held_out]), abs=1e-15)

    Y = np.column_stack([y == 0, y == 1, X[:, 0] > 0]).astype(int)
    model = BackpropClassifier(hidden_layer_sizes=(3,), early_stopping=True,
                               n_iter_no_change=3, validation_fraction=0.3,
                               random_state=1).fit(X, Y)
    _, held_out = train_test_split(np.arange(len(y)), test_size=0.3, random_state=1)
    assert model.best_validation_score_ == model.score(X[held_out], Y[held_out])


def test_early_stopping_off_and_errors(iris):
    X, y = iris
    model = BackpropClassifier(hidden_layer_sizes=(3,), max_iter=300).fit(X, y)
    assert model.validation_scores_ is None and model.best_validation_score_ is None
    with pytest.raises(ValueError, match="early_stopping=True could not hold out"):
        BackpropClassifier(early_stopping=True, validation_fraction=0.01).fit(X, y)
    with pytest.raises(ValueError, match="validation_fraction"):
        BackpropClassifier(early_stopping=True, validation_fraction=1.0).fit(X, y)
    # Weights that leave nothing to train on, or nothing to validate on.
    _, held_out = train_test_split(np.arange(len(y)), test_size=0.1, stratify=y,
                                   random_state=0)
    only_held_out = np.zeros(len(y))
    only_held_out[held_out] = 1.0
    model = BackpropClassifier(early_stopping=True, random_state=0)
    with pytest.raises(ValueError, match="at least one non-zero.*not held out"):
        model.fit(X, y, sample_weight=only_held_out)
    with pytest.raises(ValueError, match="validation score is undefined"):
        model.fit(X, y, sample_weight=1.0 - only_held_out)


class _ArrayOnly:
    """An array-like that implements ``__array__`` and nothing else."""

    def __init__(self, array):
        self.array = np.asarray(array)

    def __array__(self, dtype=None, copy=None):
        return self.array if dtype is None else self.array.astype(dtype)


_SPARSE_FORMATS = ["coo_matrix", "coo_array", "dia_matrix", "bsr_matrix", "bsr_array",
                   "lil_matrix", "csc_matrix"]


@pytest.mark.parametrize("container", [*_SPARSE_FORMATS, "__array__ only"])
@ignore_convergence
@pytest.mark.filterwarnings("ignore::scipy.sparse.SparseEfficiencyWarning")  # DIA
def test_early_stopping_accepts_what_fit_accepts(iris, container):
    """Early stopping on every input fit takes gives the fit on the validated data
    (CSR or an array), and the callbacks see the training rows (as CSR for sparse
    input, whose other formats may have no row indexing)."""
    import scipy.sparse as sp

    X, y = iris
    kwargs = dict(hidden_layer_sizes=(3,), early_stopping=True, max_iter=10,
                  random_state=0)
    if container == "__array__ only":
        given, expected = (_ArrayOnly(X), _ArrayOnly(y)), (X, y)
    else:
        given, expected = (getattr(sp, container)(X), y), (sp.csr_matrix(X), y)
    model = BackpropClassifier(**kwargs)
    if _monitor.CALLBACKS_SUPPORTED:
        from sklearn.callback import ScoringMonitor

        monitor = ScoringMonitor(scoring="accuracy")
        model.set_callbacks(monitor)
    model.fit(*given)
    reference = BackpropClassifier(**kwargs).fit(*expected)
    for a, b in zip(model.coefs_ + model.intercepts_,
                    reference.coefs_ + reference.intercepts_):
        np.testing.assert_array_equal(a, b)
    assert model.validation_scores_ == reference.validation_scores_
    if _monitor.CALLBACKS_SUPPORTED:
        assert len(monitor.get_logs().data) == 1 + model.n_iter_


@ignore_convergence
def test_early_stopping_with_n_iter_no_change_inf_never_stops_on_the_score(digits):
    """As MLPClassifier takes it: the fit runs to max_iter (or convergence), scoring
    every iteration, and keeps the best-scoring weights."""
    X, y = digits
    kwargs = dict(hidden_layer_sizes=(10,), alpha=1e-5, early_stopping=True,
                  validation_fraction=0.2, max_iter=40, random_state=3)
    stopped = BackpropClassifier(n_iter_no_change=5, **kwargs).fit(X, y)
    assert stopped.n_iter_ < 40  # the data on which a finite patience stops early
    out = io.StringIO()
    with redirect_stdout(out):
        model = BackpropClassifier(n_iter_no_change=np.inf, verbose=1, **kwargs).fit(X, y)
    assert model.n_iter_ == 40 == len(model.validation_scores_)
    assert "Stopping" not in out.getvalue()
    assert model.best_validation_score_ == max(model.validation_scores_)
    best_iter = int(np.argmax(model.validation_scores_)) + 1
    assert model.loss_ == model.loss_curve_[best_iter - 1]
    with pytest.raises(ValueError, match="n_iter_no_change"):
        BackpropClassifier(n_iter_no_change=2.5).fit(X, y)


@pytest.mark.parametrize("solver", ["lbfgs", "cg", "bfgs"])
def test_early_stopping_scores_a_fit_that_ends_before_its_first_iteration(iris, solver):
    """A fit whose initial gradient already meets tol returns its initial weights after
    0 iterations; early stopping scores them, and they are the best."""
    X, y = iris
    model = BackpropClassifier(hidden_layer_sizes=(3,), early_stopping=True, tol=10.0,
                               solver=solver, random_state=0).fit(X, y)
    assert model.n_iter_ == 0 and model.loss_curve_ == []
    _, held_out = train_test_split(np.arange(len(y)), test_size=0.1, stratify=y,
                                   random_state=0)
    score = model.score(X[held_out], y[held_out])
    assert model.validation_scores_ == [score] and model.best_validation_score_ == score


@pytest.mark.parametrize("y_name, labels, fraction, message", [
    ("a class of one sample", [0] * 15 + [1] * 14 + [2], 0.1,
     "every class needs at least 2 samples .* but class 2 has only 1. Provide more "
     "samples of it, or set early_stopping=False"),
    ("two classes of one sample", ["a"] * 15 + ["b"] * 13 + ["c", "d"], 0.1,
     "but classes 'c', 'd' have only 1"),
    ("fewer held out than classes", [0, 1, 2] * 6 + [0, 1], 0.1,
     "it holds out 2, fewer than the 3 classes, .* Increase validation_fraction to at "
     "least 0.15,"),
    ("fewer left to train on than classes", [0, 1, 2] * 6 + [0, 1], 0.9,
     "it leaves 2 to train on, fewer than the 3 classes, .* Decrease "
     "validation_fraction to at most 0.85,"),
])
@ignore_convergence
def test_early_stopping_on_tiny_data_names_the_problem_and_the_fix(y_name, labels,
                                                                   fraction, message):
    """MLPClassifier (scikit-learn 1.9) stratifies the hold-out of binary targets only,
    and raises train_test_split's message there; this estimator stratifies every class
    (as it always has: the same split, the same fits) and says which class, or which
    fraction, to change. The fractions it suggests work."""
    y = np.array(labels)
    X = np.random.RandomState(0).normal(size=(len(y), 3))
    with pytest.raises(ValueError, match="early_stopping=True could not hold out "
                                         f"validation_fraction={fraction} of the "
                                         f"{len(y)} samples: .*{message}"):
        BackpropClassifier(hidden_layer_sizes=(2,), early_stopping=True, max_iter=2,
                           validation_fraction=fraction).fit(X, y)
    suggested = re.search(r"validation_fraction to at (?:least|most) ([0-9.]+),", message)
    if suggested:
        BackpropClassifier(hidden_layer_sizes=(2,), early_stopping=True, max_iter=2,
                           validation_fraction=float(suggested.group(1))).fit(X, y)


@ignore_convergence
def test_tags_say_what_fit_does_with_multilabel_targets(iris):
    """Multilabel targets need logistic outputs and no class weights: the tags say so,
    and fit refuses the others."""
    from sklearn.utils import get_tags

    X, y = iris
    Y = np.column_stack([y == 0, y == 1, X[:, 0] > 0]).astype(int)
    for params, multilabel in [({}, True), ({"output_activation": "softmax"}, False),
                               ({"class_weight": "balanced"}, False),
                               ({"class_weight": {0: 2.0}}, False)]:
        model = BackpropClassifier(hidden_layer_sizes=(2,), max_iter=5, **params)
        assert get_tags(model).classifier_tags.multi_label is multilabel
        if multilabel:
            model.fit(X, Y)
        else:
            with pytest.raises(ValueError):
                model.fit(X, Y)


# ----------------------------------------------------------------------------------------
# 5. Solvers
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("solver", ["lbfgs", "cg", "bfgs", "tnc"])
def test_solvers_converge_and_report_alike(iris, solver):
    X, y = iris
    out = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        with redirect_stdout(out):
            model = BackpropClassifier(hidden_layer_sizes=(3,), solver=solver,
                                       max_iter=2000, verbose=1, random_state=0).fit(X, y)
    assert model.score(X, y) > 0.95
    assert model.n_iter_ == len(model.loss_curve_) == len(out.getvalue().splitlines())
    assert model.loss_curve_[-1] == pytest.approx(model.loss_, rel=1e-9)
    Y = LabelBinarizer().fit_transform(y)
    assert _cost(model, X, Y) == pytest.approx(model.loss_, rel=1e-10)
    # At convergence the gradient is small: scipy's gtol (TNC scales it by its own
    # variable scaling, so only an order of magnitude is asserted there).
    theta = backprop.pack(model.coefs_, model.intercepts_)
    _, grad = backprop.cost_and_gradient(theta, X, Y, model._layer_sizes(),
                                         alpha=model.alpha)
    assert np.max(np.abs(grad)) <= (1e-2 if solver == "tnc" else model.tol)


@pytest.mark.parametrize("solver", ["lbfgs", "cg", "bfgs", "tnc"])
def test_solvers_warn_at_max_iter(iris, solver):
    X, y = iris
    with pytest.warns(ConvergenceWarning, match=r"after 4 iteration\(s\).*max_iter"):
        model = BackpropClassifier(hidden_layer_sizes=(3,), solver=solver, max_iter=4,
                                   random_state=0).fit(X, y)
    assert model.n_iter_ == len(model.loss_curve_) == 4


@pytest.mark.parametrize("solver", ["lbfgs", "tnc"])
def test_max_fun_is_honoured(iris, solver):
    X, y = iris
    with pytest.warns(ConvergenceWarning, match="max_fun"):
        model = BackpropClassifier(hidden_layer_sizes=(3,), solver=solver, max_fun=12,
                                   random_state=0).fit(X, y)
    assert model.n_iter_ <= 12


@pytest.mark.parametrize("solver", ["cg", "bfgs"])
def test_max_fun_is_refused_where_scipy_has_no_such_limit(iris, solver):
    X, y = iris
    with pytest.raises(ValueError, match=f"solver='{solver}'.*max_fun=50 cannot be"):
        BackpropClassifier(solver=solver, max_fun=50).fit(X, y)


def test_solver_mapping_is_documented():
    doc = BackpropClassifier.__doc__
    for solver, method in _monitor.SOLVER_METHODS.items():
        assert f'``"{solver}"``: ``method="{method}"``' in doc


# ----------------------------------------------------------------------------------------
# 6. warm_start
# ----------------------------------------------------------------------------------------


def test_warm_start_continues_the_loss_curve_downward(iris):
    X, y = iris
    Y = LabelBinarizer().fit_transform(y)
    model = BackpropClassifier(hidden_layer_sizes=(4,), max_iter=5, warm_start=True,
                               random_state=0)
    curves = []
    for _ in range(3):
        with pytest.warns(ConvergenceWarning):
            model.fit(X, y)
        curves.append(model.loss_curve_)
        assert model.n_iter_ == 5
        assert _cost(model, X, Y) == pytest.approx(model.loss_, rel=1e-10)
    for before, after in zip(curves, curves[1:]):
        # Each warm fit starts from the previous weights (cost before[-1]) and goes down.
        assert after[0] < before[-1]
        assert np.all(np.diff(after) <= 0)
    # A cold fit starts over.
    model.set_params(warm_start=False)
    with pytest.warns(ConvergenceWarning):
        model.fit(X, y)
    assert model.loss_curve_ == curves[0]


def test_warm_start_refuses_other_classes_or_network(iris):
    X, y = iris
    model = BackpropClassifier(hidden_layer_sizes=(3,), warm_start=True, max_iter=300,
                               random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="same classes.*warm_start=False"):
        model.fit(X[y < 2], y[y < 2])
    with pytest.raises(ValueError, match="same classes"):
        model.fit(X, np.array(["a", "b", "c"])[y])
    with pytest.raises(ValueError, match="same network.*warm_start=False"):
        model.set_params(hidden_layer_sizes=(4,)).fit(X, y)


# ----------------------------------------------------------------------------------------
# 7. pandas and the HTML repr
# ----------------------------------------------------------------------------------------


def test_dataframe_column_names_consistency():
    from sklearn.utils.estimator_checks import check_dataframe_column_names_consistency

    pytest.importorskip("pandas")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check_dataframe_column_names_consistency(
            "BackpropClassifier", BackpropClassifier(hidden_layer_sizes=(3,), max_iter=20)
        )


def test_dataframes_give_no_spurious_warnings():
    pd = pytest.importorskip("pandas")
    X, y = load_iris(return_X_y=True, as_frame=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = make_pipeline(StandardScaler().set_output(transform="pandas"),
                              BackpropClassifier(hidden_layer_sizes=(3,), max_iter=500,
                                                 early_stopping=True, random_state=0))
        model.fit(X, y)
        model.predict_proba(X)
        clf = BackpropClassifier(hidden_layer_sizes=(3,), max_iter=500,
                                 random_state=0).fit(X, y)
        clf.predict(X)
    np.testing.assert_array_equal(clf.feature_names_in_, X.columns)
    assert model[-1].feature_names_in_.tolist() == X.columns.tolist()
    with pytest.raises(ValueError, match="feature names"):
        clf.predict(X[X.columns[::-1]])
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        clf.predict(X.to_numpy())
    assert isinstance(pd.Series(clf.predict(X)), pd.Series)


def test_scoring_monitor_on_dataframe_gives_no_feature_name_warning():
    _needs_callbacks()
    pytest.importorskip("pandas")
    from sklearn.callback import ScoringMonitor

    X, y = load_iris(return_X_y=True, as_frame=True)
    monitor = ScoringMonitor(scoring="accuracy")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", ConvergenceWarning)
        BackpropClassifier(hidden_layer_sizes=(3,), max_iter=5, early_stopping=True,
                           random_state=0).set_callbacks(monitor).fit(X, y)
    assert len(monitor.get_logs().data) == 1 + 5


def test_html_repr_links_to_no_documentation():
    # The documentation is not hosted anywhere, so the HTML repr links nowhere for
    # BackpropClassifier (an address that does not exist would be worse).
    assert BackpropClassifier()._get_doc_link() == ""
    html = estimator_html_repr(make_pipeline(StandardScaler(), BackpropClassifier()))
    assert "readthedocs" not in html and "sklearn_bp.BackpropClassifier.html" not in html
    assert "scikit-learn.org" in html  # StandardScaler keeps scikit-learn's own link


# ----------------------------------------------------------------------------------------
# 8. Persistence
# ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fitted(iris):
    X, y = iris
    model = BackpropClassifier(hidden_layer_sizes=(4,), early_stopping=True,
                               class_weight="balanced", random_state=0).fit(X, y)
    return model, X


def test_skops_round_trip_alone_and_in_a_pipeline(fitted):
    sio = pytest.importorskip("skops.io")
    model, X = fitted
    ours = "sklearn_bp._classifier.BackpropClassifier"
    X_raw, y = load_iris(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), clone(model)).fit(X_raw, y)
    for obj, data in ((model, X), (pipe, X_raw)):
        dumped = sio.dumps(obj)
        assert sio.get_untrusted_types(data=dumped) == [ours]
        with pytest.raises(Exception, match="Untrusted types"):
            sio.loads(dumped)
        loaded = sio.loads(dumped, trusted=[BackpropClassifier])
        np.testing.assert_array_equal(loaded.predict_proba(data), obj.predict_proba(data))
    assert loaded[-1].validation_scores_ == pipe[-1].validation_scores_


def test_pickle_from_another_version_warns(fitted, monkeypatch):
    model, X = fitted
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        same = pickle.loads(pickle.dumps(model))
    assert not hasattr(same, "_sklearn_bp_version")
    np.testing.assert_array_equal(same.predict_proba(X), model.predict_proba(X))

    monkeypatch.setattr("sklearn_bp._base.__version__", "0.0.1")
    old = pickle.dumps(model)
    monkeypatch.undo()
    with pytest.warns(UserWarning, match=f"saved with sklearn_bp 0.0.1 and is loaded "
                                         f"with sklearn_bp {sklearn_bp.__version__}"):
        pickle.loads(old)
