"""The foundation slice through Python: NDArray creation and conversion,
generated ops, error classes, and the install into the virtualenv."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import loom as lm

ROOT = Path(__file__).resolve().parents[2]


def test_readme_example_relu():
    assert lm.nd.relu(lm.nd.array([-1.0, 2.0])).asnumpy().tolist() == [0.0, 2.0]


def test_array_defaults_to_float32_for_python_numbers():
    """MXNet's rule: Python numbers and lists of them become float32; NumPy
    arrays keep their dtype; bools stay bool."""
    assert lm.nd.array([1.5, 2.0]).dtype == "float32"
    assert lm.nd.array([1, 2]).dtype == "float32" and lm.nd.array(3).dtype == "float32"
    assert lm.nd.array(np.array([1.5])).dtype == "float64"  # a NumPy array keeps its dtype
    assert lm.nd.array(np.array([1, 2])).dtype == "int64"
    assert lm.nd.array([True, False]).dtype == "bool"
    assert lm.nd.array([1, 2], dtype="int32").dtype == "int32"


@pytest.mark.parametrize("dtype", ["float32", "float64", "int8", "uint8", "int32", "int64", "bool"])
def test_numpy_round_trip_keeps_values_shape_and_dtype(dtype):
    src = (np.arange(24) % 5).reshape(2, 3, 4).astype(dtype)
    back = lm.nd.array(src).asnumpy()
    assert back.dtype == src.dtype and back.shape == src.shape
    np.testing.assert_array_equal(back, src)


def test_non_contiguous_numpy_input_is_copied_correctly():
    src = np.arange(12, dtype=np.float32).reshape(3, 4).T
    np.testing.assert_array_equal(lm.nd.array(src).asnumpy(), src)


@pytest.mark.parametrize("numel", [2, 1 << 20])  # below and above the size NumPy allocates itself
def test_asnumpy_is_a_copy(numel):
    a = lm.nd.arange(0, numel).astype("float32")
    view = a.asnumpy()
    assert view.flags["WRITEABLE"] and view.flags["C_CONTIGUOUS"]
    view[0] = 100
    assert a.asnumpy()[0] == 0.0
    a += 1  # later writes to the array do not show through either
    assert view[1] == 1.0 and a.asnumpy()[1] == 2.0


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "int8", "uint8", "int32", "int64", "bool"])
def test_a_large_array_comes_back_whole_in_its_dtype(dtype):
    """From 1 MB on, asnumpy fills an array NumPy allocated: every dtype,
    a transposed view, and the shape, including a 0-size dimension."""
    src = (np.arange(3 * 700_000) % 7).reshape(3, 700_000).astype(dtype)
    a = lm.nd.array(src)
    np.testing.assert_array_equal(a.asnumpy(), src)
    assert a.asnumpy().dtype == src.dtype
    np.testing.assert_array_equal(a.T.asnumpy(), src.T)
    assert lm.nd.zeros((0, 1 << 20)).asnumpy().shape == (0, 1 << 20)


def test_astype_converts_like_cpp():
    a = lm.nd.array([1.7, -1.7, 3.2])
    assert a.astype("int32").asnumpy().tolist() == [1, -1, 3]


def test_broadcast_error_is_a_value_error_naming_shapes():
    with pytest.raises(ValueError, match=r"add: cannot broadcast shapes \(2, 3\) and \(4,\)"):
        lm.nd.add(lm.nd.zeros((2, 3)), lm.nd.zeros((4,)))


def test_loom_errors_share_a_base_class():
    with pytest.raises(lm.LoomError):
        lm.nd.add(lm.nd.zeros((2, 3)), lm.nd.zeros((4,)))


def test_unknown_astype_dtype_lists_valid_names():
    with pytest.raises(TypeError, match="unknown dtype 'float128'.*float32"):
        lm.nd.zeros((2,)).astype("float128")


def test_non_ndarray_argument_is_a_type_error():
    with pytest.raises(TypeError):
        lm.nd.relu([1.0, 2.0])


def test_gpu_without_cuda_device_is_a_clear_error():
    if lm.num_gpus() > 0:
        pytest.skip("a GPU is present")
    with pytest.raises(lm.LoomError, match="gpu"):
        lm.nd.array([1.0], ctx=lm.gpu(0))


@pytest.mark.skipif(lm.num_gpus() == 0, reason="needs a GPU")
def test_cuda_kernels_match_cpu():
    x = np.random.default_rng(0).standard_normal((64, 33)).astype(np.float32)
    y = np.random.default_rng(1).standard_normal((33,)).astype(np.float32)
    gx, gy = lm.nd.array(x, ctx=lm.gpu(0)), lm.nd.array(y, ctx=lm.gpu(0))
    np.testing.assert_allclose(lm.nd.relu(gx).asnumpy(), np.maximum(x, 0))
    np.testing.assert_allclose(lm.nd.add(gx, gy).asnumpy(), x + y, rtol=1e-6)
    np.testing.assert_allclose(lm.nd.mul(gx.to(lm.gpu(0)), gy).asnumpy(), x * y, rtol=1e-6)


def test_registry_matches_generated_manifest():
    import json
    manifest = json.loads((ROOT / "generated" / "ops_manifest.json").read_text())
    assert sorted(op["name"] for op in manifest["ops"]) == lm._C.list_ops()
    info = lm._C.op_info("relu")
    assert info["source"] == "opdefs/elementwise/relu.yaml:1"
    assert lm._C.op_info("nope") is None


def test_docstring_comes_from_yaml():
    assert "Rectified linear unit" in lm.nd.relu.__doc__
    assert "opdefs/elementwise/relu.yaml" in lm.nd.relu.__doc__


def test_repr_shows_values_dtype_and_device():
    r = repr(lm.nd.array([1.0, 2.0]))
    assert "1." in r and "float32" in r and "cpu(0)" in r


def test_memory_is_returned_when_arrays_die():
    before = lm._C.memory_stats(lm.cpu())["in_use"]
    a = lm.nd.zeros((1000, 1000))
    assert lm._C.memory_stats(lm.cpu())["in_use"] - before >= 4_000_000
    del a
    lm.nd.waitall()  # a pending fill owns the memory until it has run
    assert lm._C.memory_stats(lm.cpu())["in_use"] == before


def test_matches_pytorch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(2).standard_normal((5, 7)).astype(np.float32)
    y = np.random.default_rng(3).standard_normal((7,)).astype(np.float32)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    lx, ly = lm.nd.array(x), lm.nd.array(y)
    np.testing.assert_array_equal(lm.nd.relu(lx).asnumpy(), torch.relu(tx).numpy())
    np.testing.assert_array_equal(lm.nd.add(lx, ly).asnumpy(), (tx + ty).numpy())
    np.testing.assert_array_equal(lm.nd.mul(lx, ly).asnumpy(), (tx * ty).numpy())


def test_import_works_from_any_directory_in_the_venv(tmp_path):
    if sys.prefix == sys.base_prefix:  # configure links a virtualenv only (e.g. not on the GPU machine)
        pytest.skip("not in a virtualenv: loom is imported through PYTHONPATH here")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", "import loom; print(loom.nd.relu(loom.nd.array([-1.0, 2.0])).asnumpy())"],
                         cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[0. 2.]"


def test_transpose_is_a_view_with_reversed_strides():
    a = lm.nd.array(np.arange(6, dtype=np.float32).reshape(2, 3))
    t = a.T
    assert t.shape == (3, 2) and t.strides == (1, 3) and not t.is_contiguous()
    np.testing.assert_array_equal(t.asnumpy(), np.arange(6).reshape(2, 3).T)


def test_as_strided_out_of_bounds_is_an_index_error():
    with pytest.raises(IndexError, match="outside the storage of 6 elements"):
        lm.nd.array(np.arange(6.0))._as_strided((4,), (2,))


def test_big_endian_input_is_converted_not_misread():
    np.testing.assert_array_equal(lm.nd.array(np.array([1.0, 2.0], dtype=">f4")).asnumpy(), [1.0, 2.0])


@pytest.mark.parametrize("dtype", ["int16", "complex64", "uint16"])
def test_unsupported_numpy_dtype_names_it(dtype):
    with pytest.raises(TypeError, match=f"array: NumPy dtype {dtype} has no loom equivalent"):
        lm.nd.array(np.zeros(2, dtype=dtype))


def test_out_overlapping_an_input_reads_the_input_before_writing():
    a = lm.nd.array(np.array([[0.0, 1.0], [2.0, 3.0]]))
    lm.nd.add(a, lm.nd.zeros((2, 2)), out=a.T)
    np.testing.assert_array_equal(a.asnumpy(), [[0.0, 2.0], [1.0, 3.0]])


def test_out_identical_to_input_updates_in_place():
    a = lm.nd.array(np.arange(100000, dtype=np.float32) - 50000)
    lm.nd.relu(a, out=a)
    np.testing.assert_array_equal(a.asnumpy(), np.maximum(np.arange(100000) - 50000, 0))


def test_out_that_repeats_elements_is_rejected():
    base = lm.nd.zeros((3,))
    with pytest.raises(ValueError, match="addresses some elements more than once"):
        lm.nd.add(lm.nd.ones((2, 3)), lm.nd.ones((2, 3)), out=base._as_strided((2, 3), (0, 1)))


def test_as_strided_with_huge_stride_is_rejected_not_read():
    with pytest.raises(IndexError, match="beyond the 64-bit range"):
        lm.nd.zeros((8,), dtype="int8")._as_strided((5,), (2**62,))


def test_element_count_overflow_is_an_error():
    with pytest.raises(ValueError, match="more elements than a 64-bit count holds"):
        lm.nd.zeros((1,))._as_strided((2**32 - 1, 2**32 + 1), (0, 0))


def test_astype_nan_and_out_of_range_to_int_are_defined():
    got = lm.nd.array(np.array([np.nan, 1e20, -1e20, 2.9])).astype("int32").asnumpy()
    assert got.tolist() == [0, 2**31 - 1, -2**31, 2]


def test_int32_overflow_wraps_like_numpy():
    x = np.array([2**31 - 1], dtype=np.int32)
    np.testing.assert_array_equal(lm.nd.add(lm.nd.array(x), lm.nd.array(x)).asnumpy(), x + x)


def test_float32_with_int64_stays_float32():
    assert lm.nd.add(lm.nd.zeros((1,)), lm.nd.array([1], dtype="int64")).dtype == "float32"
