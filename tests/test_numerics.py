"""Numerical fidelity of sklearn_bp.backprop against independent oracles (issue 3).

The oracles are 50-digit ``mpmath`` evaluations from the same float64 inputs, the
classic course's formulas written out in plain numpy, and scikit-learn's
``MLPClassifier`` itself (to show where it clips and we do not).

Errors in ulp are measured against the exact value ``r`` (a double-double ``hi + lo``)
in units of the spacing of floats just below ``|hi|``, which never overstates the ulp
of ``r`` and so never understates the error.
"""

import math
import re
import warnings

import mpmath
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from _mlp_oracle import mlp_loss_and_grad
from sklearn_bp import backprop
from sklearn_bp.backprop import (
    check_gradient,
    cost_and_gradient,
    n_params,
    pack,
    sigmoid,
    sigmoid_gradient,
    softmax,
)

DIGITS = 50
MAX_ULP = 4.0

# Inputs where an earlier sigma(|z|) * sigma(-|z|) formulation was 4.3 to 5 ulp off;
# found by a random search of 10 million points against long double.
HARD_Z = [-4.133920360843717, -3.4109277703997876, -5.537697819615339,
          -3.433603486848023, -4.848325180235648, 3.404996971792401,
          3.430616028334292, -3.4311068981169788, 6.237915226925679,
          # the kernel's u (1 - u) at its worst (3.5 to 3.6 ulp) in 64 million random
          # points against long double
          6.23466425510358, -5.538222562429619, -4.837955734533596, -3.4226741482237415]


def _mp_sigmoid(x):
    return 1 / (1 + mpmath.exp(-x))


def _mp_sigmoid_gradient(x):
    # The course's well-behaved form 1 / (2 (1 + cosh z)); exact at 50 digits.
    return 1 / (2 * (1 + mpmath.cosh(x)))


def _double_double(values):
    """mpf values as float64 pairs ``hi + lo``, ``hi`` the correctly rounded value."""
    hi = np.array([float(v) for v in values])
    lo = np.array([float(v - mpmath.mpf(h)) for v, h in zip(values, hi)])
    return hi, lo


def _reference(z, function):
    with mpmath.workdps(DIGITS):
        return _double_double([function(mpmath.mpf(float(x))) for x in z])


@pytest.fixture(scope="module")
def grid64():
    """About 10 000 float64 points over [-745, 745], densest near 0, with references."""
    z = np.unique(np.concatenate([
        np.linspace(-745.0, 745.0, 5961),  # step 0.25
        np.linspace(-40.0, 40.0, 3201),    # step 0.025
        np.linspace(-1.0, 1.0, 401),
        np.geomspace(1e-300, 1.0, 61), -np.geomspace(1e-300, 1.0, 61),
        [-708.5, -708.3, 708.3, 708.5, 36.7, 37.0, -36.7],
        HARD_Z,
    ]))
    return z, _reference(z, _mp_sigmoid), _reference(z, _mp_sigmoid_gradient)


@pytest.fixture(scope="module")
def grid32():
    """About 6 000 float32 points over [-104, 104] (where e^{-|z|} underflows float32)."""
    z = np.unique(np.concatenate([
        np.linspace(-104.0, 104.0, 4161),  # step 0.05
        np.linspace(-10.0, 10.0, 2001),
        [-87.3, -87.0, 87.0, 87.3, 16.6, 17.0, -16.6],
    ]).astype(np.float32))
    return z, _reference(z, _mp_sigmoid), _reference(z, _mp_sigmoid_gradient)


def _ulp_errors(got, reference, dtype):
    """Errors of `got` in ulp of `dtype`, where the exact value is a normal `dtype`.

    Returns the errors and the mask of grid points that count.
    """
    hi, lo = reference
    finfo = np.finfo(dtype)
    normal = (np.abs(hi) >= finfo.tiny) & (np.abs(hi) <= finfo.max)
    rounded = np.abs(hi[normal]).astype(dtype)
    ulp = np.spacing(np.nextafter(rounded, dtype(0))).astype(np.float64)
    error = np.abs((got[normal].astype(np.float64) - hi[normal]) - lo[normal])
    return error / ulp, normal


