"""Fused pointwise groups while autograd records (fuse_pointwise_grad.h): a
replayed graph records one node per group, whose backward is one tiled
kernel built from the ops' own gradient formulas. The gradients must equal
the ops' recorded one by one, bit for bit where the summation order is the
same; gradients of gradients must flow; whatever the fused backward cannot
take must record op by op."""
import numpy as np
import pytest

import loom as lm
from loom.cached_op import CachedOp

rng = np.random.default_rng(5)
FUSED = "FusedPointwiseBackward"


def arr(shape, dtype=np.float32, grad=True):
    a = lm.nd.array(rng.standard_normal(shape).astype(dtype))
    if grad:
        a.attach_grad()
    return a


def grads_of(fn, inputs, head, hybrid):
    """fn's output and the inputs' gradients for the head gradient `head`,
    run through a cached op (hybrid) or op by op."""
    for a in inputs:
        if a.requires_grad:
            a.attach_grad()  # fresh zero gradients
    call = CachedOp(fn, "fused grad") if hybrid else None
    with lm.autograd.record():
        out = call(list(inputs)) if hybrid else fn(*inputs)
    out.backward(head)
    return out, [a.grad.asnumpy() if a.requires_grad else None for a in inputs]


def check_equal(fn, inputs, exact=True, fused=True):
    out_shape = fn(*inputs).shape
    dtype = inputs[0].dtype
    head = lm.nd.array(rng.standard_normal(out_shape).astype(dtype))
    hout, hgrads = grads_of(fn, inputs, head, hybrid=True)
    eout, egrads = grads_of(fn, inputs, head, hybrid=False)
    assert (hout._grad_fn or "").startswith(FUSED) == fused, hout._grad_fn
    assert np.array_equal(hout.asnumpy(), eout.asnumpy())
    for h, e in zip(hgrads, egrads):
        if e is None:
            continue
        if exact:
            assert np.array_equal(h, e)
        else:
            np.testing.assert_allclose(h, e, rtol=1e-6 if dtype == np.float32 else 1e-12, atol=1e-6)
    return hgrads


@pytest.mark.parametrize("n", [1, 7, 2048, 2049, 100_003])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_fused_backward_equals_the_ops_one_by_one(n, dtype):
    a, b = arr((n,), dtype), arr((n,), dtype)
    ga, gb = check_equal(lambda a, b: lm.nd.relu(a * b + a), [a, b])
    # against the formula: d/da = g * (ab + a > 0) * (b + 1), d/db = g * (...) * a
    x, y = a.asnumpy(), b.asnumpy()
    assert ga.shape == (n,) and gb.shape == (n,)
    assert np.all((x * y + x > 0) | (ga == 0))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_gradients_stream_out(dtype):
    # 32 MiB and more per gradient: summed in tile buffers and streamed
    n = (32 << 20) // np.dtype(dtype).itemsize + 5
    a, b = arr((n,), dtype), arr((n,), dtype)
    check_equal(lambda a, b: lm.nd.sigmoid(a * b) - lm.nd.tanh(b), [a, b])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ops_with_attributes_scalars_and_transcendentals(dtype):
    a, b = arr((3, 5000), dtype), arr((3, 5000), dtype)
    fn = lambda a, b: (lm.nd.clip(lm.nd.gelu(a * b, approximate=True) + lm.nd.gelu(b), -0.5, 0.75)  # noqa: E731
                       + lm.nd.leaky_relu(a, 0.1) * 0.5 - lm.nd.exp(b * 0.25) / 3)
    check_equal(fn, [a, b])
    check_equal(lambda a: lm.nd.leaky_relu(lm.nd.leaky_relu(a, 0.5) - 1.0, 0.25), [a])


def test_an_input_read_twice_by_one_op_sums_both_gradients():
    x = arr((4097,))
    (gx,) = check_equal(lambda x: lm.nd.tanh(x * x - 1.0), [x])
    xs = x.asnumpy().astype(np.float64)
    assert np.all(np.isfinite(gx)) and gx.shape == xs.shape


def test_only_the_inputs_that_want_gradients_get_them():
    w, x = arr((3000,)), arr((3000,), grad=False)
    check_equal(lambda x, w: lm.nd.relu(x * w + x), [x, w])
    # the original test of the unfused path, now through the fused node
    op = CachedOp(lambda x: lm.nd.relu(x * w + x), "grad")
    w.attach_grad()
    with lm.autograd.record():
        y = op([x])
        loss = lm.nd.sum(y)
    assert y._grad_fn.startswith(FUSED)
    loss.backward()
    xs, ws = x.asnumpy(), w.asnumpy()
    np.testing.assert_array_equal(w.grad.asnumpy(), np.where(xs * ws + xs > 0, xs, 0))


def test_ops_without_gradients_pass_none_back():
    # floor takes no gradient: only the paths around it carry one
    x = arr((5000,))
    check_equal(lambda x: lm.nd.floor(x * 3) * x + x, [x])
    # nothing that wants a gradient is behind a gradient: nothing is recorded
    op = CachedOp(lambda x: lm.nd.floor(x * 3) + 1.0, "floor")
    with lm.autograd.record():
        y = op([x])
    assert not y.requires_grad


def test_an_input_also_read_outside_the_group():
    # a feeds the fused group and a matmul: its gradient is the group's share
    # plus the matmul's, summed once by the engine (so up to that rounding)
    a, w = arr((64, 64)), arr((64, 64))
    check_equal(lambda a, w: lm.nd.sigmoid(a * 2.0 + 1.0) * (a @ w), [a, w], exact=False)


