# generated from opdefs/elementwise/relu.yaml:1 — do not edit
# Checks `relu` against its NumPy reference (tests.ref in the YAML).
import numpy as np
import pytest

from opcheck import OpCase, check_forward, check_out_variant, check_rejects_dtype

CASE = OpCase(
    name="relu",
    inputs=['x'],
    attrs={},
    shape_rule="same_as",
    dtype_rule="same_as:x",
    kernel_dtypes=['float32', 'float64', 'int32', 'int64'],
    declared_dtypes=['float32', 'float64', 'float16', 'bfloat16', 'int32', 'int64'],
    ref=lambda x: np.maximum(x, 0),
    domain={'x': {'low': -3.0, 'high': 3.0, 'away_from': [0.0], 'margin': 0.001}},
    tol={},
    has_out=True,
)


@pytest.mark.parametrize("dtype", CASE.kernel_dtypes)
def test_forward_matches_numpy(dtype):
    check_forward(CASE, dtype)


def test_out_variant_writes_in_place():
    check_out_variant(CASE)


def test_undeclared_dtypes_raise_type_error():
    check_rejects_dtype(CASE)