def _assert_within_ulp(got, reference, dtype, bound, z, min_points, what):
    """`got` within `bound` ulp of `dtype` of the reference, over more than `min_points`
    grid points where the exact value is normal; returns the mask of those points."""
    errors, normal = _ulp_errors(got, reference, dtype)
    assert normal.sum() > min_points  # the grid really covers the normal range
    worst = int(np.argmax(errors))
    assert errors[worst] <= bound, (
        f"{what}({z[normal][worst]!r}) is {errors[worst]:.2f} {np.dtype(dtype)} ulp off"
    )
    return normal


@pytest.mark.parametrize("function, which", [(sigmoid, 1), (sigmoid_gradient, 2)])
def test_float64_within_4_ulp_of_mpmath(grid64, function, which):
    z, reference = grid64[0], grid64[which]
    got = function(z)
    assert got.dtype == np.float64
    normal = _assert_within_ulp(got, reference, np.float64, MAX_ULP, z, 8000,
                                function.__name__)
    # Where the exact value is subnormal, the error stays within a few subnormal units.
    hi, lo = reference
    absolute = np.abs((got[~normal] - hi[~normal]) - lo[~normal])
    assert np.all(absolute <= MAX_ULP * 2.0 ** -1074)


# The fit's kernel computes sigma'(z) as u (1 - u) with u = sigma(-|z|) = t / (1 + t),
# t = e^{-|z|}, which takes the rounding of 1 + t once rather than twice as (t/d)/d did
# (4.26 ulp at worst on 7 million random points); measured worst case over 64 million
# random points against long double: 3.6 ulp (sigmoid_gradient: 2.8; a (1 - a): 1e300).


# float32 fits run the same kernel in float32, where numpy's float32 exp alone is up to
# 2.4 float32 ulp off: measured over 4 million random points, sigma within 3.4 and
# sigma' within 4.2 float32 ulp. Evaluating that exp in float64 would hold 4 ulp but cost
# 1.4 ns more per element, a third of the float32 kernel.
FLOAT32_KERNEL_MAX_ULP = 4.5


@pytest.mark.parametrize("grid, dtype, gradient_bound, min_points", [
    ("grid64", np.float64, MAX_ULP, 8000),
    ("grid32", np.float32, FLOAT32_KERNEL_MAX_ULP, 5000),
])
def test_estimator_kernel_within_a_few_ulp_of_mpmath(request, grid, dtype, gradient_bound,
                                                     min_points):
    """The fit's own hidden-layer kernel: sigma(z) within 4 ulp, sigma'(z) within 4 ulp
    in float64 (4.5 float32 ulp in float32 fits)."""
    z, sigma_reference, gradient_reference = request.getfixturevalue(grid)
    Z = z[None, :].copy()
    P, N = np.empty_like(Z), np.empty_like(Z)
    with np.errstate(under="ignore"):
        backprop._hidden_forward(Z, P, N, "logistic")  # Z becomes A, P holds g'
    assert Z.dtype == P.dtype == dtype
    for got, reference, bound, what in ((Z[0], sigma_reference, MAX_ULP, "sigma"),
                                        (P[0], gradient_reference, gradient_bound,
                                         "sigma'")):
        _assert_within_ulp(got, reference, dtype, bound, z, min_points, f"kernel {what}")


@pytest.mark.parametrize("grid, dtype, min_points", [("grid64", np.float64, 7000),
                                                    ("grid32", np.float32, 5000)])
