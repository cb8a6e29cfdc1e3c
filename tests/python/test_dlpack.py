"""DLPack both ways without copies, against NumPy and PyTorch: values,
dtypes, strides, shared memory in both directions, and lifetimes (the
producer's memory stays alive while a view of it does)."""
import gc

import numpy as np
import pytest

import loom as lm


@pytest.mark.parametrize("dtype", ["float32", "float64", "int8", "uint8", "int32", "int64", "bool"])
def test_numpy_round_trip_shares_memory(dtype):
    a = (np.arange(12) % 3).astype(dtype).reshape(3, 4)
    x = lm.nd.from_dlpack(a)
    assert x.dtype == dtype and x.shape == (3, 4)
    np.testing.assert_array_equal(x.asnumpy(), a)
    back = np.from_dlpack(x)
    np.testing.assert_array_equal(back, a)
    if dtype == "float64":
        a[1, 2] = 42
        assert x.asnumpy()[1, 2] == 42 and back[1, 2] == 42


def test_strided_views_keep_their_layout():
    a = np.arange(24.0).reshape(4, 6)[::2, 1::2]
    x = lm.nd.from_dlpack(a)
    assert x.strides == (12, 2)
    np.testing.assert_array_equal(x.asnumpy(), a)
    t = np.from_dlpack(lm.nd.array(np.arange(6.0).reshape(2, 3)).T)
    assert t.strides == (8, 24)
    np.testing.assert_array_equal(t, np.arange(6.0).reshape(2, 3).T)


def test_torch_both_ways():
    torch = pytest.importorskip("torch")
    t = torch.arange(10.0)[::2]
    x = lm.nd.from_dlpack(t)
    np.testing.assert_array_equal(x.asnumpy(), [0, 2, 4, 6, 8])
    t[1] = -1
    assert x.asnumpy()[1] == -1  # shared
    y = torch.from_dlpack(lm.nd.array([[1, 2], [3, 4]], dtype="int32"))
    assert y.dtype == torch.int32 and y.tolist() == [[1, 2], [3, 4]]
    loom_arr = lm.nd.array([1.0, 2.0])
    view = torch.from_dlpack(loom_arr)
    loom_arr += 10
    loom_arr.wait_to_read()  # loom's write may be asynchronous; torch reads the memory directly
    assert view.tolist() == [11.0, 12.0]


def test_imported_memory_outlives_the_producer_object():
    a = np.arange(1000.0)
    x = lm.nd.from_dlpack(a)
    del a
    gc.collect()
    assert x.asnumpy()[999] == 999.0
    y = np.from_dlpack(lm.nd.array(np.arange(5.0)))  # the loom array is gone at once; y keeps it
    gc.collect()
    np.testing.assert_array_equal(y, np.arange(5.0))


def test_imported_arrays_work_with_ops_and_autograd():
    x = lm.nd.from_dlpack(np.array([1.0, -2.0, 3.0]))
    x.attach_grad()
    with lm.autograd.record():
        y = (lm.nd.relu(x) * x).sum()
    y.backward()
    np.testing.assert_array_equal(x.grad.asnumpy(), [2.0, 0.0, 6.0])
    assert x.__dlpack_device__() == (1, 0)
