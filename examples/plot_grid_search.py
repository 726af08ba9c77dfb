"""
======================================================
Choosing alpha and the hidden size by cross-validation
======================================================

``BackpropClassifier`` is an ordinary scikit-learn estimator, so
:class:`~sklearn.model_selection.GridSearchCV` can tune it inside a
:class:`~sklearn.pipeline.Pipeline`. Here a small grid over the penalty ``alpha`` and the
number of hidden units is scored by 3-fold cross-validation on the digits, and the mean
accuracy is drawn as a heat map.
"""

# %%
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_bp import BackpropClassifier

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)

pipe = Pipeline([
    ("scale", StandardScaler()),
    ("net", BackpropClassifier(random_state=0)),
])
alphas = [1e-2, 1e-1, 1.0, 10.0]
hidden_sizes = [(5,), (15,), (40,)]
search = GridSearchCV(
    pipe,
    {"net__alpha": alphas, "net__hidden_layer_sizes": hidden_sizes},
    cv=3,
)
# The 5-unit networks with a small alpha use the whole budget of max_iter=200
# iterations; their scores show what that budget buys, so the warnings are muted here.
start = time.perf_counter()
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    search.fit(X_train, y_train)
print(f"{len(search.cv_results_['params']) * 3} fits in "
      f"{time.perf_counter() - start:.1f} s")
print("best parameters:", search.best_params_)
print(f"best mean CV accuracy {search.best_score_:.3f}, "
      f"test accuracy of the refitted pipeline {search.score(X_test, y_test):.3f}")

# %%
# The heat map
# ------------
# ``cv_results_`` lists the candidates in the order of ``ParameterGrid``: sorted by
# parameter name, the last name varying fastest. So the mean scores reshape to an
# (alpha, hidden size) table.
scores = search.cv_results_["mean_test_score"].reshape(len(alphas), len(hidden_sizes))
fig, ax = plt.subplots(figsize=(6, 4.5))
im = ax.imshow(scores, cmap="viridis", origin="lower")
ax.set_xticks(range(len(hidden_sizes)), labels=[str(h[0]) for h in hidden_sizes])
ax.set_yticks(range(len(alphas)), labels=[f"{a:g}" for a in alphas])
ax.set_xlabel("hidden units")
ax.set_ylabel("alpha")
for i in range(len(alphas)):
    for j in range(len(hidden_sizes)):
        ax.text(j, i, f"{scores[i, j]:.3f}", ha="center", va="center",
                color="white" if scores[i, j] < scores.mean() else "black")
fig.colorbar(im, ax=ax, label="mean accuracy, 3-fold CV")
ax.set_title("GridSearchCV over alpha and hidden size (digits)")
fig.tight_layout()
plt.show()

# %%
# Five hidden units are too few for ten digit classes whatever the penalty, and there
# the larger the penalty, the better they do on this grid. From 15 units on,
# more units add about a point of accuracy, while ``alpha`` still matters: too little
# lets the network fit noise, too much (``alpha=10``) flattens it. Because the penalty
# is ``alpha / (2 n) * sum ||W||^2``, the best ``alpha`` depends on the number of
# training samples ``n``: tune it on data of the size you will fit (here each fold fits
# on about 900 images).