def test_prediction_kernel_within_4_ulp_of_mpmath(request, monkeypatch, grid, dtype,
                                                  min_points):
    """Predictions need no derivative: float64 logits below _DIRECT_SIGMOID_MAX take the
    direct sigma(z) = e^z / (1 + e^z); the rest (larger logits, float32) the fit's form.
    Each within 4 ulp; the spy on the fit's exponential shows which form ran."""
    z, (hi, lo), _ = request.getfixturevalue(grid)
    calls = []
    fit_form = backprop._exp_neg_abs

    def recording_exp_neg_abs(values, out):
        calls.append(values.size)
        return fit_form(values, out)

    monkeypatch.setattr(backprop, "_exp_neg_abs", recording_exp_neg_abs)
    below = z < backprop._DIRECT_SIGMOID_MAX
    assert dtype == np.float32 or not below.all()  # the float64 grid reaches beyond it
    for part in (below, np.ones_like(below)):
        calls.clear()
        Z = z[part][None, :].copy()
        P, N = np.empty_like(Z), np.empty_like(Z)
        with np.errstate(under="ignore"):
            backprop._hidden_forward(Z, P, N, "logistic", derivative=False)
        direct = dtype == np.float64 and below[part].all()
        assert calls == ([] if direct else [Z.size])
        normal = _assert_within_ulp(Z[0], (hi[part], lo[part]), dtype, MAX_ULP, z[part],
                                    min_points, "prediction kernel sigma")
        subnormal = np.abs(((Z[0] - hi[part]) - lo[part])[~normal])
        assert np.all(subnormal <= MAX_ULP * np.finfo(dtype).smallest_subnormal)


@pytest.mark.parametrize("function, which", [(sigmoid, 1), (sigmoid_gradient, 2)])
def test_float32_within_4_ulp_of_mpmath_in_float32(grid32, function, which):
    z, reference = grid32[0], grid32[which]
    got = function(z)
    assert got.dtype == np.float32
    _assert_within_ulp(got, reference, np.float32, MAX_ULP, z, 5000, function.__name__)


def test_softmax_within_a_few_ulp_of_mpmath():
    rng = np.random.default_rng(0)
    z = np.vstack([rng.normal(scale=5.0, size=(200, 4)),
                   [[1000.0, 0.0, -1000.0, 3.0], [-800.0, -800.0, -801.0, -2000.0],
                    [0.0, 0.0, 0.0, 0.0], [1e-300, -1e-300, 36.7, 36.7]]])
    p = softmax(z)
    assert p.shape == z.shape and p.dtype == np.float64 and p.flags.c_contiguous
    with mpmath.workdps(DIGITS):
        exact = np.array([[float(mpmath.exp(mpmath.mpf(float(v))) / mpmath.fsum(
            mpmath.exp(mpmath.mpf(float(w))) for w in row)) for v in row] for row in z])
    # Each e^{z_k - m} inherits the rounding of z_k - m, |z_k - m| 2^-53 relative at
    # most; then the exponential, a sum of four and a division: within a few ulp more.
    spread = np.abs(z - z.max(axis=1, keepdims=True))
    assert np.all(np.abs(p - exact) <= (4 + spread) * 2.0 ** -52 * exact)
    assert softmax(z.astype(np.float32)).dtype == np.float32
    np.testing.assert_array_equal(softmax(z[0]), p[:1])  # one row


def test_exact_at_zero():
    for zero in (0.0, -0.0, np.float32(0.0), np.float32(-0.0)):
        assert sigmoid(zero) == 0.5
        assert sigmoid_gradient(zero) == 0.25
    assert sigmoid(np.float32(0.0)).dtype == np.float32
    assert sigmoid_gradient(np.float32(0.0)).dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_no_warnings_and_no_floating_point_errors(grid64, dtype):
    finfo = np.finfo(dtype)
    special = [0.0, -0.0, finfo.tiny, -finfo.tiny, finfo.smallest_subnormal,
               -finfo.smallest_subnormal, 1.0, -1.0, 88.8, -88.8, 103.9, -103.9, 709.8,
               -709.8, 745.2, -745.2, 1e4, -1e4, 1e300, -1e300, float(finfo.max),
               -float(finfo.max), np.inf, -np.inf]
    with np.errstate(over="ignore"):  # 1e300 does not fit in float32: that becomes inf
        z = np.concatenate([grid64[0], special]).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            a = sigmoid(z)
            g = sigmoid_gradient(z)
    assert a.dtype == g.dtype == dtype
    assert np.all((a >= 0) & (a <= 1)) and np.all((g >= 0) & (g <= 0.25))
    infinities = np.isinf(z)
    np.testing.assert_array_equal(a[infinities], (z[infinities] > 0).astype(dtype))
    np.testing.assert_array_equal(g[infinities], 0.0)


# ----------------------------------------------------------------------------------------
# An mpmath oracle for the whole objective, from the same float64 parameters.
# ----------------------------------------------------------------------------------------


