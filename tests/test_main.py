"""The demo: ``python -m sklearn_bp``."""

import re
import subprocess
import sys

import pytest

from sklearn_bp.__main__ import main

LIKE_FOR_LIKE = re.compile(
    r"training cost (\S+) \(ours\) and (\S+) \(MLPClassifier\) after (\d+) and (\d+) "
    r"iterations; fit time ratio (\S+)")


def _rows(out):
    return [line for line in out.splitlines()
            if line.startswith(("BackpropClassifier", "MLPClassifier"))]


@pytest.mark.parametrize("dataset, n_classes, outputs", [
    ("iris", 3, ["logistic", "softmax", "softmax"]),
    ("breast_cancer", 2, ["logistic", "logistic"]),
])
def test_demo_prints_every_model_and_the_like_for_like_pair(capsys, dataset, n_classes,
                                                             outputs):
    """Ours with its default output and, for multiclass targets, with MLPClassifier's
    softmax; then MLPClassifier, whose model the demo's like-for-like pair shares."""
    assert main(["--dataset", dataset, "--hidden", "5", "--max-iter", "50",
                 "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert f"{n_classes} classes" in out
    rows = _rows(out)
    assert [row.split()[0] for row in rows] == (
        ["BackpropClassifier"] * (len(outputs) - 1) + ["MLPClassifier"])
    assert [row.split()[-7] for row in rows] == outputs
    for row in rows:
        train_acc, test_acc = (float(v) for v in row.split()[-6:-4])
        assert 0.8 <= train_acc <= 1.0 and 0.7 <= test_acc <= 1.0
        test_log_loss = float(row.split()[-2])
        assert 0.0 < test_log_loss < 1.0  # held-out log-loss of a fitted model
    # The same model from the same initial weights: on these small problems both
    # optimisers take the same path (measured: 1e-14 apart, the same iterations).
    ours, mlp, ours_iter, mlp_iter, ratio = LIKE_FOR_LIKE.search(out).groups()
    assert float(ours) == pytest.approx(float(mlp), rel=1e-6)
    assert ours_iter == mlp_iter
    assert float(ratio) > 0


def test_demo_without_mlp_prints_no_comparison(capsys):
    assert main(["--dataset", "wine", "--hidden", "5", "--max-iter", "20", "--repeat",
                 "1", "--no-mlp"]) == 0
    out = capsys.readouterr().out
    assert [row.split()[0] for row in _rows(out)] == ["BackpropClassifier"] * 2
    assert "Like for like" not in out


@pytest.mark.parametrize("argv, message", [
    (["--repeat", "0"], "--repeat: must be at least 1, got 0"),
    (["--hidden", "0"], "--hidden: must be at least 1, got 0"),
    (["--hidden", "25", "x"], "--hidden: must be a whole number, got 'x'"),
    (["--max-iter", "0"], "--max-iter: must be at least 1, got 0"),
    (["--alpha", "-1"], "--alpha: must be at least 0, got -1.0"),
    (["--alpha", "nan"], "--alpha: must be a finite number, got 'nan'"),
    (["--test-size", "1.5"], "--test-size: must be between 0 and 1, got 1.5"),
    (["--test-size", "0.999"],
     "--test-size: 0.999 of the 1797 samples of digits puts 1796 in the test set and 1 "
     "in the training set, but each needs a sample of each of the 10 classes: use a "
     "value from 0.006 to 0.994"),
    (["--dataset", "iris", "--test-size", "0.01"],
     "--test-size: 0.01 of the 150 samples of iris puts 2 in the test set and 148 in the "
     "training set, but each needs a sample of each of the 3 classes: use a value from "
     "0.02 to 0.98"),
    (["--random-state", "-1"], "--random-state: must be at least 0, got -1"),
])
def test_demo_rejects_bad_options_as_argparse_does(capsys, argv, message):
    """Errors in usage, with exit status 2, never a traceback."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: ") and message in err


def test_demo_accepts_the_ends_of_the_test_size_range(capsys):
    for test_size in ("0.02", "0.98"):
        assert main(["--dataset", "iris", "--hidden", "3", "--max-iter", "5", "--repeat",
                     "1", "--no-mlp", "--test-size", test_size]) == 0


def test_demo_help_lists_options():
    result = subprocess.run([sys.executable, "-m", "sklearn_bp", "--help"],
                            capture_output=True, text=True, check=True)
    for option in ("--dataset", "--hidden", "--alpha", "--max-iter", "--repeat"):
        assert option in result.stdout


def test_demo_on_diabetes_fits_the_regressors_side_by_side(capsys):
    """The regression dataset: BackpropRegressor and MLPRegressor, the same model from
    the same initial weights, with train/test R^2, iterations and fit time."""
    assert main(["--dataset", "diabetes", "--hidden", "5", "--max-iter", "40",
                 "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines()
            if line.startswith(("BackpropRegressor", "MLPRegressor"))]
    assert [row.split()[0] for row in rows] == ["BackpropRegressor", "MLPRegressor"]
    for row in rows:
        assert row.split()[-7] == "identity"
        train_r2, test_r2 = (float(v) for v in row.split()[-6:-4])
        assert 0.4 <= train_r2 <= 1.0 and 0.2 <= test_r2 <= 1.0
    match = re.search(r"training cost (\S+) \(ours\) and (\S+) \(MLPRegressor\) after "
                      r"(\d+) and (\d+) iterations; fit time ratio (\S+)", out)
    ours, mlp, ours_iter, mlp_iter, ratio = match.groups()
    assert float(ours) == pytest.approx(float(mlp), rel=1e-6)
    assert ours_iter == mlp_iter and float(ratio) > 0
