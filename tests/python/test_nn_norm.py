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
