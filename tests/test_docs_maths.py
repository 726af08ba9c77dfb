"""The user guide's derivation and its numbers (docs/_ext/maths_numbers.py), checked
against independent oracles: mpmath at 60 digits, central differences of a cost written
in mpmath, plain numpy written from the guide's equations, and the note's own
column-vector conventions.

Every number the guide states about the mathematics is made by maths_numbers when the
docs are built; these tests make sure that what it prints is true.
"""

import math
import re
import sys
from pathlib import Path

import mpmath
import numpy as np
import pytest

from sklearn_bp import _kernel, backprop
from sklearn_bp.backprop import check_gradient, cost_and_gradient, pack, unpack

DOCS = Path(__file__).resolve().parents[1] / "docs"
sys.path.insert(0, str(DOCS / "_ext"))

import maths_numbers  # noqa: E402

DPS = 60


def _mp(x):
    return mpmath.mpf(float(x))


# ----------------------------------------------------------------------------------------
# The cancellation table and the ulp note
# ----------------------------------------------------------------------------------------


def _exact_gradient(z):
    """sigma'(z) = e^{-z} / (1 + e^{-z})^2: another form than the module's cosh."""
    with mpmath.workdps(DPS):
        t = mpmath.exp(-_mp(z))
        return t / (1 + t) ** 2


def _relative(value, exact):
    with mpmath.workdps(DPS):
        return float(abs(_mp(value) - exact) / exact)


def test_cancellation_rows_against_an_independent_oracle():
    for row in maths_numbers.cancellation_rows():
        z = row["z"]
        exact = _exact_gradient(z)
        naive = float(1.0 / (1.0 + np.exp(np.float64(-z))))
        with mpmath.workdps(DPS):
            rounded = float(1 / (1 + mpmath.exp(-_mp(z))))
        assert row["naive_a"] == naive and row["rounded_a"] == rounded
        assert row["exact"] == pytest.approx(float(exact), rel=1e-15)
        for key, value in (("naive", naive * (1 - naive)),
                           ("rounded", rounded * (1 - rounded)),
                           ("code", backprop.sigmoid_gradient(float(z)))):
            assert row[key] == pytest.approx(_relative(value, exact), rel=1e-9)


def test_cancellation_mechanism():
    """What the text says of the table: the rounding of 1 + e^{-z} comes first in the
    usual a; at z = 37 that a is 1 and the correctly rounded one 1 - 2^-53; at 40 both
    are 1; the one-exponential form stays within a few 1e-16 throughout."""
    rows = {row["z"]: row for row in maths_numbers.cancellation_rows()}
    assert 1.0 + math.exp(-37.0) == 1.0 and rows[37]["naive_a"] == 1.0
    assert rows[37]["rounded_a"] == np.nextafter(1.0, 0.0) == 1.0 - 2.0 ** -53
    assert rows[37]["rounded"] == pytest.approx(0.301, abs=1e-3)
    assert rows[40]["naive_a"] == rows[40]["rounded_a"] == 1.0
    for z in (5, 20, 30, 36):
        # The usual a's error is that of fl(1 + e^{-z}) - 1 as e^{-z}: the rounding of
        # the sum, within a quarter (the exponential and the division add the rest).
        with mpmath.workdps(DPS):
            exact = mpmath.exp(-z)
            sum_error = float(abs((_mp(1.0 + math.exp(-z)) - 1) - exact) / exact)
        assert rows[z]["naive"] == pytest.approx(sum_error, rel=0.25)
        assert rows[z]["naive"] >= rows[z]["rounded"]
    assert all(row["code"] < 4e-16 for row in rows.values())
    # The numbers for the correctly rounded a, and the text's before them
    printed = {z: maths_numbers.sci(rows[z]["rounded"]) for z in (5, 20, 30, 36, 37)}
    assert printed == {5: r"1.9 \times 10^{-15}", 20: r"1.8 \times 10^{-8}",
                       30: r"1.7 \times 10^{-4}", 36: "0.043", 37: "0.30"}


def test_cancellation_table_prints_the_rows():
    table = maths_numbers.cancellation_table()
    for row in maths_numbers.cancellation_rows():
        assert f"   * - {row['z']}\n" in table
        assert maths_numbers.sci(row["exact"], 4) in table
    assert table.count("the product is 0") == 3  # z = 37 and 40 naive, 40 rounded


