"""
=================================
The loss curve of an L-BFGS-B fit
=================================

After a fit, ``loss_curve_`` holds the cost ``J`` after each L-BFGS-B iteration, penalty
included, and ``loss_`` the cost at the final weights. This example fits the digits
(1797 images of 8x8 pixels, 10 classes) with 25 hidden units for several values of
``alpha`` and plots the curves on a logarithmic scale, next to the accuracy on held-out
images.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_bp import BackpropClassifier

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)

fig, ax = plt.subplots(figsize=(7, 4.5))
for alpha in [1e-4, 0.1, 1.0, 10.0]:
    model = make_pipeline(
        StandardScaler(),
        BackpropClassifier(hidden_layer_sizes=(25,), alpha=alpha, random_state=0),
    ).fit(X_train, y_train)
    net = model[-1]
    ax.semilogy(
        range(1, len(net.loss_curve_) + 1), net.loss_curve_,
        label=(f"alpha={alpha:g}: {net.n_iter_} iterations, "
               f"test accuracy {model.score(X_test, y_test):.3f}"),
    )
    print(f"alpha={alpha:<6g} n_iter_={net.n_iter_:<4d} loss_={net.loss_:.4g}  "
          f"first costs {[round(c, 3) for c in net.loss_curve_[:3]]}")
ax.axhline(10 * np.log(2), color="gray", linestyle="--", linewidth=1)
ax.annotate("10 log 2: all ten outputs at 0.5", (1, 10 * np.log(2)),
            xytext=(0, -12), textcoords="offset points", fontsize=8, color="gray")
ax.set_xlabel("L-BFGS-B iteration")
ax.set_ylabel("cost J (cross-entropy + penalty)")
ax.set_title("Digits, 25 logistic hidden units")
ax.legend(fontsize=9)
fig.tight_layout()
plt.show()

# %%
# What the curves say
# -------------------
# * Before the first iteration the cost is close to ``10 log 2 ~ 6.93``: at the
#   Glorot initialisation each of the ten logistic outputs is close to 0.5, and the
#   cross-entropy is summed over the outputs. ``loss_curve_[0]`` is the cost after the
#   first iteration, already well below.
# * The first iterations hardly depend on ``alpha``: the penalty is small next to the
#   data term while the weights are small.
# * With a tiny ``alpha`` the cost falls towards zero, because the network can fit every
#   training image. The gradient of the cross-entropy shrinks with the cost (its output
#   delta is ``A - Y``), so L-BFGS-B soon meets ``tol`` and stops.
# * A larger ``alpha`` gives the cost a floor set by the penalty, and the fit runs until
#   the gradient of data term and penalty together is below ``tol``: here that takes
#   more iterations, and the test accuracy is better for a moderate ``alpha``.
# * Each entry of ``loss_curve_`` is one iteration, not one cost evaluation: L-BFGS-B's
#   line search may evaluate the cost more than once per iteration.
