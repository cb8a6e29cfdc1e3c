"""The checks of every kernel.generate op's generated suite
(generated/tests/test_<op>.py): creation ops against their NumPy reference
(`tests.ref`), random ops by reproducibility, bounds and moments
(`tests.moments`, `tests.range`), both against their out= variant, on
undeclared dtypes and, when a GPU is visible, CPU against CUDA."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

import loom as lm

# Results are rounded once from the compute type: exact for integers, a few
# ulp for floats (arange's start + i * step in float for float32).
TOL = {"float32": dict(rtol=2e-6, atol=1e-6), "float64": dict(rtol=1e-13, atol=1e-13),
       "float16": dict(rtol=1e-3, atol=1e-3), "bfloat16": dict(rtol=8e-3, atol=8e-3)}
HALF = ("float16", "bfloat16")


@dataclass
class GenerateCase:
    name: str                  # the lm.nd function
    arg_names: list
    defaults: dict
    cases: list                # attribute values per case (dtype not included)
    kernel_dtypes: list
    declared_dtypes: list
    ref: str | None            # NumPy, over the attributes (deterministic ops)
    moments: dict | None       # {"mean": ..., "std": ...} (random ops)
    bounds: list | None        # [low, high] inclusive (random ops)
    tol: dict

    @property
    def fn(self):
        """The generated binding itself (lm.nd may wrap it: arange(stop))."""
        return getattr(lm._C.ops, self.name)

    @property
    def random(self) -> bool:
        return self.moments is not None

    def attrs(self, k: int) -> dict:
        return {**{n: v for n, v in self.defaults.items() if n not in ("dtype",) and v is not None},
                **self.cases[k]}

    def evaluate(self, text: str, attrs: dict):
        return eval(text, {"np": np, "math": math}, dict(attrs))  # noqa: S307 (the YAML's own expression)


def _host(a: lm.nd.NDArray, dtype: str) -> np.ndarray:
    return (a.astype("float32") if dtype == "bfloat16" else a).asnumpy()


def check_generate_forward(case: GenerateCase, dtype: str):
    """Every case against the NumPy reference, converted to the dtype."""
    for k in range(len(case.cases)):
        attrs = case.attrs(k)
        got = case.fn(**attrs, dtype=dtype)
        assert got.dtype == dtype, f"{case.name}{attrs}: dtype {got.dtype}, expected {dtype}"
        want = np.asarray(case.evaluate(case.ref, attrs), dtype=np.float64)
        assert got.shape == want.shape, f"{case.name}{attrs}: shape {got.shape}, NumPy gives {want.shape}"
        host = _host(got, dtype)
        if dtype in ("bool",) or not np.issubdtype(np.dtype(dtype if dtype != "bfloat16" else "float32"), np.floating):
            np.testing.assert_array_equal(host, want.astype(dtype), err_msg=f"{case.name}{attrs} {dtype}")
        else:
            tol = case.tol.get(dtype, TOL[dtype])
            np.testing.assert_allclose(host.astype(np.float64), want, err_msg=f"{case.name}{attrs} {dtype}", **tol)


def check_random_reproducible(case: GenerateCase, dtype: str):
    """The same seed replays the same arrays; the stream moves on between calls."""
    attrs = case.attrs(0)
    lm.random.seed(1234)
    a = _host(case.fn(**attrs, dtype=dtype), dtype)
    b = _host(case.fn(**attrs, dtype=dtype), dtype)
    lm.random.seed(1234)
    np.testing.assert_array_equal(_host(case.fn(**attrs, dtype=dtype), dtype), a)
    if a.size >= 64 and np.unique(a).size > 1:
        assert not np.array_equal(a, b), f"{case.name}: two calls after one seed drew the same values"


def check_random_distribution(case: GenerateCase, dtype: str):
    """Bounds (tests.range) and moments (tests.moments): the sample mean
    within 6 standard errors, the standard deviation within 5%."""
    lm.random.seed(99)
    for k in range(len(case.cases)):
        attrs = case.attrs(k)
        values = _host(case.fn(**attrs, dtype=dtype), dtype).astype(np.float64).ravel()
        assert values.size >= 1000, f"{case.name}: a distribution case needs >= 1000 values, got {values.size}"
        if case.bounds is not None:
            low, high = (case.evaluate(b, attrs) for b in case.bounds)
            assert values.min() >= low and values.max() <= high, (
                f"{case.name}{attrs}: values in [{values.min()}, {values.max()}], expected within [{low}, {high}]")
        mean, std = (float(case.evaluate(case.moments[m], attrs)) for m in ("mean", "std"))
        slack = 6 * std / math.sqrt(values.size) + (2e-3 * abs(mean) if dtype in HALF else 0.0)
        assert abs(values.mean() - mean) <= slack, f"{case.name}{attrs}: mean {values.mean()}, expected {mean}"
        assert abs(values.std() - std) <= 0.05 * std + 1e-12, f"{case.name}{attrs}: std {values.std()}, expected {std}"


def check_generate_out(case: GenerateCase):
    """out= writes the same values (into a dense and a strided array) and
    refuses an array of another shape or dtype, naming the op."""
    dtype = case.kernel_dtypes[0]
    attrs = case.attrs(0)
    if case.random:
        lm.random.seed(5)
    want = case.fn(**attrs, dtype=dtype).asnumpy()
    if case.random:
        lm.random.seed(5)
    out = lm.nd.zeros(want.shape, dtype=dtype)
    result = case.fn(**attrs, dtype=dtype, out=out)
    np.testing.assert_array_equal(out.asnumpy(), want)
    np.testing.assert_array_equal(result.asnumpy(), want)
    if want.ndim == 2 and want.shape[0] != want.shape[1]:
        if case.random:
            lm.random.seed(5)
        strided = lm.nd.zeros(want.shape[::-1], dtype=dtype).T
        case.fn(**attrs, dtype=dtype, out=strided)
        np.testing.assert_array_equal(strided.asnumpy(), want)
    wrong = lm.nd.zeros((want.size + 1,), dtype=dtype)
    with pytest.raises((ValueError, lm.LoomError), match=case.name):
        case.fn(**attrs, dtype=dtype, out=wrong)


def check_generate_rejects_dtype(case: GenerateCase):
    missing = [d for d in ("bool", "uint8", "int32", "float64", "float32") if d not in case.declared_dtypes]
    if not missing:
        pytest.skip(f"{case.name} declares every dtype")
    with pytest.raises(TypeError, match=f"{case.name}: no kernel for dtype {missing[0]}"):
        case.fn(**case.attrs(0), dtype=missing[0])


def check_generate_cuda_matches_cpu(case: GenerateCase):
    if lm.num_gpus() == 0:
        pytest.skip("needs a GPU (none visible to this process)")
    for dtype in case.kernel_dtypes:
        attrs = case.attrs(0)
        if case.random:
            lm.random.seed(77)
        cpu = _host(case.fn(**attrs, dtype=dtype), dtype)
        if case.random:
            lm.random.seed(77)
        gpu = case.fn(**attrs, dtype=dtype, ctx=lm.gpu(0))
        assert gpu.device == lm.gpu(0)
        got = _host(gpu.as_in_context(lm.cpu()), dtype)
        if dtype in ("float32", "float64") + HALF:
            # normal() calls log/cos, whose last bits differ between libm and
            # CUDA; in a half dtype such a difference can move the rounding by
            # one unit of the half's last place (2^-10 or 2^-7 relative)
            rtol = {"float16": 2.0 ** -10, "bfloat16": 2.0 ** -7}.get(dtype, 1e-5)
            np.testing.assert_allclose(got.astype(np.float64), cpu.astype(np.float64), rtol=rtol, atol=1e-6,
                                       err_msg=f"{case.name} {dtype}")
        else:
            np.testing.assert_array_equal(got, cpu, err_msg=f"{case.name} {dtype}")