def test_naive_product_absolute_error_below_2_to_minus_52():
    z = np.linspace(-40.0, 40.0, 2001)
    a = 1.0 / (1.0 + np.exp(-z))
    with mpmath.workdps(DPS):
        errors = [abs(_mp(v) - _exact_gradient(x)) for v, x in zip(a * (1 - a), z)]
    assert float(max(errors)) < 2.0 ** -52


def test_ulp_summary_within_the_suites_bound_and_the_forms_are_the_kernels():
    summary = maths_numbers.ulp_summary()
    assert summary["points"] > 4000
    for name in ("sigmoid", "sigmoid_gradient", "kernel_sigmoid", "kernel_gradient",
                 "cosh_gradient"):
        assert 0.5 <= summary[name] <= 4.0, name
    # The one-exponential forms of maths_numbers are the kernel's, bit for bit.
    z = maths_numbers.ulp_grid()
    Z, P, N = z[None, :].copy(), np.empty((1, z.size)), np.empty((1, z.size))
    with np.errstate(under="ignore"):
        _kernel.hidden_forward(Z, P, N, "logistic")
    np.testing.assert_array_equal(Z[0], maths_numbers.one_exponential_sigmoid(z))
    np.testing.assert_array_equal(P[0], maths_numbers.one_exponential_gradient(z))


def test_one_exponential_forms_in_the_subnormal_range():
    """Beyond |z| = 708.4 the exact values are subnormal: within a few 2^-1074."""
    z = np.concatenate([np.linspace(708.4, 746.0, 300), -np.linspace(708.4, 746.0, 300)])
    with np.errstate(under="ignore"):
        forms = [(maths_numbers.one_exponential_gradient(z), _exact_gradient),
                 (maths_numbers.one_exponential_sigmoid(z),
                  lambda x: 1 / (1 + mpmath.exp(-_mp(x))))]
    with mpmath.workdps(DPS):
        unit = mpmath.mpf(2) ** -1074
        for got, exact in forms:
            assert max(abs(_mp(g) - exact(x)) / unit for g, x in zip(got, z)) <= 4


# ----------------------------------------------------------------------------------------
# The inline numbers
# ----------------------------------------------------------------------------------------


def test_inline_numbers_say_what_is_true():
    n = maths_numbers.inline_numbers()
    with mpmath.workdps(DPS):
        assert n["sigma_minus_40"] == maths_numbers.sci(1 / (1 + mpmath.exp(40)), 3)
        assert n["cost_40_excess"] == maths_numbers.sci(mpmath.log(1 + mpmath.exp(40)) - 40)
        assert n["exp_minus_37"] == maths_numbers.sci(mpmath.exp(-37))
    assert n["sigma_minus_40"] == r"4.25 \times 10^{-18}"
    assert n["cost_40_excess"] == r"4.2 \times 10^{-18}"
    assert float(-backprop.log_sigmoid(-40.0)) == 40.0  # correctly rounded 40 + 4.2e-18
    assert float(backprop.sigmoid(40.0)) - 1.0 == 0.0
    # Normal and subnormal: e^{-708.3} is normal, e^{-708.5} is not; e^{-745.2} is 0.
    assert n["normal_limit"] == "708.4" and n["zero_limit"] == "745.1"
    tiny = np.finfo(np.float64).tiny
    with np.errstate(under="ignore"):
        assert np.exp(-708.3) >= tiny > np.exp(-708.5) > 0
        assert np.exp(-745.0) > 0 == np.exp(-745.2)
    # The note's form overflows from |z| > 709.8 on, and is 0 where sigma' is not.
    assert n["cosh_overflow"] == "709.8"
    with np.errstate(over="ignore"):
        assert maths_numbers.cosh_gradient(709.9) == 0.0 < float(_exact_gradient(709.9))
        assert backprop.sigmoid_gradient(709.9) > 0.0
    assert n["clip_cost"] == "36" and -math.log(np.finfo(np.float64).eps) < 36.5
    assert n["params_64_25_10"] == "1885" and n["params_64_100_10"] == "7510"
    # Finite differences: derivative estimates good to about 1e-10, and no better.
    fd = maths_numbers.finite_differences()
    assert 1e-13 < fd["largest"] < 1e-10
    assert fd["relative"] == check_gradient() and 1e-12 < fd["relative"] < 1e-9


