"""float16 and bfloat16 arrays: made from NumPy (float16) or by astype,
stored and viewed like any dtype, and converted to and from float with
round-to-nearest-even (against NumPy's float16 cast and a bit-level
bfloat16 reference). Arithmetic on them is not built yet: it must say so by
name, never return a wrong number."""
import numpy as np
import pytest

import loom as lm

RNG = np.random.default_rng(17)


def interesting_floats():
    bits = RNG.integers(0, 2**32, 200_000, dtype=np.uint64).astype(np.uint32)
    specials = np.array([0.0, -0.0, 1.0, -1.0, 65504.0, 65519.99, 65520.0, 1e6, -1e6, 6.1e-5, 6.0e-8, 2.98e-8,
                         5.96e-8, 1e-9, np.inf, -np.inf, np.nan, 1.0009766, 1.00048828125, 3.4e38], dtype=np.float32)
    with np.errstate(all="ignore"):
        return np.concatenate([bits.view(np.float32), specials])


def test_float16_round_trips_and_casts_match_numpy():
    x = interesting_floats()
    h = lm.nd.array(x).astype("float16")
    assert h.dtype == "float16"
    with np.errstate(all="ignore"):
        want = x.astype(np.float16)
    np.testing.assert_array_equal(h.asnumpy(), want)              # float32 -> float16 rounding
    np.testing.assert_array_equal(h.astype("float32").asnumpy(), want.astype(np.float32))
    f16 = RNG.standard_normal(1000).astype(np.float16)
    a = lm.nd.array(f16)                                           # from NumPy, no rounding
    assert a.dtype == "float16"
    np.testing.assert_array_equal(a.asnumpy(), f16)
    np.testing.assert_array_equal(a.astype("float64").asnumpy(), f16.astype(np.float64))
    np.testing.assert_array_equal(a.astype("int32").asnumpy(), f16.astype(np.float32).astype(np.int32))


def bfloat16_reference(x: np.ndarray) -> np.ndarray:
    """Round-to-nearest-even to bfloat16, returned as float32, with NumPy bit ops."""
    bits = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16
    out = rounded.astype(np.uint32).view(np.float32)
    return np.where(np.isnan(x), np.float32(np.nan), out)


def test_bfloat16_rounds_to_nearest_even():
    x = interesting_floats()
    b = lm.nd.array(x).astype("bfloat16")
    assert b.dtype == "bfloat16"
    np.testing.assert_array_equal(b.astype("float32").asnumpy(), bfloat16_reference(x))
    with pytest.raises(TypeError, match=r"asnumpy: bfloat16 has no NumPy dtype; convert first"):
        b.asnumpy()


def test_half_arrays_view_and_copy_like_any_dtype():
    x = RNG.standard_normal((4, 6)).astype(np.float16)
    a = lm.nd.array(x)
    np.testing.assert_array_equal(a.T.asnumpy(), x.T)
    np.testing.assert_array_equal(a[1:3, ::2].asnumpy(), x[1:3, ::2])
    np.testing.assert_array_equal(lm.nd.transpose(a, dims=[1, 0]).asnumpy(), x.T)
    np.testing.assert_array_equal(lm.nd.flip(a, dims=0).asnumpy(), x[::-1])
    np.testing.assert_array_equal(lm.nd.zeros((2, 3), dtype="float16").asnumpy(), np.zeros((2, 3), np.float16))


def test_arithmetic_on_half_arrays_is_a_clear_not_implemented_error():
    a = lm.nd.array(np.ones(3, np.float16))
    with pytest.raises(NotImplementedError, match=r"relu: .*float16"):
        lm.nd.relu(a)
    with pytest.raises(NotImplementedError, match=r"add: .*float16"):
        a + a
