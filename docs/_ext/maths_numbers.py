"""The numbers of the user guide's derivation, computed each time the docs are built.

Every number that ``docs/user_guide.rst`` states about the mathematics comes from here:
the Sphinx extension ``maths_pages`` puts them into the page (the role ``:bp:`` and the
directive ``bp-generated``), so that the text and the numbers cannot drift apart, and
``tests/test_docs_maths.py`` checks them against independent oracles (mpmath, central
differences at 60 digits, the classic course's column-vector formulas).

Plain numpy, mpmath and the public functions of :mod:`sklearn_bp.backprop`; no Sphinx,
so that the tests can import it without the docs extra.
"""

import functools
import math

import mpmath
import numpy as np

from sklearn_bp.backprop import (
    check_gradient,
    cost_and_gradient,
    log_sigmoid,
    n_params,
    pack,
    sigmoid,
    sigmoid_gradient,
    unpack,
)

DIGITS = 50  # mpmath's working precision for the exact values
TINY = np.finfo(np.float64).tiny  # the smallest normal double, 2^-1022

# ----------------------------------------------------------------------------------------
# Formatting: TeX for MathJax
# ----------------------------------------------------------------------------------------


def sci(x, digits=2):
    """``x`` in TeX with `digits` significant digits: ``1.8 \\times 10^{-14}``, or plain
    ``0.30`` for numbers from 0.01 to 10."""
    x = float(x)
    if x == 0:
        return "0"
    if 0.01 <= abs(x) < 10:
        return f"{x:.{max(0, digits - 1 - math.floor(math.log10(abs(x))))}f}"
    mantissa, exponent = f"{x:.{digits - 1}e}".split("e")
    return rf"{mantissa} \times 10^{{{int(exponent)}}}"


def fixed(x, decimals=4):
    """``x`` with `decimals` decimals, and never ``-0.0000``."""
    text = f"{float(x):.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def bmatrix(M, decimals=4):
    """A 2-D array as a TeX ``bmatrix`` of fixed-point numbers."""
    M = np.atleast_2d(M)
    rows = (" & ".join(fixed(v, decimals) for v in row) for row in M)
    return r"\begin{bmatrix} " + r" \\ ".join(rows) + r" \end{bmatrix}"


# ----------------------------------------------------------------------------------------
# The derivative of the sigmoid: cancellation, and ulp errors
# ----------------------------------------------------------------------------------------


def mp_sigmoid(z):
    """sigma(z) at `DIGITS` digits, from the double z."""
    with mpmath.workdps(DIGITS):
        return 1 / (1 + mpmath.exp(-mpmath.mpf(float(z))))


def mp_sigmoid_gradient(z):
    """sigma'(z) = 1 / (2 (1 + cosh z)) (S2) at `DIGITS` digits, from the double z."""
    with mpmath.workdps(DIGITS):
        return 1 / (2 * (1 + mpmath.cosh(mpmath.mpf(float(z)))))


def relative_error(got, exact):
    with mpmath.workdps(DIGITS):
        return float(abs(mpmath.mpf(float(got)) - exact) / exact)


def naive_sigmoid(z):
    """``a = 1 / (1 + exp(-z))``: the rounding of ``1 + e^{-z}`` comes first."""
    return 1.0 / (1.0 + math.exp(-z))


def rounded_sigmoid(z):
    """The double nearest to sigma(z): correctly rounded."""
    return float(mp_sigmoid(z))


CANCELLATION_Z = (5, 20, 30, 36, 37, 40)


@functools.lru_cache(maxsize=None)
def cancellation_rows():
    """For each z of the table: sigma'(z) and the relative errors of ``a * (1 - a)`` with
    both kinds of ``a``, and of :func:`sigmoid_gradient`."""
    rows = []
    for z in CANCELLATION_Z:
        exact = mp_sigmoid_gradient(z)
        naive, rounded = naive_sigmoid(z), rounded_sigmoid(z)
        rows.append({
            "z": z,
            "exact": float(exact),
            "naive_a": naive,
            "rounded_a": rounded,
            "naive": relative_error(naive * (1.0 - naive), exact),
            "rounded": relative_error(rounded * (1.0 - rounded), exact),
            "code": relative_error(sigmoid_gradient(float(z)), exact),
        })
    return tuple(rows)


