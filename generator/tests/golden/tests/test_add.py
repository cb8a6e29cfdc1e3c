# generated from opdefs/elementwise/add.yaml:1 — do not edit
# Checks `add` against its NumPy reference (tests.ref in the YAML).
import numpy as np
import pytest

from opcheck import OpCase, check_forward, check_out_variant, check_rejects_dtype

CASE = OpCase(
    name="add",
    inputs=['x', 'y'],
    attrs={},
    shape_rule="broadcast",
    dtype_rule="promote",
    kernel_dtypes=['float32', 'float64', 'int8', 'uint8', 'int32', 'int64'],
    declared_dtypes=['float32', 'float64', 'float16', 'bfloat16', 'int8', 'uint8', 'int32', 'int64'],
    ref=lambda x, y: x + y,
    domain={},
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
