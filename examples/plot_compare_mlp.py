"""
==============================================
Side by side with scikit-learn's MLPClassifier
==============================================

scikit-learn's ``MLPClassifier(solver="lbfgs", activation="logistic")`` minimises the
same cost (cross-entropy summed over outputs, averaged over samples, plus
``alpha / (2 n) * sum ||W||^2``) with the same optimiser, from the same Glorot-uniform
start. This example fits both on the digits with the same architecture, penalty and
iteration budget, and compares accuracy, fit time and peak memory.

Two differences remain by design: ``BackpropClassifier`` uses one logistic output unit
per class by default (``output_activation="logistic"``, the classic derivation), where
``MLPClassifier`` uses a softmax for multiclass targets; and ``BackpropClassifier``
reuses its buffers between evaluations of the cost. ``output_activation="softmax"``
gives the same output layer as ``MLPClassifier``, so it is included too.

Timings run with one BLAS thread (:func:`threadpoolctl.threadpool_limits`): on small
problems, multi-threaded BLAS costs more in synchronisation than it saves.
"""

# %%
import time
import tracemalloc

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from sklearn_bp import BackpropClassifier

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

common = dict(hidden_layer_sizes=(25,), alpha=1.0, max_iter=200, random_state=0)
models = {
    "BackpropClassifier\n(logistic outputs)": lambda: BackpropClassifier(**common),
    "BackpropClassifier\n(softmax output)": lambda: BackpropClassifier(
        output_activation="softmax", **common
    ),
    "MLPClassifier\n(lbfgs, logistic)": lambda: MLPClassifier(
        solver="lbfgs", activation="logistic", **common
    ),
}

# %%
# Accuracy, time and memory
# -------------------------
# Time is the median of three fits. Memory is the peak of the Python and NumPy
# allocations during one fit, measured by :mod:`tracemalloc` (it does not count BLAS's
# own buffers).
results = {}
with threadpool_limits(limits=1, user_api="blas"):
    for name, make in models.items():
        times = []
        for _ in range(3):
            start = time.perf_counter()
            model = make().fit(X_train, y_train)
            times.append(time.perf_counter() - start)
        tracemalloc.start()
        make().fit(X_train, y_train)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        results[name] = {
            "accuracy": model.score(X_test, y_test),
            "time": float(np.median(times)),
            "peak": peak / 2**20,
            "n_iter": model.n_iter_,
            "loss": model.loss_,
        }
        print(f"{name.replace(chr(10), ' '):<42} accuracy {results[name]['accuracy']:.3f}  "
              f"fit {1000 * results[name]['time']:6.1f} ms  "
              f"peak {results[name]['peak']:5.2f} MiB  "
              f"n_iter_ {model.n_iter_:3d}  loss_ {model.loss_:.4f}")

# %%
names = list(results)
colors = ["tab:blue", "tab:cyan", "tab:orange"]
fig, axes = plt.subplots(1, 3, figsize=(11, 3.8))
for ax, key, label in zip(
    axes,
    ["accuracy", "time", "peak"],
    ["test accuracy", "fit time, median of 3 (s)", "peak traced memory (MiB)"],
):
    values = [results[n][key] for n in names]
    ax.bar(range(len(names)), values, color=colors)
    ax.set_xticks(range(len(names)), labels=names, fontsize=7)
    ax.set_title(label, fontsize=10)
    for i, v in enumerate(values):
        ax.text(i, v, f"{v:.3g}", ha="center", va="bottom", fontsize=8)
axes[0].set_ylim(0.9, 1.0)
fig.suptitle("Digits, 25 logistic hidden units, alpha=1, one BLAS thread")
fig.tight_layout()
plt.show()

# %%
# With a softmax output both estimators minimise the same function from the same start
# with the same optimiser settings, and they end at the same ``loss_`` and accuracy: the
# gradients agree to rounding. The logistic-output network is a different model (ten
# independent sigmoids, normalised by ``predict_proba``), whose cost is not comparable
# to the softmax one, with a similar accuracy here.
#
# The times are of the same order: on a problem this small most of a fit is spent in
# Python overhead and in small matrix products, and a shared machine adds noise of tens
# of percent, so rerun the script before reading much into a difference. The peak
# memory of ``BackpropClassifier`` includes the buffers it allocates once per fit and
# reuses at every evaluation (the logits, the two halves of ``sigma`` and the deltas of
# each layer); ``MLPClassifier`` allocates its arrays afresh at each evaluation. See
# :doc:`/performance` for measurements on larger data.