def _error_cell(error, a):
    if a == 1.0:
        return r"1 (:math:`a = 1`, the product is 0)"
    return f":math:`{sci(error)}`"


def cancellation_table():
    """The list-table of the sigma' section, as reStructuredText."""
    lines = [
        ".. list-table:: Relative error of three ways to compute :math:`\\sigma'(z)` in"
        " double precision",
        "   :header-rows: 1",
        "   :widths: 8 23 23 23 23",
        "",
        "   * - :math:`z`",
        "     - exact :math:`\\sigma'(z)`",
        "     - :math:`a (1 - a)`, :math:`a = 1 / (1 + e^{-z})` rounded step by step",
        "     - :math:`a (1 - a)`, :math:`a` correctly rounded",
        "     - ``sigmoid_gradient(z)``",
    ]
    for row in cancellation_rows():
        lines += [
            f"   * - {row['z']}",
            f"     - :math:`{sci(row['exact'], 4)}`",
            f"     - {_error_cell(row['naive'], row['naive_a'])}",
            f"     - {_error_cell(row['rounded'], row['rounded_a'])}",
            f"     - :math:`{sci(row['code'], 1)}`",
        ]
    return "\n".join(lines)


# Points where the one-exponential forms are at their worst, found by random searches
# of millions of points against long double (tests/test_numerics.py keeps the full list)
HARD_Z = (-4.133920360843717, 6.237915226925679, 6.23466425510358, -5.538222562429619,
          -4.837955734533596, -3.4226741482237415, 3.404996971792401)


def ulp_grid():
    """Doubles over [-708, 708], where sigma'(z) is a normal number, densest near 0."""
    return np.unique(np.concatenate([
        np.linspace(-708.0, 708.0, 2833), np.linspace(-40.0, 40.0, 1601),
        np.linspace(-1.0, 1.0, 201), HARD_Z,
    ]))


def ulp_errors(got, exact):
    """Errors of the doubles `got` in units of the spacing of doubles just below the
    exact values (which never understates an error)."""
    with mpmath.workdps(DIGITS):
        hi = np.array([float(e) for e in exact])
        lo = np.array([float(e - mpmath.mpf(h)) for e, h in zip(exact, hi)])
    ulp = np.spacing(np.nextafter(np.abs(hi), 0.0))
    return np.abs((np.asarray(got, dtype=np.float64) - hi) - lo) / ulp


def one_exponential_gradient(z):
    """sigma'(z) as ``u (1 - u)``, ``u = sigma(-|z|) = t / (1 + t)``, ``t = e^{-|z|}``:
    the form of the fit's hidden layers, in the same numpy operations."""
    t = np.exp(-np.abs(z))
    u = t / (1.0 + t)
    return (1.0 - u) * u


def one_exponential_sigmoid(z):
    """sigma(z) from the same ``u``: ``1 - u`` where ``z >= 0``, ``u`` elsewhere."""
    t = np.exp(-np.abs(z))
    u = t / (1.0 + t)
    return np.where(z >= 0, 1.0 - u, u)


def cosh_gradient(z):
    """sigma'(z) in the note's form ``1 / (2 (1 + cosh z))``."""
    return 1.0 / (2.0 * (1.0 + np.cosh(z)))


@functools.lru_cache(maxsize=None)
def ulp_summary():
    """The worst errors in ulp over :func:`ulp_grid`, of each way to compute sigma and
    sigma' that the guide names."""
    z = ulp_grid()
    exact_sigmoid = [mp_sigmoid(x) for x in z]
    exact_gradient = [mp_sigmoid_gradient(x) for x in z]
    worst = {
        "sigmoid": ulp_errors(sigmoid(z), exact_sigmoid),
        "sigmoid_gradient": ulp_errors(sigmoid_gradient(z), exact_gradient),
        "kernel_sigmoid": ulp_errors(one_exponential_sigmoid(z), exact_sigmoid),
        "kernel_gradient": ulp_errors(one_exponential_gradient(z), exact_gradient),
        "cosh_gradient": ulp_errors(cosh_gradient(z), exact_gradient),
    }
    summary = {name: float(errors.max()) for name, errors in worst.items()}
    summary["points"] = int(z.size)
    return summary