def _mp_cost(params, X, Y, layer_sizes, *, activation="logistic",
             output_activation="logistic", alpha=0.0, sample_weight=None):
    """(C1)-(C3) at 50 digits; `params` is theta as a list of mpf (same layout)."""
    layer_sizes = [int(h) for h in layer_sizes]
    coefs, intercepts, start = [], [], 0
    for fan_in, fan_out in zip(layer_sizes[:-1], layer_sizes[1:]):
        coefs.append([params[start + i * fan_out:start + (i + 1) * fan_out]
                      for i in range(fan_in)])
        start += fan_in * fan_out
    for fan_out in layer_sizes[1:]:
        intercepts.append(params[start:start + fan_out])
        start += fan_out
    g = {"logistic": _mp_sigmoid, "tanh": mpmath.tanh,
         "relu": lambda v: max(v, mpmath.mpf(0))}[activation]
    n = X.shape[0]
    weights = [mpmath.mpf(1)] * n if sample_weight is None else [
        mpmath.mpf(float(s)) for s in sample_weight]
    total = mpmath.mpf(0)
    for i in range(n):
        a = [mpmath.mpf(float(v)) for v in X[i]]
        for layer, (W, b) in enumerate(zip(coefs, intercepts)):
            z = [b[k] + mpmath.fsum(a[j] * W[j][k] for j in range(len(a)))
                 for k in range(len(b))]
            a = [g(v) for v in z] if layer + 1 < len(coefs) else z
        y = [int(v) for v in Y[i]]
        if output_activation == "logistic":
            c = mpmath.fsum(mpmath.log1p(mpmath.exp(-v if t else v))
                            for v, t in zip(z, y))
        else:
            top = max(range(len(z)), key=lambda k: z[k])
            r = mpmath.fsum(mpmath.exp(v - z[top]) for k, v in enumerate(z) if k != top)
            c = mpmath.log1p(r) - mpmath.fsum(t * (v - z[top]) for v, t in zip(z, y))
        total += weights[i] * c
    S = mpmath.fsum(weights)
    squares = mpmath.fsum(w * w for W in coefs for row in W for w in row)
    return (total + alpha * squares / 2) / S


def _mp_cost_and_gradient(theta, X, Y, layer_sizes, digits=DIGITS, **kwargs):
    """The exact cost and its gradient, by numerical differentiation of the exact cost
    at `digits` digits (so backpropagation plays no part in the oracle). A partial
    derivative ``10^-k`` times the cost needs about ``k + 50`` digits."""
    with mpmath.workdps(digits):
        params = [mpmath.mpf(float(v)) for v in theta]
        cost = _mp_cost(params, X, Y, layer_sizes, **kwargs)
        grad = []
        for i in range(len(params)):
            def partial(h, i=i):
                shifted = list(params)
                shifted[i] += h
                return _mp_cost(shifted, X, Y, layer_sizes, **kwargs)
            grad.append(mpmath.diff(partial, 0))
        return cost, grad


def _assert_matches_mp(got, exact, rtol):
    """`got` equals the exact value to `rtol`, relative to ``max(|exact|, tiny)``: below
    the normal range the exact value rounds to a subnormal or 0 and only absolute
    accuracy makes sense."""
    got = np.atleast_1d(np.asarray(got, dtype=np.float64))
    exact = exact if isinstance(exact, list) else [exact]
    error = [abs(mpmath.mpf(float(x)) - e) for x, e in zip(got, exact)]
    scale = [max(abs(e), mpmath.mpf(np.finfo(np.float64).tiny)) for e in exact]
    worst = max(range(len(got)), key=lambda k: error[k] / scale[k])
    assert error[worst] <= rtol * scale[worst], (
        f"entry {worst}: got {got[worst]!r}, exact {mpmath.nstr(exact[worst], 17)}, "
        f"relative error {mpmath.nstr(error[worst] / scale[worst], 3)}"
    )


