"""MLPClassifier's and MLPRegressor's own objectives, the oracles several test modules
compare against."""

import inspect

import numpy as np
import pytest
from sklearn.neural_network import MLPClassifier, MLPRegressor

# MLPClassifier accepts sample_weight from scikit-learn 1.7 on; its private objective
# gained the argument at the same time.
MLP_HAS_SAMPLE_WEIGHT = "sample_weight" in inspect.signature(MLPClassifier.fit).parameters
# MLPRegressor has loss="poisson" from scikit-learn 1.7 on.
MLP_HAS_POISSON = "loss" in inspect.signature(MLPRegressor).parameters


def mlp_loss_and_grad(mlp, theta, X, Y, sample_weight=None):
    """``(loss, grad)`` of a fitted MLPClassifier's or MLPRegressor's objective at the
    packed weights."""
    n_layers = len(mlp.coefs_) + 1
    buffers = (
        [X] + [None] * (n_layers - 1),
        [None] * (n_layers - 1),
        [np.empty_like(W) for W in mlp.coefs_],
        [np.empty_like(b) for b in mlp.intercepts_],
    )
    if MLP_HAS_SAMPLE_WEIGHT:
        return mlp._loss_grad_lbfgs(theta.copy(), X, Y, sample_weight, *buffers)
    if sample_weight is not None:
        pytest.skip("MLPClassifier supports sample_weight from scikit-learn 1.7 on")
    return mlp._loss_grad_lbfgs(theta.copy(), X, Y, *buffers)

