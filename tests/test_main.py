"""The demo: ``python -m sklearn_bp``."""

import subprocess
import sys

from sklearn_bp.__main__ import main


def test_demo_prints_both_models(capsys):
    assert main(["--dataset", "iris", "--hidden", "5", "--max-iter", "50"]) == 0
    out = capsys.readouterr().out
    assert "iris, 150 samples, 4 features, 3 classes" in out
    rows = [line for line in out.splitlines()
            if line.startswith(("BackpropClassifier", "MLPClassifier"))]
    assert len(rows) == 2
    for row in rows:
        train_acc, test_acc = (float(v) for v in row.split()[-6:-4])
        assert 0.8 <= train_acc <= 1.0 and 0.7 <= test_acc <= 1.0
        test_log_loss = float(row.split()[-2])
        assert 0.0 < test_log_loss < 1.0  # held-out log-loss of a fitted model


def test_demo_help_lists_options():
    result = subprocess.run([sys.executable, "-m", "sklearn_bp", "--help"],
                            capture_output=True, text=True, check=True)
    for option in ("--dataset", "--hidden", "--alpha", "--max-iter"):
        assert option in result.stdout