# ----------------------------------------------------------------------------------------
# The worked example: a 2-3-1 network and one sample
# ----------------------------------------------------------------------------------------

EXAMPLE = {
    "x": [[0.5, -1.0]],
    "y": [[1.0]],
    "W0": [[0.2, -0.4, 0.1], [0.3, 0.1, -0.5]],
    "b0": [0.1, -0.1, 0.2],
    "W1": [[0.6], [-0.3], [0.8]],
    "b1": [-0.2],
}


def _logistic(z):
    return 1.0 / (1.0 + np.exp(-z))


@functools.lru_cache(maxsize=None)
def worked_example():
    """Every quantity of the worked example, in plain numpy, equation by equation
    (logistic hidden and output units, alpha = 0, one sample of weight 1, so S = 1
    and G_l = D_l); then the same cost and gradient from
    :func:`~sklearn_bp.backprop.cost_and_gradient`, and their largest difference."""
    e = {name: np.array(value, dtype=np.float64) for name, value in EXAMPLE.items()}
    x, y, W0, b0, W1, b1 = (e[k] for k in ("x", "y", "W0", "b0", "W1", "b1"))
    Z1 = x @ W0 + b0                                # (F1)
    A1 = _logistic(Z1)                              # (F2)
    Z2 = A1 @ W1 + b1                               # (F1)
    A2 = _logistic(Z2)                              # (F3)
    J = float(np.sum(y * np.log1p(np.exp(-Z2)) + (1 - y) * np.log1p(np.exp(Z2))))  # (C2)
    D2 = A2 - y                                     # (B1)
    back = D2 @ W1.T                                # the pull-back to A_1
    gprime = _logistic(Z1) * _logistic(-Z1)         # (S2)
    D1 = back * gprime                              # (B2)
    gW1, gb1 = A1.T @ D2, D2.sum(axis=0)            # (G1), (G2)
    gW0, gb0 = x.T @ D1, D1.sum(axis=0)
    layer_sizes = (2, 3, 1)
    cost, grad = cost_and_gradient(pack([W0, W1], [b0, b1]), x, y, layer_sizes)
    coefs, intercepts = unpack(grad, layer_sizes)
    ours = np.concatenate([g.ravel() for g in (gW0, gW1, gb0, gb1)])
    theirs = np.concatenate([g.ravel() for g in (*coefs, *intercepts)])
    difference = max(abs(cost - J), float(np.max(np.abs(ours - theirs))))
    if difference > 1e-15:
        raise AssertionError(f"the worked example and cost_and_gradient differ by "
                             f"{difference:.3g}")
    return dict(x=x, y=y, W0=W0, b0=b0, W1=W1, b1=b1, Z1=Z1, A1=A1, Z2=Z2, A2=A2, J=J,
                D2=D2, back=back, gprime=gprime, D1=D1, gW0=gW0, gb0=gb0, gW1=gW1,
                gb1=gb1, grad=grad, difference=difference, n_params=grad.size)