def test_every_number_and_block_the_guide_names_exists():
    guide = (DOCS / "user_guide.rst").read_text(encoding="utf-8")
    names = set(maths_numbers.inline_numbers())
    roles = re.findall(r":bp:`([^`]*)`", guide)
    assert roles, "the guide uses no build-time numbers"
    for text in roles:
        used = re.findall(r"@(\w+)", text)
        assert used and set(used) <= names, text
    for block in re.findall(r"^\.\. bp-generated:: (\S+)", guide, flags=re.MULTILINE):
        assert maths_numbers.rst(block)


# ----------------------------------------------------------------------------------------
# The worked example, against 60-digit central differences
# ----------------------------------------------------------------------------------------


def _mp_cost(theta, sizes=(2, 3, 1)):
    """J of the worked example (logistic units, y = 1, one sample), all in mpmath."""
    e = maths_numbers.EXAMPLE
    x, y = [_mp(v) for v in e["x"][0]], _mp(e["y"][0][0])
    (h0, h1, h2) = sizes
    k = 0
    W0 = [[theta[k + i * h1 + j] for j in range(h1)] for i in range(h0)]
    k += h0 * h1
    W1 = [[theta[k + i * h2 + j] for j in range(h2)] for i in range(h1)]
    k += h1 * h2
    b0, b1 = theta[k:k + h1], theta[k + h1:k + h1 + h2]
    sig = lambda z: 1 / (1 + mpmath.exp(-z))  # noqa: E731
    z1 = [sum(x[i] * W0[i][j] for i in range(h0)) + b0[j] for j in range(h1)]
    a1 = [sig(v) for v in z1]
    z2 = sum(a1[j] * W1[j][0] for j in range(h1)) + b1[0]
    return y * mpmath.log(1 + mpmath.exp(-z2)) + (1 - y) * mpmath.log(1 + mpmath.exp(z2))


def _mp_gradient():
    e = maths_numbers.EXAMPLE
    theta = [_mp(v) for v in pack([np.array(e["W0"]), np.array(e["W1"])],
                                  [np.array(e["b0"]), np.array(e["b1"])])]
    with mpmath.workdps(DPS):
        h = mpmath.mpf(10) ** -25
        grad = []
        for i in range(len(theta)):
            plus, minus = list(theta), list(theta)
            plus[i] += h
            minus[i] -= h
            grad.append((_mp_cost(plus) - _mp_cost(minus)) / (2 * h))
        return _mp_cost(theta), np.array([float(g) for g in grad])


def test_worked_example_against_central_differences_at_60_digits():
    J, grad = _mp_gradient()
    e = maths_numbers.worked_example()
    assert e["J"] == pytest.approx(float(J), rel=1e-15)
    ours = np.concatenate([e[k].ravel() for k in ("gW0", "gW1", "gb0", "gb1")])
    np.testing.assert_allclose(ours, grad, rtol=1e-14, atol=1e-16)
    np.testing.assert_allclose(e["grad"], grad, rtol=1e-14, atol=1e-16)
    # With one sample the deltas are the intercepts' derivatives (G2).
    (_, _), (db0, db1) = unpack(grad, (2, 3, 1))
    np.testing.assert_allclose(e["D1"][0], db0, rtol=1e-14)
    np.testing.assert_allclose(e["D2"][0], db1, rtol=1e-14)
    assert e["difference"] <= 1e-15


def _printed(text, symbol):
    r"""The numbers of the first bmatrix after ``symbol &=`` (or ``symbol =``)."""
    start = text.index(symbol)
    body = re.search(r"\\begin\{bmatrix\}(.*?)\\end\{bmatrix\}", text[start:]).group(1)
    return np.array([[float(v) for v in row.split("&")] for row in body.split(r"\\")])