# ----------------------------------------------------------------------------------------
# (1) The estimator's backprop uses the accurate g'(z): hidden units far in saturation.
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("activation, hidden_logits", [
    ("logistic", [40.0, -40.0, 0.5]),
    ("logistic", [36.8, 100.0, -3.0]),
    ("logistic", [700.0, -700.0, 20.0]),
    ("tanh", [20.0, -20.0, 0.25]),
    ("tanh", [40.0, 300.0, -300.0]),
])
@pytest.mark.parametrize("label", [0.0, 1.0])
def test_hidden_derivative_exact_in_saturation(activation, hidden_logits, label):
    """Where ``a (1 - a)`` (or ``1 - tanh^2``) is exactly 0 or all rounding error,
    backprop's first-layer gradient still equals the exact derivative to 1e-13."""
    layer_sizes = (2, 3, 1)
    x = np.array([[1.0, -0.5]])
    W0 = np.array([hidden_logits, [0.5, -0.25, 1.0]])
    b0 = np.array([0.5, -0.25, 1.0]) * 0.5  # x @ W0 + b0 = hidden_logits (to rounding)
    W1, b1 = np.array([[1.5], [-0.5], [0.75]]), np.array([0.125])
    theta = pack([W0, W1], [b0, b1])
    Y = np.array([[label]])
    cost, grad = cost_and_gradient(theta, x, Y, layer_sizes, activation=activation)
    # Derivatives down to e^{-700} = 1e-304 next to an O(1) cost: 400 digits.
    exact_cost, exact_grad = _mp_cost_and_gradient(theta, x, Y, layer_sizes, digits=400,
                                                   activation=activation)
    _assert_matches_mp(cost, exact_cost, 1e-14)
    # One sample and one output: no sum can cancel, so every entry, however small,
    # is computed to full relative accuracy.
    _assert_matches_mp(grad, exact_grad, 1e-13)
    # The first-layer weights' gradient (theta[:6]) is tiny but not 0, as it would be
    # with the cancelling form.
    assert np.all(grad[:6] != 0)


# ----------------------------------------------------------------------------------------
# (2) Saturated outputs: exact cost where probabilities round to 0 or 1.
# ----------------------------------------------------------------------------------------