def worked_example_rst():
    """The worked example's displays, as reStructuredText."""
    e = worked_example()
    m = bmatrix

    def display(rows):
        body = " \\\\\n   ".join(rows)
        return "\n".join([".. math::", "", r"   \begin{aligned}", f"   {body}",
                          r"   \end{aligned}", ""])

    data = display([
        rf"A_0 = x &= {m(e['x'], 1)}, \qquad y = {fixed(e['y'][0, 0], 0)},",
        rf"W_0 &= {m(e['W0'], 1)}, \qquad b_0 = {m(e['b0'], 1)},",
        rf"W_1 &= {m(e['W1'], 1)}, \qquad b_1 = {m(e['b1'], 1)}.",
    ])
    forward = display([
        rf"Z_1 &= A_0 W_0 + b_0 = {m(e['Z1'])} \quad \text{{(F1)}}",
        rf"A_1 &= \sigma(Z_1) = {m(e['A1'])} \quad \text{{(F2)}}",
        rf"Z_2 &= A_1 W_1 + b_1 = {m(e['Z2'])} \quad \text{{(F1)}}",
        rf"A_2 &= \sigma(Z_2) = {m(e['A2'])} \quad \text{{(F3)}}",
        rf"J &= \log\bigl(1 + e^{{-Z_2}}\bigr) = {fixed(e['J'])} \quad \text{{(C2)}}",
    ])
    backward = display([
        rf"D_2 &= A_2 - Y = {m(e['D2'])} \quad \text{{(B1)}}",
        rf"D_2 W_1^{{\top}} &= {m(e['back'])}",
        rf"\sigma'(Z_1) &= \sigma(Z_1) \odot \sigma(-Z_1) = {m(e['gprime'])}"
        r" \quad \text{(S2)}",
        rf"D_1 &= \bigl(D_2 W_1^{{\top}}\bigr) \odot \sigma'(Z_1) = {m(e['D1'])}"
        r" \quad \text{(B2)}",
    ])
    gradient = display([
        rf"\frac{{\partial J}}{{\partial W_1}} &= A_1^{{\top}} D_2 = {m(e['gW1'])}"
        r" \quad \text{(G1)}",
        rf"\frac{{\partial J}}{{\partial b_1}} &= D_2 = {m(e['gb1'])} \quad \text{{(G2)}}",
        rf"\frac{{\partial J}}{{\partial W_0}} &= A_0^{{\top}} D_1 = {m(e['gW0'])}"
        r" \quad \text{(G1)}",
        rf"\frac{{\partial J}}{{\partial b_0}} &= D_1 = {m(e['gb0'])} \quad \text{{(G2)}}",
    ])
    code = "\n".join([
        ".. code-block:: python",
        "",
        "   import numpy as np",
        "   from sklearn_bp.backprop import cost_and_gradient, pack, unpack",
        "",
        f"   x, y = np.array({EXAMPLE['x']}), np.array({EXAMPLE['y']})",
        f"   W0 = np.array({EXAMPLE['W0']})",
        f"   b0 = np.array({EXAMPLE['b0']})",
        f"   W1 = np.array({EXAMPLE['W1']})",
        f"   b1 = np.array({EXAMPLE['b1']})",
        "   theta = pack([W0, W1], [b0, b1])",
        "   cost, grad = cost_and_gradient(theta, x, y, (2, 3, 1))",
        "   (dW0, dW1), (db0, db1) = unpack(grad, (2, 3, 1))",
        "",
    ])
    return {"data": data, "forward": forward, "backward": backward,
            "gradient": gradient, "code": code}


# ----------------------------------------------------------------------------------------
# Finite differences
# ----------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def finite_differences():
    """Central differences: :func:`check_gradient`'s relative difference on its debug
    network (3-5-3, five samples), and the largest error of one difference quotient
    against the backpropagated derivative on the worked example."""
    relative = check_gradient()
    # The quotients themselves, on the worked example's network (whose gradient the
    # tests check against 50-digit central differences), with check_gradient's step.
    e = worked_example()
    theta = pack([e["W0"], e["W1"]], [e["b0"], e["b1"]])
    sizes = (2, 3, 1)
    epsilon = 1e-5
    errors = []
    for i in range(theta.size):
        step = np.zeros_like(theta)
        step[i] = epsilon
        plus, _ = cost_and_gradient(theta + step, e["x"], e["y"], sizes)
        minus, _ = cost_and_gradient(theta - step, e["x"], e["y"], sizes)
        errors.append(abs((plus - minus) / (2 * epsilon) - e["grad"][i]))
    return {"relative": relative, "largest": max(errors), "epsilon": epsilon}