def test_gradients_of_gradients_flow_through_the_members():
    a, b = arr((2000,), np.float64), arr((2000,), np.float64)
    fn = lambda a, b: lm.nd.tanh(a * b) * a  # noqa: E731

    def second(hybrid):
        a.attach_grad()
        b.attach_grad()
        call = CachedOp(fn, "double") if hybrid else fn
        with lm.autograd.record():
            y = call([a, b]) if hybrid else call(a, b)
            (ga,) = lm.autograd.grad(lm.nd.sum(y), [a], create_graph=True)
            z = lm.nd.sum(ga * ga)
        z.backward()
        return y._grad_fn, ga.asnumpy(), a.grad.asnumpy(), b.grad.asnumpy()

    name, *hybrid = second(True)
    _, *eager = second(False)
    assert name.startswith(FUSED)
    for h, e in zip(hybrid, eager):
        np.testing.assert_allclose(h, e, rtol=1e-12, atol=1e-12)


def test_retain_graph_and_a_second_backward():
    a, b = arr((3000,)), arr((3000,))
    op = CachedOp(lambda a, b: lm.nd.relu(a * b + a), "twice")
    with lm.autograd.record():
        y = op([a, b])
    y.backward(retain_graph=True)
    first = a.grad.asnumpy().copy()
    y.backward()
    np.testing.assert_array_equal(a.grad.asnumpy(), first)  # grad_req write
    with pytest.raises(lm.LoomError, match=f"{FUSED}.*retain_graph"):
        y.backward()


def test_an_input_changed_in_place_before_backward_is_reported():
    a, b = arr((3000,)), arr((3000,), grad=False)
    op = CachedOp(lambda a, b: lm.nd.relu(a * b + a), "inplace")
    with lm.autograd.record():
        y = op([a, b])
    b += 1
    with pytest.raises(lm.LoomError, match="modified in place"):
        y.backward()


def test_an_input_no_formula_reads_may_change_before_backward():
    # add's gradient reads nothing: b is neither read nor checked, as op by op
    a, b = arr((3000,)), arr((3000,), grad=False)
    op = CachedOp(lambda a, b: lm.nd.exp(a) + b, "unread")
    with lm.autograd.record():
        y = op([a, b])
    assert y._grad_fn.startswith(FUSED)
    b += 1
    y.backward()
    np.testing.assert_allclose(a.grad.asnumpy(), np.exp(a.asnumpy()), rtol=1e-6)


def test_a_gradient_on_another_device_is_refused_by_name():
    a = arr((100,))
    op = CachedOp(lambda a: lm.nd.relu(a * 2.0 + 1.0), "device")
    with lm.autograd.record():
        y = op([a])
    if lm.num_gpus() == 0:
        pytest.skip("needs a second device")
    with pytest.raises(lm.LoomError, match=f"{FUSED}.*gpu"):
        y.backward(lm.nd.ones((100,), ctx=lm.gpu(0)))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("n", [7, 2049, 100_003])
def test_half_gradients_are_the_float32_ones_rounded_once(dtype, n):
    # The fused backward widens the half inputs and gradient per tile,
    # computes in float and rounds each gradient once: exactly the float32
    # gradients (themselves equal to op by op) rounded to the half type.
    fn = lambda a, b: lm.nd.relu(a * b + a) * 0.75 - lm.nd.sigmoid(b)  # noqa: E731
    wide = [lm.nd.array(rng.standard_normal(n).astype(np.float32)).astype(dtype).astype("float32") for _ in range(3)]
    halves = [w.astype(dtype) for w in wide[:2]]
    head, head32 = wide[2].astype(dtype), wide[2]

    def gradients(inputs, head):
        for a in inputs:
            a.attach_grad()
        op = CachedOp(fn, "half grad")
        with lm.autograd.record():
            y = op(inputs)
        y.backward(head)
        return y._grad_fn, [a.grad for a in inputs]

    name, got = gradients(halves, head)
    _, want = gradients(wide[:2], head32)
    assert name.startswith(FUSED)
    for g, w in zip(got, want):
        assert g.dtype == dtype
        np.testing.assert_array_equal(g.astype("float32").asnumpy(), w.astype(dtype).astype("float32").asnumpy())


def test_what_the_fused_backward_cannot_take_records_op_by_op():
    a = arr((3000,))
    s = arr((1,))  # a single value wanting a gradient: its gradient is a sum
    check_equal(lambda a, s: lm.nd.relu(a * s + a), [a, s], fused=False)
    a2, b2 = arr((64, 32)), arr((32,))  # broadcasting: the forward is not fused either
    check_equal(lambda a, b: lm.nd.relu(a * b + a), [a2, b2], fused=False)


def test_a_hybridized_block_trains_with_fused_gradients():
    from loom.gluon import nn

    class Swish(nn.HybridBlock):
        def forward(self, x):
            return x * lm.nd.sigmoid(x * 1.5) + 0.1 * x

    net = nn.HybridSequential()
    net.add(nn.Dense(32), Swish(), nn.Dense(4))
    net.initialize()
    x = lm.nd.array(rng.standard_normal((16, 8)).astype(np.float32))

    def step():
        with lm.autograd.record():
            loss = lm.nd.sum(net(x) ** 2)
        loss.backward()
        return {k: p.grad().asnumpy() for k, p in net.collect_params().items()}

    eager = step()
    net.hybridize()
    hybrid = step()
    for k in eager:
        np.testing.assert_allclose(hybrid[k], eager[k], rtol=1e-5, atol=1e-6)
