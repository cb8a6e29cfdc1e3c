"""Elementwise fusion (runtime/graph/fuse_pointwise.h): chains of pointwise
nodes run as one tiled kernel; the results must equal the unfused ops' bit
for bit, and whatever the fused kernel cannot take must fall back."""
import numpy as np
import pytest

import loom as lm
from loom.cached_op import CachedOp

rng = np.random.default_rng(11)


def arr(shape, dtype=np.float32):
    return lm.nd.array(rng.standard_normal(shape).astype(dtype))


def fused_and_eager(fn, *inputs):
    op = CachedOp(fn, "fused")
    got = op(list(inputs))
    groups = op.entry(list(inputs), {}).program.num_fused_groups
    return got.asnumpy(), fn(*inputs).asnumpy(), groups


@pytest.mark.parametrize("n", [1, 7, 2048, 2049, 100_003, 1 << 21])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_chain_equals_the_ops_one_by_one(n, dtype):
    a, b = arr((n,), dtype), arr((n,), dtype)
    got, want, groups = fused_and_eager(lambda a, b: lm.nd.relu(a * b + a), a, b)
    assert groups == 1
    assert got.dtype == want.dtype and np.array_equal(got, want)


@pytest.mark.parametrize("n", [7, 2049, 100_003])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_chains_fuse_computing_in_float_and_rounding_once(n, dtype):
    # The fused tiles widen each half input to float, run the float members
    # and round the root's result once: exactly the float32 chain rounded.
    # The ops one by one round after every op, so they differ somewhere.
    a32, b32 = (lm.nd.array(rng.standard_normal(n).astype(np.float32)).astype(dtype).astype("float32")
                for _ in range(2))
    fn = lambda a, b: lm.nd.relu(a * b + a) * 0.75 - lm.nd.sigmoid(b)  # noqa: E731
    a, b = a32.astype(dtype), b32.astype(dtype)
    op = CachedOp(fn, "fused")
    got = op([a, b])
    assert op.entry([a, b], {}).program.num_fused_groups == 1 and got.dtype == dtype
    got32, eager32 = (r.astype("float32").asnumpy() for r in (got, fn(a, b)))
    want = fn(a32, b32).astype(dtype).astype("float32").asnumpy()
    np.testing.assert_array_equal(got32, want)
    tol = 2 ** -7 if dtype == "bfloat16" else 2 ** -10
    np.testing.assert_allclose(eager32, want, rtol=4 * tol, atol=4 * tol)
    if n > 10_000:
        assert not np.array_equal(eager32, want)  # the ops one by one do round in between


def test_scalars_and_unary_math_fuse():
    x = arr((3, 1000))
    fn = lambda x: lm.nd.tanh(lm.nd.exp(x * 0.5) - 1.0) / 2 + lm.nd.sigmoid(x)  # noqa: E731
    got, want, groups = fused_and_eager(fn, x)
    assert groups == 1 and np.array_equal(got, want)


def test_a_value_read_twice_ends_a_group_but_stays_correct():
    def fn(x):
        y = lm.nd.exp(x) + 1   # y has two readers: it must be materialised
        return lm.nd.relu(y) * y
    x = arr((5000,))
    got, want, groups = fused_and_eager(fn, x)
    assert groups == 2  # exp->add, and relu->mul
    assert np.array_equal(got, want)


def test_broadcasting_integer_and_strided_inputs_fall_back():
    x, bias = arr((64, 32)), arr((32,))
    got, want, _ = fused_and_eager(lambda x, b: lm.nd.relu(x + b) * 2, x, bias)
    assert np.array_equal(got, want)
    i = lm.nd.array(rng.integers(-5, 5, (100,)), dtype="int32")
    got, want, _ = fused_and_eager(lambda i: lm.nd.relu(i * i - 3), i)
    assert got.dtype == np.int32 and np.array_equal(got, want)
    t = arr((40, 30)).T  # a transposed view: not contiguous
    got, want, _ = fused_and_eager(lambda t: lm.nd.exp(t) + t, t)
    assert np.array_equal(got, want)
    mixed = (arr((10,)), arr((10,), np.float64))
    got, want, _ = fused_and_eager(lambda a, b: lm.nd.relu(a * b), *mixed)
    assert got.dtype == np.float64 and np.array_equal(got, want)


def test_recording_runs_the_nodes_so_gradients_flow():
    w = arr((1000,))
    w.attach_grad()
    op = CachedOp(lambda x: lm.nd.relu(x * w + x), "grad")
    x = arr((1000,))
    with lm.autograd.record():
        loss = lm.nd.sum(op([x]))
    loss.backward()
    xs, ws = x.asnumpy(), w.asnumpy()
    np.testing.assert_array_equal(w.grad.asnumpy(), np.where(xs * ws + xs > 0, xs, 0))


def test_symbol_executor_fuses_too():
    a, b = lm.sym.var("a"), lm.sym.var("b")
    net = lm.sym.relu(a * b + a)
    av, bv = arr((3, 5000)), arr((3, 5000))
    out = net.bind(lm.cpu(), args={"a": av, "b": bv}).forward()[0]
    assert np.array_equal(out.asnumpy(), lm.nd.relu(av * bv + av).asnumpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ops_with_attributes_fuse_with_each_nodes_values(dtype):
    a, b = arr((3, 5000), dtype), arr((3, 5000), dtype)
    fn = lambda a, b: (lm.nd.clip(lm.nd.gelu(a * b, approximate=True) + lm.nd.gelu(b), -0.5, 0.75)  # noqa: E731
                       + lm.nd.leaky_relu(a, 0.1))
    got, want, groups = fused_and_eager(fn, a, b)
    assert groups == 1 and got.dtype == want.dtype and np.array_equal(got, want)
    # one op twice in a group, each node with its own attribute
    fn = lambda a: lm.nd.leaky_relu(lm.nd.leaky_relu(a, 0.5) - 1.0, 0.25)  # noqa: E731
    got, want, groups = fused_and_eager(fn, a)
    x = a.asnumpy()
    y = np.where(x > 0, x, 0.5 * x) - 1
    assert groups == 1 and np.array_equal(got, want)
    np.testing.assert_allclose(got, np.where(y > 0, y, 0.25 * y), rtol=1e-6)
