"""
==========================================================
Decision boundaries for several hidden sizes and penalties
==========================================================

Two interleaved half-moons cannot be separated by a straight line, so a network without
hidden units (a logistic regression) fails on them. This example fits
:class:`~sklearn_bp.BackpropClassifier` with 1, 3 and 25 logistic hidden units and three
strengths of the L2 penalty ``alpha``, and draws the probability of the second class
over the plane.

More hidden units allow a more wiggly boundary; a larger ``alpha`` pulls the weights
towards zero and so smooths it. The test accuracy in each corner shows where the balance
between the two lies for this data set.
"""

# %%
# Data: two noisy half-moons, standardised inside the pipeline
# ------------------------------------------------------------
import matplotlib.pyplot as plt
from sklearn.datasets import make_moons
from sklearn.inspection import DecisionBoundaryDisplay
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_bp import BackpropClassifier

X, y = make_moons(n_samples=300, noise=0.3, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.4, random_state=42)

# %%
# One fit per (hidden size, alpha)
# --------------------------------
# Every fit starts from the same Glorot-uniform weights for a given architecture
# (``random_state=0``), so the only differences between the panels of a column are the
# penalty's.
hidden_sizes = [1, 3, 25]
alphas = [1e-4, 0.1, 1.0]

fig, axes = plt.subplots(
    len(hidden_sizes), len(alphas), figsize=(10, 10), sharex=True, sharey=True
)
for row, hidden in enumerate(hidden_sizes):
    for col, alpha in enumerate(alphas):
        model = make_pipeline(
            StandardScaler(),
            BackpropClassifier(
                hidden_layer_sizes=(hidden,), alpha=alpha, max_iter=500, random_state=0
            ),
        ).fit(X_train, y_train)
        ax = axes[row, col]
        DecisionBoundaryDisplay.from_estimator(
            model, X, response_method="predict_proba", grid_resolution=120,
            cmap="RdBu", alpha=0.8, ax=ax, vmin=0.0, vmax=1.0,
        )
        ax.scatter(X_train[:, 0], X_train[:, 1], c=y_train, cmap="RdBu",
                   edgecolors="k", s=18)
        ax.scatter(X_test[:, 0], X_test[:, 1], c=y_test, cmap="RdBu",
                   edgecolors="k", s=18, alpha=0.5)
        ax.set_title(
            f"{hidden} hidden, alpha={alpha:g}\n"
            f"test accuracy {model.score(X_test, y_test):.2f}",
            fontsize=10,
        )
        ax.set_xlabel("")
        ax.set_ylabel("")
fig.suptitle("P(class 1) over the plane: training points solid, test points faded")
fig.tight_layout()
plt.show()

# %%
# Reading the figure
# ------------------
# * With one hidden unit the output is a monotone function of one linear combination
#   of the inputs, so the boundary is a straight line whatever ``alpha`` is: the
#   network is no better than a logistic regression.
# * Three units already bend the boundary around the moons.
# * With 25 units and almost no penalty (``alpha=1e-4``) the boundary chases individual
#   noisy points: every training point is classified correctly, but the test accuracy
#   drops. ``alpha=0.1`` keeps the bend and removes the islands, and does best on the
#   test points.
# * ``alpha=1`` is already too strong for 180 training points: the penalty is
#   ``alpha / (2 n) * sum ||W||^2``, and with ``n = 180`` it flattens every network back
#   to a nearly linear rule. The right ``alpha`` depends on the number of samples;
#   :ref:`sphx_glr_auto_examples_plot_grid_search.py` chooses it by cross-validation.
