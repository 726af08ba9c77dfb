"""The same numbers as before the restructuring around the loss object (commit 22b5b36).

``tests/data/same_bits.npz`` was recorded at 22b5b36 by ``tests/_same_bits_cases.py``:
the cost and gradient on fixed weights, the fitted weights and the probabilities of
binary, multilabel, softmax and logistic multiclass, tanh, relu, deep, class-weighted,
sample-weighted, float32, sparse, early-stopping and multi-threaded cases. In the
environment of the record (the same numpy, scipy, BLAS and its CPU kernels, and cores)
they must be the same bits. Elsewhere the BLAS library rounds its products differently,
and a fit of 25 L-BFGS-B iterations carries those roundings along: there they must agree
to 1e-12 for the cost and gradient and to 1e-6 for fits.
"""

import numpy as np
import pytest

from _same_bits_cases import CASES, RECORD, compute, environment

RECORDED = np.load(RECORD)
SAME_ENVIRONMENT = str(RECORDED["environment"]) == environment()


@pytest.mark.parametrize("name", list(CASES))
def test_same_numbers_as_before_the_restructuring(name):
    got = compute(name)
    expected = {key.split("/", 1)[1]: RECORDED[key] for key in RECORDED.files
                if key.startswith(name + "/")}
    assert sorted(got) == sorted(expected)
    for key, value in got.items():
        value = np.asarray(value)
        assert (value.dtype, value.shape) == (expected[key].dtype, expected[key].shape), key
        if SAME_ENVIRONMENT:
            np.testing.assert_array_equal(value, expected[key], err_msg=key)
        else:
            rtol = 1e-12 if key.startswith(("cost", "grad")) else 1e-6
            np.testing.assert_allclose(value, expected[key], rtol=rtol,
                                       atol=rtol * np.abs(expected[key]).max(),
                                       err_msg=key)


def test_the_record_is_of_this_environment_where_it_was_made():
    """Says, rather than hides, where the bits were not compared."""
    if not SAME_ENVIRONMENT:
        pytest.skip(f"recorded on {RECORDED['environment']}; this is {environment()}: "
                    "compared to a tolerance, not bit for bit")
