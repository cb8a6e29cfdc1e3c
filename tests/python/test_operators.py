"""Python operators and methods on NDArray against NumPy, and the dtype a
Python scalar operand gives (weak scalars, as in PyTorch)."""
import operator

import numpy as np
import pytest

import loom as lm

RNG = np.random.default_rng(0)
A = RNG.uniform(0.5, 3, (3, 4)).astype(np.float32)
B = RNG.uniform(0.5, 3, (4,)).astype(np.float32)


@pytest.mark.parametrize("op", [operator.add, operator.sub, operator.mul, operator.truediv, operator.pow,
                                operator.mod, operator.lt, operator.le, operator.gt, operator.ge,
                                operator.eq, operator.ne])
def test_binary_operators_broadcast_like_numpy(op):
    got = op(lm.nd.array(A), lm.nd.array(B)).asnumpy()
    want = op(A, B)
    assert got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-5)


@pytest.mark.parametrize("op", [operator.add, operator.sub, operator.mul, operator.truediv])
def test_scalars_on_either_side(op):
    x = lm.nd.array(A)
    np.testing.assert_allclose(op(x, 2.5).asnumpy(), op(A, np.float32(2.5)), rtol=1e-6)
    np.testing.assert_allclose(op(2.5, x).asnumpy(), op(np.float32(2.5), A), rtol=1e-6)


def test_python_scalars_are_weak():
    i = lm.nd.array(np.array([1, 2, 3], dtype=np.int32))
    f64 = lm.nd.array(np.array([1.0, 2.0]), dtype="float64")
    assert (i + 2).dtype == "int32"            # int with int array: the array's dtype
    assert (i * 0.5).dtype == "float32"        # float with int array: the default float
    assert (f64 + 1).dtype == "float64"
    assert (i / 2).dtype == "float32"          # true division of integers, as in PyTorch
    np.testing.assert_allclose((i / 2).asnumpy(), [0.5, 1.0, 1.5])
    assert (lm.nd.array([True, False]) + 1).dtype == "int64"


def test_unary_and_logical_operators():
    x = lm.nd.array(A - 1.5)
    np.testing.assert_allclose((-x).asnumpy(), -(A - 1.5))
    np.testing.assert_allclose(abs(x).asnumpy(), np.abs(A - 1.5))
    pos, small = x > 0, x < 1
    np.testing.assert_array_equal((pos & small).asnumpy(), ((A - 1.5) > 0) & ((A - 1.5) < 1))
    np.testing.assert_array_equal((pos | small).asnumpy(), ((A - 1.5) > 0) | ((A - 1.5) < 1))
    np.testing.assert_array_equal((~pos).asnumpy(), ~((A - 1.5) > 0))
    with pytest.raises(TypeError, match="take bool arrays"):
        x & x


def test_methods_come_from_the_generated_ops():
    x = lm.nd.array(A)
    np.testing.assert_allclose(x.sum(dims=1).asnumpy(), A.sum(axis=1), rtol=1e-6)
    np.testing.assert_allclose(x.exp().asnumpy(), np.exp(A), rtol=1e-6)
    np.testing.assert_allclose(x.clip(1.0, 2.0).asnumpy(), np.clip(A, 1.0, 2.0))
    np.testing.assert_allclose(x.max(dims=0, keepdim=True).asnumpy(), A.max(axis=0, keepdims=True))
    assert x.exp.__doc__ and "exp" in x.exp.__doc__


def test_arrays_stay_hashable_and_bad_operands_are_type_errors():
    x = lm.nd.array(A)
    assert {x: 1}[x] == 1
    with pytest.raises(TypeError):
        x + "a"


def test_argmax_argmin_follow_numpy_on_ties_and_nan():
    a = np.array([[1.0, 3.0, 3.0, np.nan, 0.0], [2.0, 2.0, -1.0, -1.0, 5.0]])
    x = lm.nd.array(a, dtype="float64")
    for dim in (0, 1, -1):
        np.testing.assert_array_equal(lm.nd.argmax(x, dim).asnumpy(), np.argmax(a, axis=dim))
        np.testing.assert_array_equal(lm.nd.argmin(x, dim).asnumpy(), np.argmin(a, axis=dim))
    assert lm.nd.argmax(x, 1, keepdim=True).shape == (2, 1) and lm.nd.argmax(x).dtype == "int64"
    with pytest.raises(IndexError, match="argmax: dim 2 is out of range"):
        lm.nd.argmax(x, 2)
    with pytest.raises(ValueError, match="argmin: dim 0 of .* is empty"):
        lm.nd.argmin(lm.nd.zeros((0, 3)), 0)


def test_linear_checks_name_the_op_and_the_shapes():
    x, w, b = lm.nd.ones((4, 3)), lm.nd.ones((5, 3)), lm.nd.ones((5,))
    assert lm.nd.linear(x, w, b).shape == (4, 5)
    with pytest.raises(ValueError, match=r"linear: x's last dim must equal w's in_features .*x: NDArray\(shape=\(4, 2\)"):
        lm.nd.linear(lm.nd.ones((4, 2)), w, b)
    with pytest.raises(ValueError, match=r"linear: w must be a matrix"):
        lm.nd.linear(x, lm.nd.ones((3,)), b)
    with pytest.raises(ValueError, match=r"linear: b must be a vector of out_features .*b: NDArray\(shape=\(4,\)"):
        lm.nd.linear(x, w, lm.nd.ones((4,)))