def _saturated_problem(output_activation, magnitude, labels):
    """A 2-3-3 network whose output logits are ``magnitude * pattern + O(1)`` for every
    sample, with the labels on the winning side (``"correct"``) or the losing side."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(4, 2))
    W0, b0 = rng.normal(scale=0.5, size=(2, 3)), rng.normal(scale=0.5, size=3)
    W1 = rng.normal(scale=0.3, size=(3, 3))
    if output_activation == "logistic":
        pattern = np.array([1.0, -1.0, 1.0])
        y_row = (pattern > 0) if labels == "correct" else (pattern < 0)
    else:
        pattern = np.array([1.0, 0.0, -1.0])
        y_row = np.eye(3)[0 if labels == "correct" else 2]
    b1 = magnitude * pattern
    Y = np.tile(y_row.astype(float), (4, 1))
    return pack([W0, W1], [b0, b1]), X, Y, (2, 3, 3)


MAGNITUDES = [30.0, 40.0, 100.0, 700.0, 1e4]


@pytest.mark.parametrize("output_activation", ["logistic", "softmax"])
@pytest.mark.parametrize("magnitude", MAGNITUDES)
@pytest.mark.parametrize("labels", ["correct", "wrong"])
def test_saturated_cost_exact_and_gradient_consistent(output_activation, magnitude,
                                                      labels):
    theta, X, Y, layer_sizes = _saturated_problem(output_activation, magnitude, labels)
    kwargs = dict(output_activation=output_activation)
    cost, grad = cost_and_gradient(theta, X, Y, layer_sizes, **kwargs)
    assert np.isfinite(cost) and np.all(np.isfinite(grad))
    exact_cost, exact_grad = _mp_cost_and_gradient(theta, X, Y, layer_sizes, **kwargs)
    _assert_matches_mp(cost, exact_cost, 1e-12)
    # The gradient is the exact one, to rounding (sums over samples may cancel, so the
    # comparison is relative to the largest entry).
    exact = np.array([float(v) for v in exact_grad])
    scale = max(np.abs(exact).max(), np.finfo(np.float64).tiny)
    np.testing.assert_allclose(grad, exact, rtol=1e-12, atol=1e-12 * scale)
    # And consistent with the cost: central differences of our own cost agree. The cost
    # is ~|z| (wrong) or ~e^{-|z|} (correct); a step of 1e-4 keeps both the truncation
    # (relative h^2) and the rounding (eps |J| / h |J'|) near 1e-8.
    if np.abs(grad).max() > 0:
        assert check_gradient(theta, X, Y, layer_sizes, epsilon=1e-4, **kwargs) < 1e-6


@pytest.mark.parametrize("output_activation", ["logistic", "softmax"])
@pytest.mark.parametrize("magnitude, labels", [(1e4, "wrong"), (40.0, "correct")])
def test_mlpclassifier_clips_where_we_are_exact(output_activation, magnitude, labels):
    theta, X, Y, layer_sizes = _saturated_problem(output_activation, magnitude, labels)
    # Fit once on labels that make MLPClassifier pick the same output units (three
    # independent sigmoids for multilabel targets, a softmax for multiclass ones).
    y_fit = (np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]])
             if output_activation == "logistic" else np.array([0, 1, 2, 0]))
    mlp = MLPClassifier(hidden_layer_sizes=(3,), activation="logistic", solver="lbfgs",
                        alpha=0.0, max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit(X, y_fit)
    assert mlp.out_activation_ == output_activation

    mlp_loss, _ = mlp_loss_and_grad(mlp, theta, X, Y)
    ours, _ = cost_and_gradient(theta, X, Y, layer_sizes,
                                output_activation=output_activation)
    with mpmath.workdps(DIGITS):
        exact = _mp_cost([mpmath.mpf(float(v)) for v in theta], X, Y, layer_sizes,
                         output_activation=output_activation)

    # MLPClassifier clips probabilities to [eps, 1 - eps]: each saturated output term
    # becomes -log(eps) = 36.04 when wrong, -log(1 - eps) = 2.2e-16 when right, whatever
    # the logit.
    eps = np.finfo(np.float64).eps
    per_term = -math.log(eps) if labels == "wrong" else -math.log1p(-eps)
    terms = 3 if output_activation == "logistic" else 1  # saturated terms per sample
    assert mlp_loss == pytest.approx(terms * per_term, rel=1e-12)
    assert abs(mpmath.mpf(mlp_loss) - exact) > 0.5 * exact  # far from the exact cost
    _assert_matches_mp(ours, exact, 1e-12)                  # we are not


# ----------------------------------------------------------------------------------------
# (3) The classic course's gradient check, rebuilt independently.
# ----------------------------------------------------------------------------------------


def _debug_initialize_weights(fan_out, fan_in):
    """The course's debugInitializeWeights: sin(1..numel) / 10, filled column-major."""
    shape = (fan_out, 1 + fan_in)
    return np.reshape(np.sin(np.arange(1, shape[0] * shape[1] + 1)), shape,
                      order="F") / 10


def _course_cost_and_gradient(Theta1, Theta2, X, y, num_labels, lam):
    """nnCostFunction as the course writes it (bias column first, plain sigmoid)."""
    m = X.shape[0]
    Y = np.eye(num_labels)[y - 1]

    def g(z):
        return 1 / (1 + np.exp(-z))

    a1 = np.hstack([np.ones((m, 1)), X])
    z2 = a1 @ Theta1.T
    a2 = np.hstack([np.ones((m, 1)), g(z2)])
    h = g(a2 @ Theta2.T)
    J = -np.sum(Y * np.log(h) + (1 - Y) * np.log(1 - h)) / m
    J += lam / (2 * m) * (np.sum(Theta1[:, 1:] ** 2) + np.sum(Theta2[:, 1:] ** 2))
    d3 = h - Y
    d2 = (d3 @ Theta2[:, 1:]) * g(z2) * (1 - g(z2))
    Theta1_grad, Theta2_grad = d2.T @ a1 / m, d3.T @ a2 / m
    Theta1_grad[:, 1:] += lam / m * Theta1[:, 1:]
    Theta2_grad[:, 1:] += lam / m * Theta2[:, 1:]
    return J, Theta1_grad, Theta2_grad


