"""Strided views copied to dense memory (asnumpy, and the contiguous()
copies kernels make of their inputs): broadcast (stride 0), transposed,
sliced and merged dims, every element size, small arrays and ones large
enough to be split across threads, against NumPy's own strided view."""
import numpy as np
import pytest

import loom as lm


def _view(base: np.ndarray, shape, strides, offset=0):
    """The same strided view in loom and in NumPy (strides in elements)."""
    got = lm.nd.array(base)._as_strided(list(shape), list(strides), offset)
    want = np.lib.stride_tricks.as_strided(base.reshape(-1)[offset:], shape,
                                           [s * base.itemsize for s in strides])
    return got, want


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "int8", "int64"])
@pytest.mark.parametrize("shape, strides", [
    ((32, 128, 28, 28), (0, 0, 0, 0)),            # a broadcast scalar (sum's gradient)
    ((4, 3, 5), (1, 4, 12)),                       # fully transposed
    ((600, 700), (1, 600)),                        # a large transpose: threads split rows
    ((64, 3, 4100), (0, 4100, 1)),                 # broadcast batch of dense rows
    ((5, 6, 7), (84, 14, 2)),                      # every other element
    ((2, 1, 3, 1), (3, 99, 1, 7)),                 # size-1 dims with odd strides
    ((3, 4), (0, 1)),
])
def test_strided_view_copies_like_numpy(dtype, shape, strides):
    span = 1 + sum((n - 1) * s for n, s in zip(shape, strides))
    base = (np.arange(span) % 251).astype(dtype)
    got, want = _view(base, shape, strides)
    np.testing.assert_array_equal(got.asnumpy(), want)
    np.testing.assert_array_equal((got + 0).asnumpy() if dtype != "int8" else got.asnumpy(), want)


def test_offset_view_copies_like_numpy():
    base = np.arange(1000, dtype=np.float32)
    got, want = _view(base, (7, 9), (100, 3), offset=17)
    np.testing.assert_array_equal(got.asnumpy(), want)
