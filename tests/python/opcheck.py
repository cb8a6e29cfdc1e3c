"""The checks every generated per-op suite (generated/tests/test_<op>.py)
runs, driven by the op's YAML test hints. Independent reference: the NumPy
expression in `tests.ref`."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import loom as lm

DEFAULT_TOL = {"float32": dict(rtol=1e-6, atol=1e-6), "float64": dict(rtol=1e-12, atol=1e-12)}


@dataclass
class OpCase:
    name: str
    inputs: list
    attrs: dict
    shape_rule: str
    dtype_rule: str
    kernel_dtypes: list
    declared_dtypes: list
    ref: object
    domain: dict
    tol: dict
    has_out: bool

    @property
    def fn(self):
        return getattr(lm.nd, self.name)

    def result_dtype(self, dtype: str) -> str:
        """The result's dtype for inputs of `dtype` (comparisons yield bool)."""
        return "bool" if self.dtype_rule == "bool" else dtype


def _values(draw, shape, dtype, domain):
    low, high = (domain or {}).get("low", -3), (domain or {}).get("high", 3)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if dtype == "bool":
        return rng.integers(0, 2, size=shape).astype(bool)
    if np.issubdtype(np.dtype(dtype), np.integer):
        info = np.iinfo(dtype)
        return rng.integers(max(int(low) - 5, info.min), min(int(high) + 5, info.max) + 1, size=shape).astype(dtype)
    x = rng.uniform(low, high, size=shape).astype(dtype)
    # Keep samples off kinks (e.g. relu at 0), as the YAML asks.
    for point in (domain or {}).get("away_from", []):
        margin = (domain or {}).get("margin", 1e-3)
        near = np.abs(x - point) < margin
        x[near] = point + margin * 2
    return x


@st.composite
def _inputs(draw, case: OpCase, dtype: str):
    n = len(case.inputs)
    if case.shape_rule == "broadcast":
        shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=n, min_dims=0, max_dims=4,
                                                        min_side=0, max_side=5)).input_shapes
    else:
        shapes = [draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5))] * n
    return [_values(draw, s, dtype, case.domain.get(name)) for s, name in zip(shapes, case.inputs)]


def _tolerance(case: OpCase, dtype: str) -> dict:
    return case.tol.get(dtype) or DEFAULT_TOL.get(dtype, dict(rtol=0, atol=0))


def check_forward(case: OpCase, dtype: str):
    """Random shapes (0-d, zero-size and broadcast included) and values:
    loom's result equals the NumPy reference, with the expected dtype."""

    @settings(max_examples=40, deadline=None, derandomize=True)
    @given(_inputs(case, dtype))
    def run(arrays):
        got = case.fn(*[lm.nd.array(a, dtype=dtype) for a in arrays], **case.attrs).asnumpy()
        want = np.asarray(case.ref(*arrays, **case.attrs))
        assert got.shape == want.shape
        result = case.result_dtype(dtype)
        assert got.dtype == np.dtype(result), f"{case.name}: result dtype {got.dtype}, expected {result}"
        np.testing.assert_allclose(got, want.astype(result), **_tolerance(case, dtype))

    run()


def check_out_variant(case: OpCase):
    """out= writes the same values into the given array and returns it."""
    dtype = case.kernel_dtypes[0]
    arrays = [_values(lambda s: 7, (3, 4), dtype, case.domain.get(n)) for n in case.inputs]
    args = [lm.nd.array(a, dtype=dtype) for a in arrays]
    if not case.has_out:
        with pytest.raises(TypeError):
            case.fn(*args, out=lm.nd.zeros((3, 4), dtype=dtype))
        return
    result = case.result_dtype(dtype)
    out = lm.nd.zeros((3, 4), dtype=result)
    case.fn(*args, out=out, **case.attrs)
    np.testing.assert_allclose(out.asnumpy(), case.fn(*args, **case.attrs).asnumpy())
    with pytest.raises(lm.LoomError, match=case.name):
        case.fn(*args, out=lm.nd.zeros((4, 3), dtype=result), **case.attrs)
    if result != dtype:  # an out= of the input dtype is the wrong type
        with pytest.raises(TypeError, match=f"{case.name}: out= has dtype {dtype}"):
            case.fn(*args, out=lm.nd.zeros((3, 4), dtype=dtype), **case.attrs)


def check_rejects_dtype(case: OpCase):
    """A dtype the YAML does not declare raises a TypeError naming the op."""
    missing = [d for d in ("uint8", "int8", "bool", "int32", "float64") if d not in case.declared_dtypes]
    if not missing:
        pytest.skip(f"{case.name} declares every dtype NumPy arrays can carry here")
    args = [lm.nd.array(np.ones(3, dtype=missing[0])) for _ in case.inputs]
    with pytest.raises(TypeError, match=f"{case.name}: no kernel for dtype {missing[0]}"):
        case.fn(*args, **case.attrs)


def check_noncontiguous(case: OpCase):
    """Transposed (strided) inputs, and a transposed out=, give the same
    values as the NumPy reference."""
    for dtype in case.kernel_dtypes:
        arrays = [_values(lambda s, i=i: 11 + i, (4, 5), dtype, case.domain.get(n))
                  for i, n in enumerate(case.inputs)]
        # lm.nd.array(a.T).T is a (4, 5) view with strides (1, 4).
        views = [lm.nd.array(np.ascontiguousarray(a.T)).T for a in arrays]
        assert not views[0].is_contiguous()
        want = np.asarray(case.ref(*arrays, **case.attrs)).astype(case.result_dtype(dtype))
        np.testing.assert_allclose(case.fn(*views, **case.attrs).asnumpy(), want, **_tolerance(case, dtype))
        if case.has_out:
            out = lm.nd.zeros((5, 4), dtype=case.result_dtype(dtype)).T
            case.fn(*views, out=out, **case.attrs)
            np.testing.assert_allclose(out.asnumpy(), want, **_tolerance(case, dtype))
