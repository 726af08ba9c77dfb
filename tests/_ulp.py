"""50-digit references for the activations, and errors measured in ulp.

Shared by the tests of the public functions (``test_numerics.py``) and of the fit's own
kernel (``test_kernel.py``). The references are ``mpmath`` evaluations from the same
float64 inputs, as float64 pairs ``hi + lo``; errors are measured against them in units
of the spacing of floats just below ``|hi|``, which never overstates the ulp of the exact
value and so never understates the error.
"""

import mpmath
import numpy as np
import pytest

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