def test_worked_example_prints_the_numbers_it_computed():
    """Every printed entry is the oracle's value rounded to the printed 4 decimals."""
    J, grad = _mp_gradient()
    (gW0, gW1), (gb0, gb1) = unpack(grad, (2, 3, 1))
    e = {k: np.array(v, dtype=float) for k, v in maths_numbers.EXAMPLE.items()}
    Z1 = e["x"] @ e["W0"] + e["b0"]
    A1 = 1 / (1 + np.exp(-Z1))
    Z2 = A1 @ e["W1"] + e["b1"]
    expected = {
        "forward": [("Z_1 &", Z1), ("A_1 &", A1), ("Z_2 &", Z2),
                    ("A_2 &", 1 / (1 + np.exp(-Z2)))],
        "backward": [("D_2 &", gb1[None, :]), ("D_2 W_1^{\\top} &", gb1 @ e["W1"].T),
                     ("\\sigma'(Z_1) &", A1 * (1 - A1)), ("D_1 &", gb0[None, :])],
        "gradient": [("{\\partial W_1} &", gW1), ("{\\partial b_1} &", gb1[None, :]),
                     ("{\\partial W_0} &", gW0), ("{\\partial b_0} &", gb0[None, :])],
    }
    blocks = maths_numbers.worked_example_rst()
    for block, items in expected.items():
        for symbol, value in items:
            np.testing.assert_array_equal(_printed(blocks[block], symbol),
                                          np.round(np.atleast_2d(value), 4),
                                          err_msg=f"{block}: {symbol}")
    assert f"= {float(J):.4f}" in blocks["forward"]


def test_worked_example_code_block_gives_the_numbers():
    code = maths_numbers.worked_example_rst()["code"].split("\n", 2)[2]
    namespace = {}
    exec(compile("\n".join(line[3:] for line in code.splitlines()), "<guide>", "exec"),
         namespace)
    e = maths_numbers.worked_example()
    assert namespace["cost"] == pytest.approx(e["J"], rel=1e-15)
    for ours, key in ((namespace["dW0"], "gW0"), (namespace["dW1"], "gW1"),
                      (namespace["db0"], "gb0"), (namespace["db1"], "gb1")):
        np.testing.assert_allclose(ours, e[key], rtol=1e-15, atol=1e-17)


# ----------------------------------------------------------------------------------------
# The pull-back section: the equations as the guide writes them, in plain numpy
# ----------------------------------------------------------------------------------------


def _pair(G, V):
    return float(np.sum(G * V))


def test_transposes_come_from_the_pairing():
    rng = np.random.default_rng(0)
    n, h, k = 5, 4, 3
    G, A, W = rng.normal(size=(n, k)), rng.normal(size=(n, h)), rng.normal(size=(h, k))
    dA, dW, db = rng.normal(size=(n, h)), rng.normal(size=(h, k)), rng.normal(size=(1, k))
    one = np.ones((n, 1))
    assert _pair(G, dA @ W) == pytest.approx(_pair(G @ W.T, dA), rel=1e-12)
    assert _pair(G, A @ dW) == pytest.approx(_pair(A.T @ G, dW), rel=1e-12)
    assert _pair(G, one @ db) == pytest.approx(_pair(one.T @ G, db), rel=1e-12)
    assert _pair(G, dA @ W) == pytest.approx(np.trace(G.T @ dA @ W), rel=1e-12)
    P = rng.uniform(size=(n, h))  # g'(Z): the activation's Jacobian is diagonal
    assert _pair(G @ W.T, P * dA) == pytest.approx(_pair((G @ W.T) * P, dA), rel=1e-12)


def test_b2_index_and_column_forms_and_row_scaling():
    rng = np.random.default_rng(1)
    n, h, k = 6, 4, 3
    D_next, W = rng.normal(size=(n, k)), rng.normal(size=(h, k))
    P = rng.uniform(size=(n, h))  # g'(Z_l)
    D = (D_next @ W.T) * P                                        # (B2)
    index = np.einsum("ij,ik,jk->ij", P, D_next, W)               # in indices
    np.testing.assert_allclose(index, D, rtol=1e-13)
    for i in range(n):                                            # one sample, a column
        delta = (W @ D_next[i][:, None]) * P[i][:, None]
        np.testing.assert_allclose(delta[:, 0], D[i], rtol=1e-13)
    s = rng.uniform(0.2, 2.0, n)
    S = s.sum()
    G_next = s[:, None] * D_next / S                              # G = (s * D) / S
    np.testing.assert_allclose((G_next @ W.T) * P, s[:, None] * D / S, rtol=1e-13)


