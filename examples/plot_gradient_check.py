"""
=======================================
Gradient checking, and a bug it catches
=======================================

:func:`sklearn_bp.backprop.check_gradient` compares the gradient computed by
backpropagation with central finite differences,

.. math::

    \\frac{\\partial J}{\\partial \\theta_i} \\approx
    \\frac{J(\\theta + \\epsilon e_i) - J(\\theta - \\epsilon e_i)}{2 \\epsilon},

and returns the relative difference
``||numerical - backprop|| / ||numerical + backprop||``. With no arguments it builds the
classic exercise's small debug network (3 inputs, 5 hidden units, 3 outputs, 5 samples).
A correct gradient gives about ``1e-10``; a bug gives something of order one.
"""

# %%
# A correct gradient, for every activation and output
# ---------------------------------------------------
import matplotlib.pyplot as plt
import numpy as np

from sklearn_bp import backprop
from sklearn_bp.backprop import check_gradient

for activation in backprop.ACTIVATIONS:
    for output_activation in backprop.OUTPUT_ACTIVATIONS:
        for alpha in [0.0, 3.0]:
            difference = check_gradient(
                alpha=alpha, activation=activation, output_activation=output_activation
            )
            print(f"{activation:>8} hidden, {output_activation:>8} output, "
                  f"alpha={alpha:g}: relative difference {difference:.1e}")

# %%
# The step size of the finite differences
# ---------------------------------------
# The central difference has a truncation error of order ``epsilon**2`` and a rounding
# error of order ``eps_machine / epsilon``. Reading the plot from large steps (left) to
# small ones (right), the difference first falls like ``epsilon**2``, then grows like
# ``1 / epsilon``. The relative difference is smallest where they
# meet, near ``epsilon = 1e-4`` here. At the default ``epsilon=1e-5`` (dashed) it is
# about ``1e-10``, and anywhere between ``1e-2`` and ``1e-8`` a correct gradient stays
# far below the ``1e-2 ... 1`` of a broken one.
epsilons = np.logspace(-1, -11, 21)
differences = [check_gradient(alpha=3.0, epsilon=e) for e in epsilons]
fig, ax = plt.subplots(figsize=(6, 4))
ax.loglog(epsilons, differences, "o-")
ax.axvline(1e-5, color="gray", linestyle="--", linewidth=1)
ax.set_xlabel("epsilon")
ax.set_ylabel("relative difference")
ax.set_title("check_gradient on the debug network, alpha=3")
ax.invert_xaxis()
fig.tight_layout()
plt.show()

# %%
# A deliberately broken gradient
# ------------------------------
# Two classic mistakes, each made by wrapping the real function so that the cost stays
# right and only the gradient goes wrong:
#
# 1. the gradient of the penalty ``alpha W_l / S`` is left out of (G1), and
# 2. the factor ``g'(Z_l)`` is left out of the hidden-delta recursion (B2).
#
# ``check_gradient`` looks up :func:`~sklearn_bp.backprop.cost_and_gradient` in its module
# when it runs, and the private kernel (``sklearn_bp._kernel``) looks up the function that
# fills in ``g'(Z_l)`` for the logistic activation in its own, so
# :func:`unittest.mock.patch.object` swaps them for the duration of a ``with`` block.
from unittest import mock

from sklearn_bp import _kernel

real_cost_and_gradient = backprop.cost_and_gradient


def forgets_penalty_gradient(theta, X, Y, layer_sizes, *, alpha=0.0, **kwargs):
    cost, _ = real_cost_and_gradient(theta, X, Y, layer_sizes, alpha=alpha, **kwargs)
    _, grad = real_cost_and_gradient(theta, X, Y, layer_sizes, alpha=0.0, **kwargs)
    return cost, grad


def forgets_activation_derivative(u, out):
    out.fill(1.0)  # should be g'(Z) = u (1 - u): now (B2) is D_l = D_{l+1} @ W_l^T
    return out


broken = {}
with mock.patch.object(backprop, "cost_and_gradient", forgets_penalty_gradient):
    broken["no penalty gradient, alpha=3"] = check_gradient(alpha=3.0)
    broken["no penalty gradient, alpha=0"] = check_gradient(alpha=0.0)
with mock.patch.object(_kernel, "logistic_derivative", forgets_activation_derivative):
    broken["no g'(Z) in (B2)"] = check_gradient()
broken["correct"] = check_gradient(alpha=3.0)
for name, difference in broken.items():
    print(f"{name:>30}: {difference:.1e}")

# %%
# The bug without the penalty's gradient hides when ``alpha=0``: check with the
# settings you fit with. The missing ``g'`` shows at once.
fig, ax = plt.subplots(figsize=(7, 3))
names = list(broken)
ax.barh(names, [broken[n] for n in names],
        color=["tab:red" if broken[n] > 1e-6 else "tab:green" for n in names])
ax.set_xscale("log")
ax.axvline(1e-6, color="gray", linestyle="--", linewidth=1)
ax.set_xlabel("relative difference (log scale); dashed line: 1e-6")
ax.set_title("check_gradient on correct and broken gradients")
fig.tight_layout()
plt.show()
