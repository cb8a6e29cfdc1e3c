"""take, index_add and one_hot with the arguments the generated suites keep
fixed (other dims, index dtypes, repeated indices), their errors, and the
embedding-lookup gradient (repeated tokens accumulate), against NumPy."""
import numpy as np
import pytest

import loom as lm

RNG = np.random.default_rng(9)


@pytest.mark.parametrize("dim", [0, 1, 2, -1])
@pytest.mark.parametrize("index_dtype", ["int64", "int32", "uint8"])
def test_take_matches_numpy_along_any_dim(dim, index_dtype):
    x = RNG.standard_normal((3, 4, 5))
    idx = np.array([[0, 2], [2, 1], [1, 1]], dtype=index_dtype)
    got = lm.nd.take(lm.nd.array(x), lm.nd.array(idx), dim=dim)
    np.testing.assert_array_equal(got.asnumpy(), np.take(x, idx, axis=dim))


def test_take_negative_indices_count_from_the_end():
    x = np.arange(10.0)
    np.testing.assert_array_equal(lm.nd.take(lm.nd.array(x), lm.nd.array([-1, -10, 3])).asnumpy(), [9.0, 0.0, 3.0])


def test_bad_indices_raise_index_errors_naming_the_op():
    x = lm.nd.array(np.zeros((4, 3)))
    with pytest.raises(IndexError, match=r"take: index 4 is out of range for dim 0 of size 4 \(valid: -4 to 3\)"):
        lm.nd.take(x, lm.nd.array([0, 4])).wait_to_read()  # the kernel finds it: at once, or at the wait
    with pytest.raises(IndexError, match=r"take: index -5 is out of range"):
        lm.nd.take(x, lm.nd.array([-5])).wait_to_read()  # the kernel finds it: at once, or at the wait
    with pytest.raises(TypeError, match=r"take: indices must be an array of integer indices, got bool"):
        lm.nd.take(x, lm.nd.array([True, False]))
    # float arrays of whole numbers index like their integers (lm.nd.array([0, 2]) is float32, as in MXNet)
    np.testing.assert_array_equal(lm.nd.take(x, lm.nd.array([2.0, 0.0])).asnumpy(),
                                  lm.nd.take(x, lm.nd.array(np.array([2, 0]))).asnumpy())
    with pytest.raises(IndexError, match=r"take: dim 2 is out of range for an array of shape \(4, 3\)"):
        lm.nd.take(x, lm.nd.array([0]), dim=2)
    with pytest.raises(IndexError, match=r"one_hot: index -1 is out of range for depth 3 \(valid: 0 to 2\)"):
        lm.nd.one_hot(lm.nd.array([0, -1]), 3).wait_to_read()  # the kernel finds it: at once, or at the wait
    with pytest.raises(IndexError, match=r"index_add: index 7 is out of range"):
        lm.nd.index_add(x, lm.nd.array([7]), lm.nd.array(np.ones((1, 3)))).wait_to_read()  # the kernel finds it: at once, or at the wait
    with pytest.raises(ValueError, match=r"index_add: src has shape \(2, 3\) but x of shape \(4, 3\) with 1 indices"):
        lm.nd.index_add(x, lm.nd.array([1]), lm.nd.array(np.ones((2, 3))))


def test_embedding_gradient_accumulates_repeated_tokens():
    weight = lm.nd.array(RNG.standard_normal((6, 4)))
    tokens = np.array([[1, 3, 1], [5, 1, 0]])
    weight.attach_grad()
    w_out = RNG.standard_normal((2, 3, 4))
    with lm.autograd.record():
        y = (lm.nd.take(weight, lm.nd.array(tokens)) * lm.nd.array(w_out)).sum()
    y.backward()
    want = np.zeros((6, 4))
    np.add.at(want, tokens.reshape(-1), w_out.reshape(-1, 4))
    np.testing.assert_allclose(weight.grad.asnumpy(), want, rtol=1e-12)


def test_take_and_index_add_gradients_along_other_dims():
    x = RNG.standard_normal((3, 5))
    idx = np.array([4, 0, 4])
    lm.autograd.gradcheck(lambda t, i: lm.nd.take(t, i, dim=1) ** 2, [x, idx], wrt=[0])
    lm.autograd.gradgradcheck(lambda t, i: lm.nd.take(t, i, dim=-1) ** 3, [x, idx], wrt=[0])
    src = RNG.standard_normal((3, 3))
    lm.autograd.gradcheck(lambda t, i, s: lm.nd.index_add(t, i, s, dim=1) ** 2, [x, idx, src], wrt=[0, 2])


def test_index_add_accumulates_like_numpy_add_at():
    x = RNG.standard_normal((2, 4))
    idx = np.array([1, 1, 3, 1])
    src = RNG.standard_normal((2, 4))
    want = x.copy()
    np.add.at(want.T, idx, src.T)
    got = lm.nd.index_add(lm.nd.array(x), lm.nd.array(idx), lm.nd.array(src), dim=1)
    np.testing.assert_allclose(got.asnumpy(), want, rtol=1e-12)


def test_one_hot_matches_numpy_for_labels():
    labels = np.array([[0, 2], [1, 3]])
    got = lm.nd.one_hot(lm.nd.array(labels), 4)
    assert got.dtype == "float32" and got.shape == (2, 2, 4)
    np.testing.assert_array_equal(got.asnumpy(), np.eye(4, dtype=np.float32)[labels])


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_gather_and_scatter_add_match_torch(dim):
    torch = pytest.importorskip("torch")
    x = RNG.standard_normal((4, 5))
    index = RNG.integers(0, 4 if dim == 0 else 5, (3, 5 if dim == 0 else 2))
    got = lm.nd.gather(lm.nd.array(x), lm.nd.array(index), dim=dim).asnumpy()
    want = torch.gather(torch.tensor(x), dim, torch.tensor(index)).numpy()
    np.testing.assert_array_equal(got, want)
    src = RNG.standard_normal(index.shape)
    got = lm.nd.scatter_add(lm.nd.array(x), lm.nd.array(index), lm.nd.array(src), dim=dim).asnumpy()
    want = torch.tensor(x).scatter_add(dim, torch.tensor(index), torch.tensor(src)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12)
    lm.autograd.gradgradcheck(lambda t: lm.nd.gather(t, lm.nd.array(index), dim=dim) ** 3, [x])
    lm.autograd.gradgradcheck(lambda t, s: lm.nd.scatter_add(t, lm.nd.array(index), s, dim=dim) ** 3, [x, src])


def test_gather_errors_name_the_op_and_shapes():
    x = lm.nd.array(np.zeros((3, 4)))
    with pytest.raises(IndexError, match=r"gather: index 3 is out of range for dim 0 of size 3"):
        lm.nd.gather(x, lm.nd.array([[0, 3]]), dim=0).wait_to_read()  # the kernel finds it: at once, or at the wait
    with pytest.raises(ValueError, match=r"gather: index has 1 dims but x has 2"):
        lm.nd.gather(x, lm.nd.array([0, 1]), dim=0)
    with pytest.raises(ValueError, match=r"gather: index of shape \(1, 5\) is larger than x of shape \(3, 4\) in dim 1"):
        lm.nd.gather(x, lm.nd.array([[0, 0, 0, 0, 0]]), dim=0)
    with pytest.raises(TypeError):   # torch's argument order: the int lands where the index goes
        lm.nd.gather(x, 0, lm.nd.array([[0]]))