def test_linear_bias_is_optional():
    """b is a Tensor? in linear.yaml: omitted, None or an array."""
    rng = np.random.default_rng(3)
    xv, wv, bv = rng.standard_normal((4, 3)), rng.standard_normal((5, 3)), rng.standard_normal(5)
    x, w, b = lm.nd.array(xv), lm.nd.array(wv), lm.nd.array(bv)
    np.testing.assert_allclose(lm.nd.linear(x, w).asnumpy(), xv @ wv.T, rtol=1e-12)
    np.testing.assert_allclose(lm.nd.linear(x, w, None).asnumpy(), xv @ wv.T, rtol=1e-12)
    np.testing.assert_allclose(lm.nd.linear(x, w, b=b).asnumpy(), xv @ wv.T + bv, rtol=1e-12)
    # the bias check applies only when a bias is given
    with pytest.raises(ValueError, match=r"linear: b must be a vector of out_features"):
        lm.nd.linear(x, w, lm.nd.ones((4,), dtype="float64"))
    # without a bias the gradients of x and w are those of x @ w.T
    x.attach_grad()
    w.attach_grad()
    g = rng.standard_normal((4, 5))
    with lm.autograd.record():
        y = lm.nd.linear(x, w)
    y.backward(lm.nd.array(g))
    np.testing.assert_allclose(x.grad.asnumpy(), g @ wv, rtol=1e-12)
    np.testing.assert_allclose(w.grad.asnumpy(), g.T @ xv, rtol=1e-12)
    out = lm.nd.zeros((4, 5), dtype="float64")
    lm.nd.linear(lm.nd.array(xv), lm.nd.array(wv), out=out)
    np.testing.assert_allclose(out.asnumpy(), xv @ wv.T, rtol=1e-12)


@pytest.mark.parametrize("ta, tb", [(False, False), (True, False), (False, True), (True, True)])
def test_batch_dot_transposes_like_mxnet(ta, tb):
    rng = np.random.default_rng(4)
    a = rng.standard_normal((3, 4, 5) if ta else (3, 5, 4))
    b = rng.standard_normal((3, 6, 4) if tb else (3, 4, 6))
    want = np.matmul(np.swapaxes(a, 1, 2) if ta else a, np.swapaxes(b, 1, 2) if tb else b)
    got = lm.nd.batch_dot(lm.nd.array(a), lm.nd.array(b), transpose_a=ta, transpose_b=tb)
    np.testing.assert_allclose(got.asnumpy(), want, rtol=1e-12)
    lm.autograd.gradcheck(lambda x, y: lm.nd.batch_dot(x, y, transpose_a=ta, transpose_b=tb), [a, b])


@pytest.mark.parametrize("dim", [0, 1, -1, -3])
def test_cumsum_along_any_dim_matches_numpy_and_differentiates(dim):
    x = np.random.default_rng(6).standard_normal((3, 4, 5))
    np.testing.assert_allclose(lm.nd.cumsum(lm.nd.array(x), dim=dim).asnumpy(), np.cumsum(x, axis=dim), rtol=1e-12)
    lm.autograd.gradcheck(lambda t: lm.nd.cumsum(t, dim=dim) ** 2, [x])
    ints = np.arange(12, dtype=np.int32).reshape(3, 4)
    np.testing.assert_array_equal(lm.nd.cumsum(lm.nd.array(ints), dim=1).asnumpy(), np.cumsum(ints, axis=1))


def test_cumsum_of_a_0d_array_is_an_index_error_as_in_numpy():
    with pytest.raises(IndexError, match="cumsum: a 0-d array has no dim"):
        lm.nd.cumsum(lm.nd.array(1.0))


def test_topk_returns_values_and_indices():
    """topk has two outputs (topk.yaml): a tuple, indices int64 without gradient."""
    x = lm.nd.array([[3.0, 1.0, 3.0, float("nan"), -2.0]])
    values, indices = lm.nd.topk(x, 3)
    v = values.asnumpy()
    assert np.isnan(v[0, 0]) and v[0, 1:].tolist() == [3.0, 3.0]  # NaN ranks largest, as in PyTorch
    assert indices.asnumpy().tolist() == [[3, 0, 2]] and indices.dtype == "int64"  # ties to the lower index
    values, indices = lm.nd.topk(x, 2, largest=False)
    assert values.asnumpy().tolist() == [[-2.0, 1.0]] and indices.asnumpy().tolist() == [[4, 1]]
    v, i = lm.nd.topk(lm.nd.array(np.arange(12, dtype=np.int32).reshape(3, 4)), 2, dim=0)
    assert v.asnumpy().tolist() == [[8, 9, 10, 11], [4, 5, 6, 7]] and v.dtype == "int32"
    assert i.asnumpy().tolist() == [[2, 2, 2, 2], [1, 1, 1, 1]]
    with pytest.raises(ValueError, match=r"topk: k must be in \[0, 5\]"):
        lm.nd.topk(x, 6)
    with pytest.raises(ValueError, match="topk: x must have at least one dim"):
        lm.nd.topk(lm.nd.array(1.0), 1)
    with pytest.raises(TypeError):
        lm.nd.topk(x, 1, out=lm.nd.zeros((1, 1)))