def _guide_cost_and_gradient(theta, X, Y, sizes, s, alpha, activation):
    """(F1)-(G2) as the pull-back section writes them: the weighted covectors G_l carried
    back, the penalty added on W_l directly. Softmax output."""
    coefs, intercepts = unpack(theta, sizes)
    g = {"tanh": (np.tanh, lambda Z: 1 - np.tanh(Z) ** 2),
         "logistic": (lambda Z: 1 / (1 + np.exp(-Z)),
                      lambda Z: 1 / (2 * (1 + np.cosh(Z))))}[activation]
    S, L = s.sum(), len(coefs)
    A, Z = [X], [None]
    for l in range(L):
        Z.append(A[l] @ coefs[l] + intercepts[l])
        A.append(g[0](Z[-1]) if l + 1 < L else None)
    z = Z[L]
    m = z.max(axis=1, keepdims=True)
    log_sum = m[:, 0] + np.log(np.exp(z - m).sum(axis=1))
    c = log_sum - (Y * z).sum(axis=1)                                   # (C3)
    J = (s @ c) / S + alpha / (2 * S) * sum(np.sum(W * W) for W in coefs)
    G = s[:, None] * (np.exp(z - log_sum[:, None]) - Y) / S            # G_L
    dW, db = [None] * L, [None] * L
    for l in reversed(range(L)):
        dW[l] = A[l].T @ G + alpha / S * coefs[l]               # pulled back, + penalty
        db[l] = G.sum(axis=0)
        if l > 0:
            G = (G @ coefs[l].T) * g[1](Z[l])                           # (B2) for G
    return J, pack(dW, db)


@pytest.mark.parametrize("activation", ["tanh", "logistic"])
def test_the_pull_back_section_is_the_gradient(activation):
    rng = np.random.default_rng(2)
    sizes = (3, 5, 4, 3)
    X = rng.normal(size=(7, 3))
    Y = np.eye(3)[rng.integers(0, 3, 7)]
    s = rng.uniform(0.2, 2.0, 7)
    theta = rng.normal(scale=0.7, size=backprop.n_params(sizes))
    J, grad = _guide_cost_and_gradient(theta, X, Y, sizes, s, 0.3, activation)
    cost, expected = cost_and_gradient(theta, X, Y, sizes, alpha=0.3, sample_weight=s,
                                       activation=activation, output_activation="softmax")
    assert J == pytest.approx(cost, rel=1e-13)
    np.testing.assert_allclose(grad, expected, rtol=1e-11, atol=1e-14)


# ----------------------------------------------------------------------------------------
# The bridge from the note
# ----------------------------------------------------------------------------------------