# ----------------------------------------------------------------------------------------
# The inline numbers
# ----------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def inline_numbers():
    """Name -> TeX, for the role ``:bp:`name``` of the guide. Each number's claim is
    checked here too, so that a wrong sentence stops the build."""
    rows = {row["z"]: row for row in cancellation_rows()}
    numbers = {}

    # (B1) at y = 1, z = 40: sigma(z) - 1 cancels to 0; the delta is -sigma(-40).
    assert float(sigmoid(40.0)) - 1.0 == 0.0
    numbers["sigma_minus_40"] = sci(float(sigmoid(-40.0)), 3)

    # The cancellation table's mechanism at z = 37.
    e37 = math.exp(-37.0)
    assert 1.0 + e37 == 1.0 and rows[37]["naive_a"] == 1.0
    assert rows[37]["rounded_a"] == 1.0 - 2.0 ** -53
    assert rows[40]["rounded_a"] == 1.0
    numbers["exp_minus_37"] = sci(e37)
    numbers["z37_rounded_error"] = sci(rows[37]["rounded"])

    # Where e^{-|z|} and sigma'(z) stop being normal numbers, and where they round to 0.
    numbers["normal_limit"] = f"{-math.log(TINY):.1f}"
    numbers["zero_limit"] = f"{1075 * math.log(2.0):.1f}"
    # The note's 1 / (2 (1 + cosh z)) overflows where 2 (1 + cosh z) > max, |z| > 709.8.
    overflow = math.log(np.finfo(np.float64).max)
    numbers["cosh_overflow"] = f"{overflow:.1f}"
    with np.errstate(over="raise"):
        cosh_gradient(overflow - 0.1)
        try:
            cosh_gradient(overflow + 0.1)
        except FloatingPointError:
            pass
        else:
            raise AssertionError("1 / (2 (1 + cosh z)) was expected to overflow")

    # The saturated costs: 40 + 4.2e-18 and 800 + e^-800, both correctly rounded.
    with mpmath.workdps(DIGITS):
        excess = mpmath.log1p(mpmath.exp(-40))  # log(1 + e^40) - 40
        assert float(40 + excess) == 40.0 == float(-log_sigmoid(-40.0))
        assert float(800 + mpmath.exp(-800)) == 800.0 == float(-log_sigmoid(-800.0))
    numbers["cost_40_excess"] = sci(excess)
    # MLPClassifier clips probabilities to [eps, 1 - eps]: the cost -log(eps) at most.
    numbers["clip_cost"] = f"{-math.log(np.finfo(np.float64).eps):.0f}"

    # The ulp errors, where the exact values are normal numbers.
    ulp = ulp_summary()
    for name in ("sigmoid", "sigmoid_gradient", "kernel_sigmoid", "kernel_gradient",
                 "cosh_gradient"):
        numbers[f"ulp_{name}"] = f"{ulp[name]:.1f}"
    numbers["ulp_points"] = rf"{ulp['points']:,}".replace(",", r"\,")

    # Finite differences.
    fd = finite_differences()
    numbers["fd_relative"] = sci(fd["relative"], 1)
    numbers["fd_largest"] = sci(fd["largest"], 1)
    numbers["fd_epsilon"] = sci(fd["epsilon"], 1)

    # The worked example.
    example = worked_example()
    numbers["example_difference"] = sci(example["difference"], 1)
    numbers["example_n_params"] = str(example["n_params"])

    # Parameters of the digits networks, for forward mode's count of passes.
    numbers["params_64_25_10"] = str(n_params((64, 25, 10)))
    numbers["params_64_100_10"] = str(n_params((64, 100, 10)))
    return numbers


def rst(name):
    """The generated reStructuredText block called `name`, for ``.. bp-generated::``."""
    if name == "cancellation-table":
        return cancellation_table()
    if name.startswith("worked-example-"):
        return worked_example_rst()[name[len("worked-example-"):]]
    raise KeyError(name)
