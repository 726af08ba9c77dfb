"""
===============================================
Regression: a fitted curve, and a count model
===============================================

:class:`~sklearn_bp.BackpropRegressor` is the classifier's network with the output layer
of a regression. Two fits on generated data show both of its losses.

* **A curve** (``loss="squared_error"``): identity outputs and half the squared error.
  Noisy samples of a smooth function of one input, fitted by networks of a few
  ``tanh`` units; ``alpha`` trades the fit for smoothness.
* **Counts** (``loss="poisson"``): exponential outputs and half the Poisson deviance. The
  counts grow exponentially with the input, as a rate does. The Poisson fit predicts a
  positive rate everywhere; a squared-error fit on the same counts, shown beside it,
  does not know that counts are non-negative and that their variance grows with their
  mean.

Both losses give the output delta ``A - Y`` of the classifier (the user guide's section
on the canonical link), so both are fitted by the same backpropagation.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import mean_poisson_deviance

from sklearn_bp import BackpropRegressor

rng = np.random.default_rng(0)

# %%
# A curve
# -------
# 80 noisy samples of ``sin(3x) + x/2`` on [-2, 2].
x = np.sort(rng.uniform(-2, 2, 80))
y = np.sin(3 * x) + x / 2 + rng.normal(scale=0.25, size=x.shape)
grid = np.linspace(-2.2, 2.2, 400)

fig, ax = plt.subplots(figsize=(7, 4.2))
ax.scatter(x, y, s=12, color="black", label="samples")
ax.plot(grid, np.sin(3 * grid) + grid / 2, color="gray", linestyle="--",
        label="the function")
for alpha in [1e-3, 1.0]:
    model = BackpropRegressor(hidden_layer_sizes=(20,), activation="tanh", alpha=alpha,
                              max_iter=2000, random_state=0).fit(x[:, None], y)
    ax.plot(grid, model.predict(grid[:, None]),
            label=f"alpha={alpha:g}: R^2 {model.score(x[:, None], y):.3f}, "
                  f"{model.n_iter_} iterations")
    print(f"curve, alpha={alpha:<5g} R^2={model.score(x[:, None], y):.4f} "
          f"n_iter_={model.n_iter_}")
ax.set(xlabel="x", ylabel="y", title='loss="squared_error": identity outputs')
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %%
# The small ``alpha`` follows the noise between the samples; ``alpha=1`` keeps the
# weights small and the curve smooth, at the cost of the peaks.

# %%
# Counts
# ------
# 300 counts with the rate ``exp(1.2 x + 0.3)``: a few at the left, dozens at the right.
x = rng.uniform(-2, 2, 300)
counts = rng.poisson(np.exp(1.2 * x + 0.3))
x_new = rng.uniform(-2, 2, 3000)  # new counts, to score the fits
counts_new = rng.poisson(np.exp(1.2 * x_new + 0.3))
rates = {}
for loss in ["poisson", "squared_error"]:
    model = BackpropRegressor(hidden_layer_sizes=(5,), loss=loss, alpha=1e-2,
                              max_iter=2000, random_state=0).fit(x[:, None], counts)
    rates[loss] = model.predict(grid[:, None])
    predicted = np.maximum(model.predict(x_new[:, None]), 1e-12)
    low = x_new < -1  # where the rate is below 0.5
    print(f"counts, loss={loss!r:<16} mean Poisson deviance on new counts "
          f"{mean_poisson_deviance(counts_new, predicted):.4f}; where x < -1, "
          f"{mean_poisson_deviance(counts_new[low], predicted[low]):.4f}; "
          f"least predicted rate {rates[loss].min():.3f}")

fig, ax = plt.subplots(figsize=(7, 4.2))
ax.scatter(x, counts, s=10, color="black", alpha=0.5, label="counts")
ax.plot(grid, np.exp(1.2 * grid + 0.3), color="gray", linestyle="--", label="true rate")
ax.plot(grid, rates["poisson"], label='loss="poisson"')
ax.plot(grid, rates["squared_error"], label='loss="squared_error"')
ax.set(xlabel="x", ylabel="count", title='loss="poisson": exponential outputs')
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %%
# The Poisson deviance weighs a residual against the rate it is measured at, and the
# exponential output keeps every prediction positive by construction. The squared error
# weighs every residual alike, so the large, noisy counts at the right weigh most in its
# fit, and only the data keep its predictions above 0. With this much data both follow
# the rate closely; the printed deviances on new counts show how close, and the Poisson
# fit is the one whose loss is the counts' own.
