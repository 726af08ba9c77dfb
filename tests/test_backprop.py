"""The pure maths of sklearn_bp.backprop, tested on tiny arrays against independent oracles."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import LabelBinarizer

from _mlp_oracle import MLP_HAS_POISSON, MLP_HAS_SAMPLE_WEIGHT, mlp_loss_and_grad
from sklearn_bp.backprop import (
    ACTIVATIONS,
    OUTPUT_ACTIVATIONS,
    check_gradient,
    combine_partial_sums,
    cost_and_gradient,
    forward,
    n_params,
    pack,
    partial_sums,
    reference_cost_and_gradient,
    sigmoid,
    sigmoid_gradient,
    unpack,
)


def _random_problem(layer_sizes, n_samples=9, seed=0, output_activation="logistic"):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n_samples, layer_sizes[0]))
    if output_activation == "softmax":
        Y = np.eye(layer_sizes[-1])[rng.randint(0, layer_sizes[-1], n_samples)]
    else:
        Y = (rng.uniform(size=(n_samples, layer_sizes[-1])) < 0.5).astype(float)
    theta = rng.normal(scale=0.7, size=n_params(layer_sizes))
    return theta, X, Y, rng.uniform(0.2, 2.0, n_samples)


def test_sigmoid_values():
    assert sigmoid(0.0) == 0.5
    assert sigmoid_gradient(0.0) == 0.25
    z = np.linspace(-30, 30, 61)
    np.testing.assert_allclose(sigmoid(z), 1 / (1 + np.exp(-z)), rtol=1e-15)
    np.testing.assert_allclose(sigmoid(z) + sigmoid(-z), 1.0, rtol=1e-15)
    # Where a * (1 - a) has lost every digit, sigma(z) sigma(-z) still equals e^{-z}.
    assert sigmoid(40.0) * (1 - sigmoid(40.0)) == 0.0
    np.testing.assert_allclose(sigmoid_gradient(40.0), np.exp(-40.0), rtol=1e-14)


def test_pack_unpack_round_trip_and_views():
    layer_sizes = (4, 3, 2, 5)
    rng = np.random.RandomState(0)
    coefs = [rng.normal(size=(a, b)) for a, b in zip(layer_sizes[:-1], layer_sizes[1:])]
    intercepts = [rng.normal(size=b) for b in layer_sizes[1:]]
    theta = pack(coefs, intercepts)
    assert theta.shape == (n_params(layer_sizes),)
    got_coefs, got_intercepts = unpack(theta, layer_sizes)
    for a, b in zip(coefs + intercepts, got_coefs + got_intercepts):
        assert a.shape == b.shape
        np.testing.assert_array_equal(a, b)
        assert np.shares_memory(b, theta)  # views, no copies
    got_coefs[1][0, 0] = 123.0
    assert 123.0 in theta
    with pytest.raises(ValueError, match="pack"):
        unpack(theta[:-1], layer_sizes)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("output_activation", OUTPUT_ACTIVATIONS)
@pytest.mark.parametrize("hidden", [(5,), (4, 3), (3, 4, 2)])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("alpha", [0.0, 0.7])
def test_gradient_matches_central_differences(activation, output_activation, hidden,
                                              weighted, alpha):
    layer_sizes = (3, *hidden, 3)
    theta, X, Y, sample_weight = _random_problem(
        layer_sizes, output_activation=output_activation
    )
    if activation == "relu":
        # Keep every hidden pre-activation away from relu's kink, where central
        # differences are meaningless: shift intercepts until |Z| > 1e-3 everywhere.
        theta = theta.copy()
        coefs, intercepts = unpack(theta, layer_sizes)
        A = X
        for W, b in zip(coefs[:-1], intercepts[:-1]):
            Z = A @ W + b
            while np.min(np.abs(Z)) < 1e-3:
                b += 1e-2
                Z = A @ W + b
            A = np.maximum(Z, 0)
    diff = check_gradient(
        theta, X, Y, layer_sizes, alpha=alpha,
        sample_weight=sample_weight if weighted else None,
        activation=activation, output_activation=output_activation,
    )
    assert diff < 1e-7


@pytest.mark.parametrize("function", [cost_and_gradient, reference_cost_and_gradient])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("kind", ["binary", "multilabel", "multiclass"])
@pytest.mark.parametrize("weighted", [False, True])
def test_same_objective_as_mlpclassifier(function, activation, kind, weighted):
    """Oracle: MLPClassifier computes the same loss and gradient for the same weights,
    for every hidden activation and both of its output layers (one logistic unit or a
    softmax); so do the kernel and the plain reference implementation."""
    rng = np.random.RandomState(1)
    X = rng.normal(size=(40, 4))
    labels = rng.randint(0, 3, 40)
    y = {"binary": labels % 2, "multiclass": labels,
         "multilabel": (rng.uniform(size=(40, 3)) < 0.5).astype(int)}[kind]
    sample_weight = rng.uniform(0.1, 3.0, 40) if weighted else None
    mlp = MLPClassifier(hidden_layer_sizes=(5, 3), activation=activation, solver="lbfgs",
                        alpha=0.7, max_iter=3, random_state=0)
    if weighted and not MLP_HAS_SAMPLE_WEIGHT:
        pytest.skip("MLPClassifier supports sample_weight from scikit-learn 1.7 on")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit(X, y, **({"sample_weight": sample_weight} if weighted else {}))
    Y = LabelBinarizer().fit(y).transform(y).astype(float)
    output_activation = "softmax" if kind == "multiclass" else "logistic"
    assert mlp.out_activation_ == output_activation
    theta = pack(mlp.coefs_, mlp.intercepts_)
    layer_sizes = (4, 5, 3, Y.shape[1])

    mlp_loss, mlp_grad = mlp_loss_and_grad(mlp, theta, X, Y, sample_weight)
    cost, grad = function(theta, X, Y, layer_sizes, alpha=0.7, sample_weight=sample_weight,
                          activation=activation, output_activation=output_activation)
    np.testing.assert_allclose(cost, mlp_loss, rtol=1e-13)
    np.testing.assert_allclose(grad, mlp_grad, rtol=1e-10, atol=1e-15)
    # MLPClassifier's own stored loss_ is the objective at its final weights.
    np.testing.assert_allclose(cost, mlp.loss_, rtol=1e-13)


def test_course_cost_and_penalty_by_hand():
    """A 2-2-1 network worked by hand (plain Python floats) matches (C1)."""
    layer_sizes = (2, 2, 1)
    W0, b0 = np.array([[0.1, -0.2], [0.3, 0.4]]), np.array([0.05, -0.05])
    W1, b1 = np.array([[0.5], [-0.6]]), np.array([0.2])
    X = np.array([[1.0, 2.0], [-1.0, 0.5]])
    Y = np.array([[1.0], [0.0]])
    theta = pack([W0, W1], [b0, b1])
    import math

    def s(v):
        return 1 / (1 + math.exp(-v))

    total = 0.0
    for (x1, x2), (y,) in zip(X, Y):
        h = [s(x1 * W0[0, j] + x2 * W0[1, j] + b0[j]) for j in range(2)]
        a = s(h[0] * W1[0, 0] + h[1] * W1[1, 0] + b1[0])
        total += -(y * math.log(a) + (1 - y) * math.log(1 - a))
    alpha = 0.3
    squares = sum(float(v) ** 2 for v in np.concatenate([W0.ravel(), W1.ravel()]))
    expected = total / 2 + alpha / (2 * 2) * squares
    cost, _ = cost_and_gradient(theta, X, Y, layer_sizes, alpha=alpha)
    assert cost == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize("function", [cost_and_gradient, reference_cost_and_gradient])
def test_sparse_input_equals_dense(function):
    layer_sizes = (6, 4, 2)
    theta, X, Y, sample_weight = _random_problem(layer_sizes, n_samples=12)
    X[X < 0.3] = 0.0
    dense = function(theta, X, Y, layer_sizes, alpha=0.1, sample_weight=sample_weight)
    for fmt in (sp.csr_matrix, sp.csc_matrix, sp.csr_array):
        sparse = function(theta, fmt(X), Y, layer_sizes, alpha=0.1,
                          sample_weight=sample_weight)
        np.testing.assert_allclose(sparse[0], dense[0], rtol=1e-14)
        np.testing.assert_allclose(sparse[1], dense[1], rtol=1e-12, atol=1e-16)
    np.testing.assert_allclose(
        forward(*unpack(theta, layer_sizes), sp.csr_matrix(X)),
        forward(*unpack(theta, layer_sizes), X), rtol=1e-14,
    )


def test_partial_sums_add_up_over_row_splits():
    layer_sizes = (3, 4, 3)
    theta, X, Y, sample_weight = _random_problem(layer_sizes, n_samples=20,
                                                 output_activation="softmax")
    kwargs = dict(output_activation="softmax")
    whole = cost_and_gradient(theta, X, Y, layer_sizes, alpha=0.2,
                              sample_weight=sample_weight, **kwargs)
    parts = [partial_sums(theta, X[rows], Y[rows], layer_sizes,
                          sample_weight=sample_weight[rows], **kwargs)
             for rows in (slice(0, 7), slice(7, 8), slice(8, 20))]
    gradients = [part.gradient.copy() for part in parts]
    cost, grad = combine_partial_sums(parts, theta, layer_sizes, alpha=0.2,
                                      weight_sum=sample_weight.sum())
    np.testing.assert_allclose(cost, whole[0], rtol=1e-13)
    np.testing.assert_allclose(grad, whole[1], rtol=1e-12, atol=1e-16)
    for part, gradient in zip(parts, gradients):  # the parts are left as they were
        np.testing.assert_array_equal(part.gradient, gradient)


def test_forward_matches_plain_numpy():
    layer_sizes = (5, 4, 3, 2)
    theta, X, _, _ = _random_problem(layer_sizes)
    coefs, intercepts = unpack(theta, layer_sizes)
    A = X
    for W, b in zip(coefs[:-1], intercepts[:-1]):
        A = np.tanh(A @ W + b)
    expected = A @ coefs[-1] + intercepts[-1]
    np.testing.assert_allclose(forward(coefs, intercepts, X, activation="tanh"),
                               expected, rtol=1e-13)


def test_bad_arguments_are_named():
    layer_sizes = (3, 2, 1)
    theta, X, Y, _ = _random_problem(layer_sizes)
    for function in (cost_and_gradient, reference_cost_and_gradient):
        with pytest.raises(ValueError, match="activation='sigmoid'"):
            function(theta, X, Y, layer_sizes, activation="sigmoid")
    with pytest.raises(ValueError, match="Y has shape"):
        cost_and_gradient(theta, X, Y[:, [0, 0]], layer_sizes)
    with pytest.raises(ValueError, match="features"):
        cost_and_gradient(theta, X[:, :2], Y, layer_sizes)
    with pytest.raises(ValueError, match="together"):
        check_gradient(theta, X)


# ----------------------------------------------------------------------------------------
# The plain reference implementation: the kernel's oracle, checked against its own.
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("output_activation", OUTPUT_ACTIVATIONS)
@pytest.mark.parametrize("hidden", [(), (4,), (4, 3, 2)])
def test_reference_gradient_matches_central_differences(activation, output_activation,
                                                        hidden):
    """Oracle: central differences of the reference's own cost, with sample weights and
    alpha, for no hidden layer, one and three."""
    layer_sizes = (3, *hidden, 3)
    theta, X, Y, sample_weight = _random_problem(layer_sizes, seed=3,
                                                 output_activation=output_activation)
    if activation == "relu" and hidden:
        theta = 0.5 + 0.1 * np.abs(theta)  # every unit on the linear side, away from 0
        X = np.abs(X)
    kwargs = dict(alpha=0.4, sample_weight=sample_weight, activation=activation,
                  output_activation=output_activation)
    _, grad = reference_cost_and_gradient(theta, X, Y, layer_sizes, **kwargs)
    numerical = np.empty_like(theta)
    for i in range(theta.size):
        step = np.zeros_like(theta)
        step[i] = 1e-6
        plus = reference_cost_and_gradient(theta + step, X, Y, layer_sizes, **kwargs)[0]
        minus = reference_cost_and_gradient(theta - step, X, Y, layer_sizes, **kwargs)[0]
        numerical[i] = (plus - minus) / 2e-6
    np.testing.assert_allclose(grad, numerical, rtol=1e-6, atol=1e-9)


# ----------------------------------------------------------------------------------------
# Regression outputs: identity with half the squared error (C4), exp with half the
# Poisson deviance (C5)
# ----------------------------------------------------------------------------------------


def _counts(n_samples, n_outputs, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n_samples, 4))
    Y = rng.poisson(np.exp(0.5 * X[:, :n_outputs] + 0.3), size=(n_samples, n_outputs))
    Y[:3] = 0  # zero counts take the other branch of (C5)
    return X, Y.astype(float), rng.uniform(0.2, 2.0, n_samples)


@pytest.mark.parametrize("function", [cost_and_gradient, reference_cost_and_gradient])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss, output_activation",
                         [("squared_error", "identity"), ("poisson", "exp")])
@pytest.mark.parametrize("weighted", [False, True])
def test_same_objective_as_mlpregressor_for_one_output(function, activation, loss,
                                                       output_activation, weighted):
    """Oracle: for one output, MLPRegressor's half squared error and half Poisson
    deviance, their gradients and their penalty are ours, for the same weights."""
    if loss == "poisson" and not MLP_HAS_POISSON:
        pytest.skip("MLPRegressor has loss='poisson' from scikit-learn 1.7 on")
    if weighted and not MLP_HAS_SAMPLE_WEIGHT:
        pytest.skip("MLPRegressor supports sample_weight from scikit-learn 1.7 on")
    X, Y, sample_weight = _counts(40, 1)
    sample_weight = sample_weight if weighted else None
    kwargs = {"loss": loss} if MLP_HAS_POISSON else {}
    mlp = MLPRegressor(hidden_layer_sizes=(5, 3), activation=activation, solver="lbfgs",
                       alpha=0.7, max_iter=3, random_state=0, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit(X, Y[:, 0], **({"sample_weight": sample_weight} if weighted else {}))
    assert mlp.out_activation_ == output_activation
    theta = pack(mlp.coefs_, mlp.intercepts_)
    mlp_loss, mlp_grad = mlp_loss_and_grad(mlp, theta, X, Y, sample_weight)
    cost, grad = function(theta, X, Y, (4, 5, 3, 1), alpha=0.7,
                          sample_weight=sample_weight, activation=activation,
                          output_activation=output_activation)
    np.testing.assert_allclose(cost, mlp_loss, rtol=1e-12)
    np.testing.assert_allclose(grad, mlp_grad, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("output_activation", ["identity", "exp"])
@pytest.mark.parametrize("n_outputs", [1, 3])
def test_regression_gradient_matches_central_differences(activation, output_activation,
                                                         n_outputs):
    X, Y, sample_weight = _counts(12, n_outputs, seed=4)
    layer_sizes = (4, 5, n_outputs)
    theta = np.random.RandomState(5).normal(scale=0.4, size=n_params(layer_sizes))
    if activation == "relu":
        theta = 0.05 + np.abs(theta)  # every hidden unit away from relu's kink
        X = np.abs(X)
    assert check_gradient(theta, X, Y, layer_sizes, alpha=0.3, sample_weight=sample_weight,
                          activation=activation, output_activation=output_activation) < 1e-7


def test_multi_output_squared_error_is_summed_over_outputs_with_its_exact_gradient():
    """For several outputs our half squared error is summed over them, as the
    classifier's cross-entropy is, and our gradient is the exact gradient of our cost.
    MLPRegressor averages its squared loss over the outputs but not its gradient, which
    is then n_outputs times too large (scikit-learn issue 8349): shown here by central
    differences of each objective."""
    X, Y, _ = _counts(30, 3, seed=6)
    mlp = MLPRegressor(hidden_layer_sizes=(4,), activation="logistic", solver="lbfgs",
                       alpha=0.0, max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit(X, Y)
    theta = pack(mlp.coefs_, mlp.intercepts_)
    layer_sizes = (4, 4, 3)

    def differences(objective):
        numerical = np.empty_like(theta)
        for i in range(theta.size):
            step = np.zeros_like(theta)
            step[i] = 1e-6
            numerical[i] = (objective(theta + step)[0] - objective(theta - step)[0]) / 2e-6
        return numerical

    def ours(t):
        return cost_and_gradient(t, X, Y, layer_sizes, output_activation="identity")

    def theirs(t):
        return mlp_loss_and_grad(mlp, t, X, Y)

    cost, grad = ours(theta)
    mlp_loss, mlp_grad = theirs(theta)
    np.testing.assert_allclose(cost, 3 * mlp_loss, rtol=1e-13)  # summed, not averaged
    np.testing.assert_allclose(grad, differences(ours), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(mlp_grad, 3 * differences(theirs), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(grad, mlp_grad, rtol=1e-12, atol=1e-14)


def test_poisson_deviance_is_exact_near_the_fit_and_finite_where_exp_overflows():
    """(C5) from the logit: near the fit (e^z close to y) the deviance is tiny and
    e^z - y z + y log y - y would lose it to cancellation; for a large count and a
    logit beyond log(max float) it stays finite. Oracle: 50-digit mpmath."""
    import mpmath

    def exact(z, y):
        with mpmath.workdps(50):
            z, y = mpmath.mpf(z), mpmath.mpf(y)
            return float(mpmath.exp(z) - y * z + (y * mpmath.log(y) if y else 0) - y)

    cases = [(np.log(1e6) + 1e-6, 1e6), (np.log(3.0) - 1e-4, 3.0), (2.0, 0.0),
             (-30.0, 5.0), (709.9, 1e308)]  # e^709.9 overflows; c and D do not
    for z, y in cases:
        theta = np.array([0.0, z])  # one input of 0, the intercept is the logit
        with np.errstate(over="raise"):
            cost, grad = cost_and_gradient(theta, np.zeros((1, 1)), np.array([[y]]),
                                           (1, 1), output_activation="exp")
        assert cost == pytest.approx(exact(z, y), rel=1e-12), (z, y)
        assert np.isfinite(grad).all()
