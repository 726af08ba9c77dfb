"""
===========================================
Early stopping and per-iteration monitoring
===========================================

With ``early_stopping=True``, ``BackpropClassifier`` holds out part of the training data,
scores the network on it after every iteration, stops when the score has not improved
for ``n_iter_no_change`` iterations, and keeps the best-scoring weights. This example
follows such a fit on the digits iteration by iteration: the cost (``loss_curve_``), the held-out
accuracy (``validation_scores_``), and, with scikit-learn 1.9's callbacks, the training
accuracy recorded by ``sklearn.callback.ScoringMonitor``.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from sklearn_bp import BackpropClassifier

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

# Almost no penalty: without early stopping the fit drives the training cost towards
# zero.
net = BackpropClassifier(
    hidden_layer_sizes=(25,), alpha=1e-4, early_stopping=True, n_iter_no_change=10,
    random_state=0,
)

try:  # scikit-learn >= 1.9
    from sklearn.callback import ScoringMonitor

    monitor = ScoringMonitor(scoring="accuracy")
    net.set_callbacks(monitor)
except ImportError:
    monitor = None

net.fit(X_train, y_train)
best = int(np.argmax(net.validation_scores_)) + 1
print(f"early stopping: {net.n_iter_} iterations, best held-out accuracy "
      f"{net.best_validation_score_:.3f} at iteration {best}, "
      f"test accuracy {net.score(X_test, y_test):.3f}")

# Two references without early stopping, trained on all the training rows.
for alpha in [1e-4, 1.0]:
    full = BackpropClassifier(hidden_layer_sizes=(25,), alpha=alpha, random_state=0)
    full.fit(X_train, y_train)
    print(f"full fit, alpha={alpha:g}: {full.n_iter_} iterations, "
          f"test accuracy {full.score(X_test, y_test):.3f}")

# %%
# The curves
# ----------
iterations = np.arange(1, net.n_iter_ + 1)
fig, (ax_cost, ax_score) = plt.subplots(1, 2, figsize=(10, 4))
ax_cost.semilogy(iterations, net.loss_curve_)
ax_cost.set_xlabel("iteration")
ax_cost.set_ylabel("cost J on the training part")
ax_cost.set_title("loss_curve_")

ax_score.plot(iterations, net.validation_scores_, label="held-out accuracy")
if monitor is not None:
    log = monitor.get_logs()
    train_scores = [row["accuracy"] for row in log.data if row["task_name"].endswith("-iter")]
    ax_score.plot(iterations, train_scores[: net.n_iter_],
                  label="training accuracy (ScoringMonitor)")
ax_score.axvline(best, color="gray", linestyle="--", linewidth=1)
ax_score.annotate("kept weights", (best, net.best_validation_score_),
                  xytext=(5, -25), textcoords="offset points", fontsize=8)
ax_score.set_ylim(0.5, 1.01)
ax_score.set_xlabel("iteration")
ax_score.set_ylabel("accuracy")
ax_score.set_title("accuracy after each iteration")
ax_score.legend(loc="lower right")
fig.tight_layout()
plt.show()

# %%
# The held-out accuracy climbs with the training accuracy, then levels off and wobbles
# while the training accuracy keeps rising: from there on the network mostly makes its
# training predictions more confident. The fit stops once ``n_iter_no_change``
# iterations in a row have not improved on the best held-out score, or earlier if the
# solver converges (as L-BFGS-B did here), and it returns the weights of the best
# iteration (dashed line), not the last ones.
#
# Early stopping is a guard, not a free lunch. The held-out rows (10 % by default) are
# not used for training, and the held-out score of a few hundred rows is noisy. With
# L-BFGS-B, which converges in a few dozen iterations on this problem, a penalty chosen
# by cross-validation usually does at least as well; compare the test accuracies printed
# above. Early stopping pays off when tuning ``alpha`` is too expensive, or when fits run
# for many iterations. ``ScoringMonitor`` scores the data the solver trains on: with
# early stopping, the training part only.
