"""Elementwise ops over outputs of 32 MiB and more take the streaming-store
path (runtime/kernels/cpu/streaming_store.h): blocks computed in L1 and
written with non-temporal stores, a plain head up to a 64-byte boundary and
a plain tail. Checked against NumPy with lengths and offsets that exercise
every part, in place too."""
import numpy as np
import pytest

import loom as lm

N = 9 * 1024 * 1024 + 37  # float32: 36 MiB, past the threshold, with a ragged tail


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_large_outputs_match_numpy(dtype):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(N).astype(dtype)
    b = rng.standard_normal(N).astype(dtype)
    x, y = lm.nd.array(a), lm.nd.array(b)
    np.testing.assert_array_equal(lm.nd.add(x, y).asnumpy(), a + b)
    np.testing.assert_array_equal(lm.nd.relu(x).asnumpy(), np.maximum(a, 0))
    tol = dict(rtol=2e-6, atol=0) if dtype == "float32" else dict(rtol=1e-15, atol=0)
    np.testing.assert_allclose(lm.nd.exp(x).asnumpy(), np.exp(a), **tol)
    # an output that starts off a 64-byte boundary: a view at offset 3
    out = lm.nd.zeros((N + 3,), dtype=dtype)
    lm.nd.mul(x, y, out=out[3:])
    got = out.asnumpy()
    np.testing.assert_array_equal(got[3:], a * b)
    assert not got[:3].any()
    # in place: each block is read before it is streamed back
    x += y
    np.testing.assert_array_equal(x.asnumpy(), a + b)
