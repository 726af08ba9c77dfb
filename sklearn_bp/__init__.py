"""sklearn_bp: multilayer perceptrons trained by backpropagation, for scikit-learn.

``BackpropClassifier`` and ``BackpropRegressor`` hand the regularised cost of their
output layer and its backpropagation gradient to :func:`scipy.optimize.minimize`; the
maths lives in :mod:`sklearn_bp.backprop`.
"""

from ._classifier import BackpropClassifier
from ._regressor import BackpropRegressor
from ._version import __version__

__all__ = ["BackpropClassifier", "BackpropRegressor", "__version__"]