@pytest.mark.parametrize("lam", [0.0, 3.0])
def test_course_gradient_check(lam):
    input_layer_size, hidden_layer_size, num_labels, m = 3, 5, 3, 5
    Theta1 = _debug_initialize_weights(hidden_layer_size, input_layer_size)
    Theta2 = _debug_initialize_weights(num_labels, hidden_layer_size)
    X = _debug_initialize_weights(m, input_layer_size - 1)
    y = 1 + np.arange(1, m + 1) % num_labels
    assert Theta1.shape == (5, 4) and Theta2.shape == (3, 6) and X.shape == (5, 3)
    np.testing.assert_array_equal(y, [2, 3, 1, 2, 3])

    # Our layout: coefs[l] = Theta[:, 1:].T, intercepts[l] = Theta[:, 0].
    layer_sizes = (input_layer_size, hidden_layer_size, num_labels)
    theta = pack([Theta1[:, 1:].T, Theta2[:, 1:].T], [Theta1[:, 0], Theta2[:, 0]])
    Y = np.eye(num_labels)[y - 1]
    assert theta.shape == (n_params(layer_sizes),) == (38,)

    J, Theta1_grad, Theta2_grad = _course_cost_and_gradient(Theta1, Theta2, X, y,
                                                            num_labels, lam)
    cost, grad = cost_and_gradient(theta, X, Y, layer_sizes, alpha=lam)
    assert cost == pytest.approx(J, rel=1e-14)
    expected = pack([Theta1_grad[:, 1:].T, Theta2_grad[:, 1:].T],
                    [Theta1_grad[:, 0], Theta2_grad[:, 0]])
    # Entries are means of five products of up to 0.51, summed in each code's own order:
    # eps times the sum of their sizes reaches 1.1e-16, so 3e-16 covers both orders.
    # (numpy 1.23's BLAS put an entry of 4e-5 7e-17 from the course's: an atol of
    # 1e-17 had asked for less than one rounding.)
    np.testing.assert_allclose(grad, expected, rtol=1e-12, atol=3e-16)

    assert check_gradient(theta, X, Y, layer_sizes, alpha=lam) < 1e-9
    # check_gradient() with no arrays builds this same network.
    assert check_gradient(alpha=lam) < 1e-9


# ----------------------------------------------------------------------------------------
# (5) The equations are stated once in the module docstring and cited by the functions.
# ----------------------------------------------------------------------------------------

LABELS = ["F1", "F2", "F3", "C1", "C2", "C3", "B1", "B2", "G1", "G2", "S1", "S2"]

CITES = {
    "sigmoid": {"S1"},
    "sigmoid_gradient": {"S2"},
    "log_sigmoid": {"C2"},
    "softmax": {"F3"},
    "log_softmax": {"C3"},
    "forward": {"F1", "F2"},
    "partial_sums": {"C1", "G1", "G2"},
    "finish": {"C1", "G1", "G2"},
    "cost_and_gradient": {"C1", "B1", "B2", "G1", "G2"},
}


def _cited(doc):
    """Labels cited in `doc`; a range such as ``(B1)-(G2)`` cites every label in it."""
    cited = set()
    for first, last in re.findall(r"\((\w\d)\)(?:-\((\w\d)\))?", doc or ""):
        if first not in LABELS:
            continue
        if last in LABELS:
            cited.update(LABELS[LABELS.index(first):LABELS.index(last) + 1])
        else:
            cited.add(first)
    return cited


def test_equations_stated_once_in_module_docstring():
    doc = backprop.__doc__
    for label in LABELS:
        statements = re.findall(rf"^\s+\({label}\)\s+\S", doc, flags=re.MULTILINE)
        assert len(statements) == 1, f"({label}) is stated {len(statements)} times"


@pytest.mark.parametrize("name", sorted(CITES))
def test_functions_cite_their_equations(name):
    missing = CITES[name] - _cited(getattr(backprop, name).__doc__)
    assert not missing, f"{name}'s docstring does not cite {sorted(missing)}"


def test_every_equation_is_cited_by_some_public_function():
    public = [getattr(backprop, name) for name in backprop.__all__]
    cited = set().union(*(_cited(f.__doc__) for f in public if callable(f)))
    assert cited == set(LABELS)
