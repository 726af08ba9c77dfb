"""Property tests of the objective (issue 3, point 4), with hypothesis.

Random networks (1-3 hidden layers of 1-6 units), sample counts, sample weights, alpha,
activations and output layers (the classifier's and the regressor's). Oracles: central differences for the gradient, and the
invariances any weighted mean cost must have.
"""

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sklearn_bp.backprop import (
    ACTIVATIONS,
    OUTPUT_ACTIVATIONS,
    check_gradient,
    cost_and_gradient,
    n_params,
    unpack,
)

EPSILON = 1e-5  # step of the central differences


@st.composite
def problems(draw, weights=st.floats(0.05, 5.0), unweighted=True):
    """A random network, data set and objective settings (sample weights from
    `weights`, or None if `unweighted` allows it)."""
    hidden = draw(st.lists(st.integers(1, 6), min_size=1, max_size=3))
    output_activation = draw(st.sampled_from(OUTPUT_ACTIVATIONS))
    n_outputs = draw(st.integers(2 if output_activation == "softmax" else 1, 4))
    layer_sizes = (draw(st.integers(1, 4)), *hidden, n_outputs)
    n_samples = draw(st.integers(1, 8))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    X = rng.normal(size=(n_samples, layer_sizes[0]))
    if output_activation == "softmax":
        Y = np.eye(n_outputs)[rng.integers(0, n_outputs, n_samples)]
    elif output_activation == "identity":  # real-valued targets
        Y = rng.normal(scale=3.0, size=(n_samples, n_outputs))
    elif output_activation == "exp":  # counts, zeros among them
        Y = rng.poisson(2.0, size=(n_samples, n_outputs)).astype(float)
    else:
        Y = (rng.uniform(size=(n_samples, n_outputs)) < 0.5).astype(float)
    # Weights of scale 4 saturate the classifier's outputs, which must stay exact; an
    # exp output of such weights overflows, as its true cost does (e^z > 1.8e308).
    scales = [0.1, 1.0] if output_activation == "exp" else [0.1, 1.0, 4.0]
    scale = draw(st.sampled_from(scales))
    theta = rng.normal(scale=scale, size=n_params(layer_sizes))
    weight_lists = st.lists(weights, min_size=n_samples, max_size=n_samples).map(np.array)
    sample_weight = draw(st.none() | weight_lists if unweighted else weight_lists)
    return dict(
        theta=theta, X=X, Y=Y, layer_sizes=layer_sizes,
        alpha=draw(st.sampled_from([0.0, 1e-4]) | st.floats(0.0, 5.0)),
        sample_weight=sample_weight,
        activation=draw(st.sampled_from(ACTIVATIONS)),
        output_activation=output_activation,
    )


def _hidden_logits(theta, X, layer_sizes, activation):
    coefs, intercepts = unpack(theta, layer_sizes)
    A, logits = X, []
    for W, b in zip(coefs[:-1], intercepts[:-1]):
        Z = A @ W + b
        logits.append(Z)
        A = {"logistic": lambda z: 1 / (1 + np.exp(-z)), "tanh": np.tanh,
             "relu": lambda z: np.maximum(z, 0)}[activation](Z)
    return logits


def _evaluate(p, **changes):
    p = {**p, **changes}
    return cost_and_gradient(
        p["theta"], p["X"], p["Y"], p["layer_sizes"], alpha=p["alpha"],
        sample_weight=p["sample_weight"], activation=p["activation"],
        output_activation=p["output_activation"],
    )


def _assert_same(a, b, rtol=1e-12):
    """Same cost and gradient up to summation order: relative to the largest entry."""
    (cost_a, grad_a), (cost_b, grad_b) = a, b
    np.testing.assert_allclose(cost_a, cost_b, rtol=rtol)
    np.testing.assert_allclose(grad_a, grad_b, rtol=rtol,
                               atol=rtol * max(np.abs(grad_b).max(), 1e-300))


@settings(max_examples=60, deadline=None)
@given(problems())
def test_gradient_matches_central_differences(p):
    if p["activation"] == "relu":
        # Central differences are meaningless across relu's kink: only examples whose
        # hidden pre-activations all stay well beyond the step from 0.
        assume(all(np.abs(Z).min() > 1e-3 for Z in
                   _hidden_logits(p["theta"], p["X"], p["layer_sizes"], "relu")))
    _, grad = _evaluate(p)
    assume(np.linalg.norm(grad) > 1e-6)  # a relative difference needs a gradient
    diff = check_gradient(
        p["theta"], p["X"], p["Y"], p["layer_sizes"], alpha=p["alpha"],
        sample_weight=p["sample_weight"], activation=p["activation"],
        output_activation=p["output_activation"], epsilon=EPSILON,
    )
    assert diff < 1e-6


@settings(max_examples=100, deadline=None)
@given(problems())
def test_cost_is_non_negative(p):
    cost, grad = _evaluate(p)
    assert cost >= 0
    assert np.all(np.isfinite(grad))


@settings(max_examples=100, deadline=None)
@given(problems(), st.randoms(use_true_random=False))
def test_invariant_to_permuting_samples(p, random):
    order = np.array(random.sample(range(p["X"].shape[0]), p["X"].shape[0]))
    weights = p["sample_weight"]
    permuted = _evaluate(p, X=p["X"][order], Y=p["Y"][order],
                         sample_weight=None if weights is None else weights[order])
    _assert_same(permuted, _evaluate(p))


@settings(max_examples=100, deadline=None)
@given(problems(), st.sampled_from([1e-3, 0.5, 3.0, 1e4]))
def test_invariant_to_scaling_sample_weights(p, factor):
    """The weighted mean is invariant to scaling the weights. The penalty of (C1) is
    ``alpha / (2 S)`` with ``S = sum(s)``, as in MLPClassifier, so alpha counts in units
    of total sample weight: the objective is invariant when alpha scales with them."""
    weights = p["sample_weight"]
    if weights is None:
        weights = np.ones(p["X"].shape[0])
    _assert_same(_evaluate(p, sample_weight=factor * weights, alpha=0.0),
                 _evaluate(p, sample_weight=weights, alpha=0.0))
    _assert_same(_evaluate(p, sample_weight=factor * weights, alpha=factor * p["alpha"]),
                 _evaluate(p, sample_weight=weights))
    if p["sample_weight"] is None:  # and unit weights are no weights
        _assert_same(_evaluate(p, sample_weight=weights), _evaluate(p))


@settings(max_examples=100, deadline=None)
@given(problems(weights=st.integers(0, 3).map(float), unweighted=False))
def test_integer_sample_weights_equal_repeated_rows(p):
    """A weight of k counts a row k times (0 drops it)."""
    weights = p["sample_weight"]
    assume(weights.sum() > 0)
    repeats = weights.astype(int)
    repeated = _evaluate(p, X=np.repeat(p["X"], repeats, axis=0),
                         Y=np.repeat(p["Y"], repeats, axis=0), sample_weight=None)
    _assert_same(_evaluate(p), repeated)
