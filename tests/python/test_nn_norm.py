"""Normalisation ops against PyTorch with identical inputs and parameters:
outputs, gradients of input, weight and bias, and batch_norm's running
statistics updated in place in training (and left alone in inference)."""
import numpy as np
import pytest

import loom as lm

torch = pytest.importorskip("torch")
F = torch.nn.functional


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(8, 3), (4, 5, 7), (2, 3, 6, 5), (2, 2, 3, 4, 3)])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_training_matches_torch(shape, dtype, affine):
    rng = np.random.default_rng(sum(shape))
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    c = shape[1]
    w, b = rng.standard_normal(c).astype(dtype), rng.standard_normal(c).astype(dtype)
    rm, rv = rng.standard_normal(c).astype(dtype), rng.uniform(0.5, 2, c).astype(dtype)
    head = rng.standard_normal(shape).astype(dtype)

    lx = lm.nd.array(x)
    lw, lb = (lm.nd.array(w), lm.nd.array(b)) if affine else (None, None)
    lrm, lrv = lm.nd.array(rm), lm.nd.array(rv)
    for a in (lx, lw, lb):
        if a is not None:
            a.attach_grad()
    with lm.autograd.record():
        y = lm.nd.batch_norm(lx, lw, lb, lrm, lrv, training=True, momentum=0.2, eps=1e-3)
    y.backward(lm.nd.array(head))

    tx = torch.tensor(x, requires_grad=True)
    tw, tb = (torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)) if affine else (None, None)
    trm, trv = torch.tensor(rm), torch.tensor(rv)
    ty = F.batch_norm(tx, trm, trv, tw, tb, training=True, momentum=0.2, eps=1e-3)
    ty.backward(torch.tensor(head))

    tol = dict(rtol=2e-4, atol=2e-4) if dtype == "float32" else dict(rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(y.asnumpy(), ty.detach().numpy(), **tol)
    np.testing.assert_allclose(lrm.asnumpy(), trm.numpy(), **tol, err_msg="running_mean")
    np.testing.assert_allclose(lrv.asnumpy(), trv.numpy(), **tol, err_msg="running_var")
    np.testing.assert_allclose(lx.grad.asnumpy(), tx.grad.numpy(), **tol, err_msg="dx")
    if affine:
        np.testing.assert_allclose(lw.grad.asnumpy(), tw.grad.numpy(), **tol, err_msg="dweight")
        np.testing.assert_allclose(lb.grad.asnumpy(), tb.grad.numpy(), **tol, err_msg="dbias")


def test_batch_norm_inference_uses_and_keeps_the_running_statistics():
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((4, 3, 5)), rng.standard_normal(3), rng.standard_normal(3)
    rm, rv = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    lx, lrm, lrv = lm.nd.array(x), lm.nd.array(rm), lm.nd.array(rv)
    lx.attach_grad()
    with lm.autograd.record():
        y = lm.nd.batch_norm(lx, lm.nd.array(w), lm.nd.array(b), lrm, lrv, training=False)
    head = rng.standard_normal(x.shape)
    y.backward(lm.nd.array(head))
    tx = torch.tensor(x, requires_grad=True)
    ty = F.batch_norm(tx, torch.tensor(rm), torch.tensor(rv), torch.tensor(w), torch.tensor(b), training=False)
    ty.backward(torch.tensor(head))
    np.testing.assert_allclose(y.asnumpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(lx.grad.asnumpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(lrm.asnumpy(), rm)
    np.testing.assert_array_equal(lrv.asnumpy(), rv)


def test_batch_norm_second_derivative_matches_torch():
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((4, 3, 5)), rng.standard_normal(3)
    lx, lw = lm.nd.array(x), lm.nd.array(w)
    lx.attach_grad()
    with lm.autograd.record():
        y = lm.nd.batch_norm(lx, lw, None)
        (gx,) = lm.autograd.grad([(y * y * y).sum()], [lx], create_graph=True)
        z = (gx * gx).sum()
    z.backward()
    tx = torch.tensor(x, requires_grad=True)
    ty = F.batch_norm(tx, None, None, torch.tensor(w), None, training=True)
    (tgx,) = torch.autograd.grad((ty * ty * ty).sum(), tx, create_graph=True)
    (tgx * tgx).sum().backward()
    np.testing.assert_allclose(lx.grad.asnumpy(), tx.grad.numpy(), rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("training, create_graph", [(True, False), (False, False), (True, True)])
def test_fused_relu_equals_batch_norm_then_relu(training, create_graph):
    """batch_norm(relu=True) against relu(batch_norm()): the output, the
    running statistics and the gradients of x, weight and bias, through the
    fused kernels (the mask recomputed from x) and, recording, the ops."""
    rng = np.random.default_rng(7)
    x_np = rng.standard_normal((8, 6, 7, 5)).astype(np.float32)
    w_np, b_np = rng.uniform(0.5, 1.5, 6).astype(np.float32), rng.standard_normal(6).astype(np.float32)
    g_np = rng.standard_normal(x_np.shape).astype(np.float32)
    results = []
    for fused in (True, False):
        x, w, b = lm.nd.array(x_np), lm.nd.array(w_np), lm.nd.array(b_np)
        rm, rv = lm.nd.zeros((6,)), lm.nd.ones((6,))
        for a in (x, w, b):
            a.attach_grad()
        with lm.autograd.record():
            if fused:
                y = lm.nd.batch_norm(x, w, b, rm, rv, training=training, relu=True)
            else:
                y = lm.nd.relu(lm.nd.batch_norm(x, w, b, rm, rv, training=training))
            if create_graph:
                gx, = lm.autograd.grad([(y * lm.nd.array(g_np)).sum()], [x], create_graph=True)
                z = (gx * gx).sum()
        if create_graph:
            z.backward()
        else:
            y.backward(lm.nd.array(g_np))
        results.append([y.asnumpy(), rm.asnumpy(), rv.asnumpy(), x.grad.asnumpy(), w.grad.asnumpy(), b.grad.asnumpy()])
    assert (results[0][0] == 0).mean() > 0.2  # the ReLU cut a real share
    for fused, plain in zip(*results):
        np.testing.assert_allclose(fused, plain, rtol=2e-5, atol=2e-5)


def test_batch_norm_statistics_stay_exact_far_from_zero():
    """The one-pass moments (shifted by each channel's first value) keep the
    variance of data whose mean is 1e5 times its spread."""
    rng = np.random.default_rng(0)
    x = (1000 + 0.01 * rng.standard_normal((64, 3, 20, 20))).astype(np.float32)
    rm, rv = lm.nd.zeros((3,)), lm.nd.ones((3,))
    lm.nd.batch_norm(lm.nd.array(x), None, None, rm, rv, momentum=1.0)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(rm.asnumpy(), x64.mean(axis=(0, 2, 3)), rtol=1e-7)
    np.testing.assert_allclose(rv.asnumpy(), x64.var(axis=(0, 2, 3), ddof=1), rtol=1e-6)


def test_batch_norm_running_statistics_are_ordered_by_the_engine():
    """Reading a running statistic right after a training step sees the update."""
    x = lm.nd.array(np.arange(24, dtype=np.float32).reshape(4, 3, 2))
    rm, rv = lm.nd.zeros((3,)), lm.nd.ones((3,))
    for _ in range(3):
        lm.nd.batch_norm(x, None, None, rm, rv, momentum=0.5)
    want = np.arange(24, dtype=np.float64).reshape(4, 3, 2).transpose(1, 0, 2).reshape(3, -1).mean(axis=1)
    np.testing.assert_allclose(rm.asnumpy(), want * (1 - 0.5 ** 3), rtol=1e-6)


@pytest.mark.parametrize("call, match", [
    (lambda: lm.nd.batch_norm(lm.nd.zeros((4, 3)), lm.nd.ones((2,))),
     r"batch_norm: weight must be \(channels,\) = \(3,\)"),
    (lambda: lm.nd.batch_norm(lm.nd.zeros((4, 3)), training=False),
     r"training=False normalises with running_mean and running_var, which are not given"),
    (lambda: lm.nd.batch_norm(lm.nd.zeros((1, 3)), None, None),
     r"training needs more than one value per channel"),
    (lambda: lm.nd.batch_norm(lm.nd.zeros((4, 3)), None, None, lm.nd.zeros((3,), dtype="float64"),
                              lm.nd.ones((3,), dtype="float64")),
     r"running_mean \(written in place\) must be float32"),
])
def test_batch_norm_errors_name_the_op_and_shapes(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def _grads_vs_torch(loom_fn, torch_fn, arrays, tol):
    """Forward and every input's gradient, loom vs torch, for one head."""
    rng = np.random.default_rng(9)
    ls = [None if a is None else lm.nd.array(a) for a in arrays]
    for a in ls:
        if a is not None:
            a.attach_grad()
    with lm.autograd.record():
        y = loom_fn(*ls)
    head = rng.standard_normal(y.shape).astype(arrays[0].dtype)
    y.backward(lm.nd.array(head))
    ts = [None if a is None else torch.tensor(a, requires_grad=True) for a in arrays]
    ty = torch_fn(*ts)
    ty.backward(torch.tensor(head))
    np.testing.assert_allclose(y.asnumpy(), ty.detach().numpy(), **tol)
    for k, (a, t) in enumerate(zip(ls, ts)):
        if a is not None:
            np.testing.assert_allclose(a.grad.asnumpy(), t.grad.numpy(), **tol, err_msg=f"gradient of input {k}")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape, axis", [((16, 32), -1), ((4, 7, 64), -1), ((2, 3, 4, 5), 2), ((3, 8), 0)])
def test_layer_norm_matches_torch(shape, axis, dtype):
    rng = np.random.default_rng(len(shape))
    x = (rng.standard_normal(shape) * 2 + 0.5).astype(dtype)
    norm_shape = shape[axis:] if axis >= 0 else shape[axis:]
    w, b = rng.standard_normal(norm_shape).astype(dtype), rng.standard_normal(norm_shape).astype(dtype)
    tol = dict(rtol=2e-4, atol=2e-4) if dtype == "float32" else dict(rtol=1e-10, atol=1e-10)
    _grads_vs_torch(lambda x_, w_, b_: lm.nd.layer_norm(x_, w_, b_, axis=axis, eps=1e-4),
                    lambda x_, w_, b_: F.layer_norm(x_, norm_shape, w_, b_, eps=1e-4), [x, w, b], tol)


HEADS = {  # how the head gradient reaches layer_norm's backward, and the dense array it equals
    "sum (one value broadcast)": (lambda y, h: y.sum(), lambda h: np.ones(h.shape)),
    "sum over the rows (one row broadcast)": (lambda y, h: (y.sum(dims=[0]) * lm.nd.array(h[0])).sum(),
                                             lambda h: np.broadcast_to(h[0], h.shape)),
    "a transposed view (copied)": (lambda y, h: (y.T * lm.nd.array(np.ascontiguousarray(h.T))).sum(), lambda h: h),
}


@pytest.mark.parametrize("head", list(HEADS))
@pytest.mark.parametrize("shape, axis", [((6, 5, 8), -1), ((6, 5, 8), 1), ((7, 16), -1)])
def test_layer_norm_backward_reads_broadcast_and_strided_heads_in_place(head, shape, axis):
    """The CPU backward reads a stride-0 head (sum's backward) without
    copying it: the gradients equal those from the same head made dense."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal(shape)
    w = rng.standard_normal(shape[axis % len(shape):])
    h = rng.standard_normal(shape)
    make_loss, dense = HEADS[head]

    def grads(backward):
        lx, lw = lm.nd.array(x), lm.nd.array(w)
        lx.attach_grad()
        lw.attach_grad()
        with lm.autograd.record():
            y = lm.nd.layer_norm(lx, lw, None, axis=axis)
            loss = backward(y)
        loss.backward()
        return lx.grad.asnumpy(), lw.grad.asnumpy()

    got = grads(lambda y: make_loss(y, h))
    want = grads(lambda y: (y * lm.nd.array(np.ascontiguousarray(dense(h)))).sum())
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-12, atol=1e-12)


def test_layer_norm_second_derivative_matches_torch():
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((3, 6)), rng.standard_normal(6)
    lx = lm.nd.array(x)
    lx.attach_grad()
    with lm.autograd.record():
        y = lm.nd.layer_norm(lx, lm.nd.array(w))
        (gx,) = lm.autograd.grad([(y * y * y).sum()], [lx], create_graph=True)
        z = (gx * gx).sum()
    z.backward()
    tx = torch.tensor(x, requires_grad=True)
    ty = F.layer_norm(tx, (6,), torch.tensor(w))
    (tgx,) = torch.autograd.grad((ty * ty * ty).sum(), tx, create_graph=True)
    (tgx * tgx).sum().backward()
    np.testing.assert_allclose(lx.grad.asnumpy(), tx.grad.numpy(), rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("shape, groups", [((4, 6, 5), 3), ((2, 8, 4, 4), 2), ((2, 4, 3, 3), 4)])
def test_group_norm_matches_torch(shape, groups):
    rng = np.random.default_rng(sum(shape))
    x, w, b = rng.standard_normal(shape), rng.standard_normal(shape[1]), rng.standard_normal(shape[1])
    _grads_vs_torch(lambda x_, w_, b_: lm.nd.group_norm(x_, w_, b_, num_groups=groups),
                    lambda x_, w_, b_: F.group_norm(x_, groups, w_, b_), [x, w, b],
                    dict(rtol=1e-10, atol=1e-10))


def test_instance_norm_matches_torch():
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((3, 4, 5, 6)), rng.standard_normal(4), rng.standard_normal(4)
    _grads_vs_torch(lambda x_, w_, b_: lm.nd.instance_norm(x_, w_, b_),
                    lambda x_, w_, b_: F.instance_norm(x_, weight=w_, bias=b_), [x, w, b],
                    dict(rtol=1e-10, atol=1e-10))


@pytest.mark.parametrize("call, match", [
    (lambda: lm.nd.layer_norm(lm.nd.zeros((4, 3)), lm.nd.ones((4,))),
     r"layer_norm: weight must have x's shape from axis -1 on, \(3,\)"),
    (lambda: lm.nd.group_norm(lm.nd.zeros((2, 6, 3)), num_groups=4),
     r"group_norm: the channels \(6\) of x .* must divide into num_groups \(4\)"),
])
def test_norm_errors_name_the_op_and_shapes(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_group_and_instance_norm_refuse_degenerate_groups():
    x = lm.nd.array(np.random.default_rng(3).standard_normal((2, 6, 4)).astype(np.float32))
    with pytest.raises(ValueError, match=r"^group_norm: the channels \(6\) of x .* must divide into num_groups \(0\)"):
        lm.nd.group_norm(x, None, None, num_groups=0)  # was instance_norm's internal sentinel
    with pytest.raises(ValueError, match=r"^instance_norm: weight must be \(channels,\) = \(6,\)"):
        lm.nd.instance_norm(x, lm.nd.ones((4,)), None)  # one op name, the caller's
    with pytest.raises(ValueError, match="instance_norm: .* has one spatial element per channel"):
        lm.nd.instance_norm(lm.nd.ones((2, 3, 1)), None, None)  # torch refuses it too
    assert lm.nd.instance_norm(lm.nd.ones((2, 3, 0)), None, None).shape == (2, 3, 0)
