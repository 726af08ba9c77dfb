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
from _ulp import (  # noqa: F401 (grid64, grid32: fixtures)
    DIGITS,
    MAX_ULP,
    _assert_within_ulp,
    _mp_sigmoid,
    grid32,
    grid64,
)
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


@pytest.mark.parametrize("n_classes", [3, 71, 72, 200, 1000])
def test_softmax_and_log_softmax_of_many_classes_within_a_few_ulp_of_mpmath(n_classes):
    """Both forms (unit by unit below ROW_SOFTMAX_MIN_UNITS units, row by row from
    there) against mpmath, with rows of a large spread, ties for the top and a row
    whose every other unit underflows."""
    rng = np.random.default_rng(n_classes)
    z = rng.normal(scale=5.0, size=(6, n_classes))
    z[1, :2] = z[1].max() + 1.0  # two tied for the top
    z[2] = -900.0
    z[2, 0] = 0.0  # e^{-900} = 0: the log-probabilities stay finite
    p, log_p = softmax(z), backprop.log_softmax(z)
    assert p.flags.c_contiguous and log_p.flags.c_contiguous
    with mpmath.workdps(DIGITS):
        exact_log = []
        for row in z:
            m = [mpmath.mpf(float(v)) for v in row]
            log_sum = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in m))
            exact_log.append([v - log_sum for v in m])
        exact = np.array([[float(mpmath.exp(v)) for v in row] for row in exact_log])
        exact_log = np.array([[float(v) for v in row] for row in exact_log])
    spread = np.abs(z - z.max(axis=1, keepdims=True))
    # each e^{z_k - m} carries the rounding of z_k - m; the sum over k units adds up to
    # log2(k) roundings
    ulps = 4 + np.log2(n_classes) + spread
    assert np.all(np.abs(p - exact) <= ulps * 2.0 ** -52 * exact)
    # log p = (z - m) - log1p(r): z - m exact here, then two roundings and log1p's
    assert np.all(np.abs(log_p - exact_log)
                  <= (4 + np.log2(n_classes)) * 2.0 ** -52 * np.maximum(np.abs(exact_log), 1))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-14)
    for i in range(z.shape[0]):  # one row at a time: the same form, the same bits
        np.testing.assert_array_equal(softmax(z[i]), p[i:i + 1])
        np.testing.assert_array_equal(backprop.log_softmax(z[i]), log_p[i:i + 1])


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

LABELS = ["F1", "F2", "F3", "C1", "C2", "C3", "C4", "C5", "B1", "B2", "G1", "G2", "S1", "S2"]

CITES = {
    "sigmoid": {"S1"},
    "sigmoid_gradient": {"S2"},
    "log_sigmoid": {"C2"},
    "softmax": {"F3"},
    "log_softmax": {"C3"},
    "forward": {"F1", "F2"},
    "partial_sums": {"C1", "G1", "G2"},
    "combine_partial_sums": {"C1", "G1", "G2"},
    "cost_and_gradient": {"C1", "B1", "B2", "G1", "G2"},
    "reference_cost_and_gradient": {"F1", "F2", "F3", "C1", "C2", "C3", "C4", "C5", "B1",
                                    "B2", "G1", "G2"},
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