def test_topk_gradient_flows_through_values_only():
    rng = np.random.default_rng(0)
    xv = rng.standard_normal((3, 5))
    x = lm.nd.array(xv)
    x.attach_grad()
    with lm.autograd.record():
        values, indices = lm.nd.topk(x, 2)
        (values * values).sum().backward()
    assert not indices.requires_grad and values.requires_grad
    want = np.zeros_like(xv)
    idx = np.argsort(-xv, axis=1, kind="stable")[:, :2]
    np.put_along_axis(want, idx, 2 * np.take_along_axis(xv, idx, axis=1), axis=1)
    np.testing.assert_allclose(x.grad.asnumpy(), want, rtol=1e-12)


def test_softmax_cross_entropy_hides_its_probabilities():
    """prob is a hidden output (cross_entropy.yaml): one array comes back,
    and the backward reads the saved probabilities."""
    rng = np.random.default_rng(5)
    logits = rng.standard_normal((6, 4)) * 3
    label = np.array([0, 3, 1, 1, 2, 0])
    x = lm.nd.array(logits)
    x.attach_grad()
    with lm.autograd.record():
        loss = lm.nd.softmax_cross_entropy(x, lm.nd.array(label, dtype="int32"))
    assert isinstance(loss, lm.nd.NDArray) and loss.shape == (6,)
    shifted = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(loss.asnumpy(), -np.log(p[np.arange(6), label]), rtol=1e-12)
    g = rng.uniform(0.5, 1.5, 6)
    loss.backward(lm.nd.array(g))
    onehot = np.eye(4)[label]
    np.testing.assert_allclose(x.grad.asnumpy(), (p - onehot) * g[:, None], rtol=1e-12, atol=1e-15)
    with pytest.raises(IndexError, match="softmax_cross_entropy: index 4 is out of range"):
        lm.nd.softmax_cross_entropy(x, lm.nd.array([4, 0, 0, 0, 0, 0])).asnumpy()
    with pytest.raises(ValueError, match=r"softmax_cross_entropy: label must have logits' shape without dim -1, \(6,\)"):
        lm.nd.softmax_cross_entropy(x, lm.nd.array([0, 1]))


def test_softmax_cross_entropy_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    logits = rng.standard_normal((5, 7)).astype(np.float32) * 4
    label = rng.integers(0, 7, 5)
    want = torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(label), reduction="none")
    got = lm.nd.softmax_cross_entropy(lm.nd.array(logits), lm.nd.array(label))
    np.testing.assert_allclose(got.asnumpy(), want.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_matmul_and_softmax_compute_in_float32(dtype):
    """Hand-written kernels take float16/bfloat16 by computing in float32 and
    rounding once; gradients flow in the dtype."""
    rng = np.random.default_rng(8)
    a32 = rng.standard_normal((8, 16)).astype(np.float32)
    b32 = rng.standard_normal((16, 4)).astype(np.float32)
    a, b = lm.nd.array(a32).astype(dtype), lm.nd.array(b32).astype(dtype)
    exact = np.matmul(a.astype("float32").asnumpy().astype(np.float64), b.astype("float32").asnumpy().astype(np.float64))
    got = lm.nd.matmul(a, b)
    assert got.dtype == dtype
    ulp = 2.0 ** -10 if dtype == "float16" else 2.0 ** -7
    np.testing.assert_allclose(got.astype("float32").asnumpy(), exact, rtol=ulp, atol=ulp)
    a.attach_grad()
    with lm.autograd.record():
        y = lm.nd.softmax(lm.nd.matmul(a, b), dim=-1)
    y.backward()
    assert a.grad.dtype == dtype and a.grad.shape == (8, 16)
    # softmax rows sum to one, so the gradient of sum(y) is zero up to rounding
    np.testing.assert_allclose(a.grad.astype("float32").asnumpy(), 0, atol=8 * ulp)


def test_methods_follow_the_yaml_variants():
    """NDArray methods come from `variants: [..., method]` (the registry's op_info)."""
    a = lm.nd.array([[1.0, 2.0], [3.0, 4.0]])
    assert "method" in lm._C.op_info("matmul")["variants"]
    np.testing.assert_array_equal(a.matmul(a).asnumpy(), np.array([[7.0, 10.0], [15.0, 22.0]]))
    assert a.topk(1)[1].asnumpy().tolist() == [[1], [1]]
    assert "method" not in lm._C.op_info("where")["variants"] and not hasattr(a, "where")
