"""Array creation, seeded random arrays, and lm.nd.save/load: round trips
of every dtype and container, and clear errors on truncated or corrupted
files."""
import numpy as np
import pytest

import loom as lm


def test_creation_functions_match_numpy():
    np.testing.assert_array_equal(lm.nd.full((2, 3), 7).asnumpy(), np.full((2, 3), 7, np.float32))
    assert lm.nd.arange(5).dtype == "int64" and lm.nd.arange(0.0, 1.0, 0.25).dtype == "float32"
    np.testing.assert_allclose(lm.nd.arange(0.0, 1.0, 0.25).asnumpy(), [0, 0.25, 0.5, 0.75])
    np.testing.assert_allclose(lm.nd.linspace(0, 1, 5).asnumpy(), np.linspace(0, 1, 5))
    np.testing.assert_array_equal(lm.nd.eye(3, k=1).asnumpy(), np.eye(3, k=1))
    x = lm.nd.array([[1, 2]], dtype="int32")
    assert lm.nd.zeros_like(x).dtype == "int32" and lm.nd.ones_like(x).asnumpy().tolist() == [[1, 1]]


@pytest.mark.parametrize("n, m, k", [(300, 301, -2), (301, 300, 5), (1, 70000, 3), (70000, 1, 0), (257, 129, 0)])
def test_large_eye_matches_numpy_across_the_cpu_loops_chunks(n, m, k):
    # above 32768 elements the generate loop splits into chunks that start
    # mid-row; row and col must carry over (generate_cpu.h)
    np.testing.assert_array_equal(lm.nd.eye(n, m, k=k, dtype="float64").asnumpy(), np.eye(n, m, k))


def test_large_arange_and_linspace_match_numpy():
    np.testing.assert_array_equal(lm.nd.arange(100003, dtype="int64").asnumpy(), np.arange(100003))
    np.testing.assert_allclose(lm.nd.linspace(-1.0, 2.0, 99991, dtype="float64").asnumpy(),
                               np.linspace(-1.0, 2.0, 99991), rtol=0, atol=1e-15)


def test_random_is_reproducible_with_seed():
    lm.random.seed(42)
    a, b = lm.random.uniform(-1, 1, (3, 4)), lm.nd.random.normal(0, 2, (5,), dtype="float64")
    lm.random.seed(42)
    np.testing.assert_array_equal(a.asnumpy(), lm.random.uniform(-1, 1, (3, 4)).asnumpy())
    np.testing.assert_array_equal(b.asnumpy(), lm.random.normal(0, 2, (5,), dtype="float64").asnumpy())
    assert b.dtype == "float64" and ((a.asnumpy() >= -1) & (a.asnumpy() < 1)).all()
    r = lm.random.randint(0, 3, (1000,)).asnumpy()
    assert set(np.unique(r)) == {0, 1, 2}


@pytest.mark.parametrize("dtype", ["float32", "float64", "int8", "uint8", "int32", "int64", "bool"])
def test_save_load_round_trip(tmp_path, dtype):
    rng = np.random.default_rng(0)
    arrays = {"w": lm.nd.array((rng.random((3, 4)) * 100).astype(dtype)), "scalar": lm.nd.array(np.array(5, dtype)),
              "empty": lm.nd.array(np.zeros((0, 2), dtype)), "t": lm.nd.array(rng.random((2, 3)) > 0.5).astype(dtype).T}
    lm.nd.save(tmp_path / "d.params", arrays)
    back = lm.nd.load(tmp_path / "d.params")
    assert list(back) == list(arrays)
    for k, v in arrays.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape
        np.testing.assert_array_equal(back[k].asnumpy(), v.asnumpy())
    lm.nd.save(tmp_path / "l.params", list(arrays.values()))
    assert [a.shape for a in lm.nd.load(tmp_path / "l.params")] == [a.shape for a in arrays.values()]


def test_truncated_and_corrupted_files_raise(tmp_path):
    path = tmp_path / "x.params"
    lm.nd.save(path, {"a": lm.nd.array(np.arange(100.0))})
    blob = path.read_bytes()
    path.write_bytes(blob[:-50])
    with pytest.raises(ValueError, match="x.params: truncated: entry 0's data"):
        lm.nd.load(path)
    damaged = bytearray(blob)
    damaged[200] ^= 0xFF
    path.write_bytes(bytes(damaged))
    with pytest.raises(ValueError, match="entry 0 \\('a'\\): checksum mismatch"):
        lm.nd.load(path)
    path.write_bytes(b"PK\x03\x04 not ours")
    with pytest.raises(ValueError, match="not a loom NDArray file"):
        lm.nd.load(path)
    with pytest.raises(TypeError, match="dict keys must be str"):
        lm.nd.save(path, {1: lm.nd.zeros((1,))})


def test_mxnet_and_numpy_names():
    x = lm.nd.array([[1.0, 2.0], [3.0, 4.0]])
    assert lm.nd.array([5.0]).item() == 5.0 and len(x) == 2
    with pytest.raises(ValueError, match="only one-element arrays"):
        x.item()
    y = lm.nd.zeros((2, 2), dtype="float64")
    assert x.copyto(y) is y and y.asnumpy().tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert x.as_in_context(lm.cpu()) is x and x.context == lm.cpu()
    x.wait_to_read()
    np.testing.assert_array_equal(lm.nd.multiply(x, x).asnumpy(), x.asnumpy() ** 2)
    np.testing.assert_array_equal(lm.nd.negative(x).asnumpy(), -x.asnumpy())
    np.testing.assert_array_equal(lm.nd.dot(x, x).asnumpy(), x.asnumpy() @ x.asnumpy())
    assert lm.nd.amax(x).item() == 4.0