def test_the_notes_conventions_map_as_the_table_says():
    """The note: columns, layers 1..k with the input as layer 1, theta^(l) with the bias
    in column 0, J the log-likelihood (no minus sign), delta^(k) = y - a, the recursion
    through theta^(l)^T without the bias entry, sigma' as 1 / (2 (1 + cosh z))."""
    rng = np.random.default_rng(3)
    sizes = (3, 4, 5, 2)          # ours: h_0..h_L, L = 3; the note's k = L + 1 = 4
    n = 6
    X = rng.normal(size=(n, sizes[0]))
    Y = (rng.uniform(size=(n, sizes[-1])) < 0.5).astype(float)
    thetas = {l: rng.normal(scale=0.7, size=(sizes[l], 1 + sizes[l - 1]))
              for l in range(1, len(sizes))}        # theta^(l), h_l x (1 + h_{l-1})
    k = len(sizes)
    sigma = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    # The note, one sample (a column) at a time, summed over the samples.
    grads = {l: np.zeros_like(T) for l, T in thetas.items()}
    J_note, deltas_note = 0.0, []
    for i in range(n):
        a, z = {1: X[i][:, None]}, {}
        for l in range(1, k):
            z[l + 1] = thetas[l] @ np.vstack([[1.0], a[l]])
            a[l + 1] = sigma(z[l + 1])
        y = Y[i][:, None]
        J_note += float(np.sum(y * np.log(a[k]) + (1 - y) * np.log(1 - a[k])))
        delta = {k: y - a[k]}
        for l in range(k - 1, 1, -1):
            delta[l] = (thetas[l].T @ delta[l + 1])[1:] / (2 * (1 + np.cosh(z[l])))
        for l in range(1, k):
            grads[l] += delta[l + 1] @ np.vstack([[1.0], a[l]]).T
        deltas_note.append(delta)
    # Ours, through the table's map: W_{l-1} = theta^(l)[:, 1:].T, b_{l-1} = theta^(l)[:, 0]
    theta = pack([thetas[l][:, 1:].T for l in range(1, k)],
                 [thetas[l][:, 0] for l in range(1, k)])
    cost, grad = cost_and_gradient(theta, X, Y, sizes)
    assert -J_note / n == pytest.approx(cost, rel=1e-13)          # J is minus the mean
    coefs, intercepts = unpack(grad, sizes)
    for l in range(1, k):                                          # the gradient: -n times
        np.testing.assert_allclose(-grads[l][:, 1:].T / n, coefs[l - 1], rtol=1e-10)
        np.testing.assert_allclose(-grads[l][:, 0] / n, intercepts[l - 1], rtol=1e-10)
    # The deltas: the note's delta^(l) is -D_{l-1}, D from (B1), (B2) in rows
    A, Z = [X], [None]
    for l in range(k - 1):
        Z.append(A[l] @ thetas[l + 1][:, 1:].T + thetas[l + 1][:, 0])
        A.append(sigma(Z[-1]))
    D = {k - 1: A[k - 1] - Y}
    for l in range(k - 2, 0, -1):
        D[l] = (D[l + 1] @ thetas[l + 1][:, 1:]) * A[l] * (1 - A[l])
    for i, delta in enumerate(deltas_note):
        for l in range(2, k + 1):
            np.testing.assert_allclose(delta[l][:, 0], -D[l - 1][i], rtol=1e-10,
                                       atol=1e-15)


def test_check_gradient_maps_the_course_matrices_as_the_table_says():
    """coefs = Theta[:, 1:].T and intercepts = Theta[:, 0]: a theta built so gives the
    course network's cost, computed here in the note's column form."""
    rng = np.random.default_rng(4)
    Theta1, Theta2 = rng.normal(size=(5, 4)), rng.normal(size=(3, 6))
    X = rng.normal(size=(5, 3))
    Y = np.eye(3)[[1, 2, 0, 1, 2]]
    a2 = 1 / (1 + np.exp(-(Theta1 @ np.vstack([np.ones(5), X.T]))))
    a3 = 1 / (1 + np.exp(-(Theta2 @ np.vstack([np.ones(5), a2]))))
    J = -np.sum(Y.T * np.log(a3) + (1 - Y.T) * np.log(1 - a3)) / 5
    theta = pack([Theta1[:, 1:].T, Theta2[:, 1:].T], [Theta1[:, 0], Theta2[:, 0]])
    assert cost_and_gradient(theta, X, Y, (3, 5, 3))[0] == pytest.approx(J, rel=1e-13)


# ----------------------------------------------------------------------------------------
# (B1) at z = 0, and the figure
# ----------------------------------------------------------------------------------------


def test_b1_at_zero_is_one_half_minus_y_with_the_sign_bit():
    u = 0.5  # sigma(-|0|)
    for y in (0.0, 1.0):
        for z in (0.0, -0.0):
            two_cases = (1 - y) - u if not np.signbit(z) else u - y
            one_expression = (float(not np.signbit(z)) - y) - np.copysign(1.0, z) * u
            assert two_cases == one_expression == 0.5 - y
        # With the usual sign(0) = 0, the one expression would be 1 - y at z = +0.
        assert (float(0.0 >= 0) - y) - np.sign(0.0) * u == 1 - y != 0.5 - y
        # The code: a zero output logit gives the intercept's derivative 1/2 - y.
        _, grad = cost_and_gradient(np.zeros(2), np.zeros((1, 1)), np.array([[y]]), (1, 1))
        assert grad[1] == 0.5 - y


def test_the_computation_graph_draws(tmp_path):
    pytest.importorskip("matplotlib")
    import computation_graph

    path = computation_graph.draw(tmp_path / "graph.svg")
    assert path.read_text(encoding="utf-8").lstrip().startswith(("<?xml", "<svg"))
