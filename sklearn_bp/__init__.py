"""sklearn_bp: a multilayer perceptron classifier trained by backpropagation.

``BackpropClassifier`` hands the regularised cross-entropy cost and its backpropagation
gradient to :func:`scipy.optimize.minimize`; the maths lives in :mod:`sklearn_bp.backprop`.
"""

from ._classifier import BackpropClassifier
from ._version import __version__

__all__ = ["BackpropClassifier", "__version__"]
