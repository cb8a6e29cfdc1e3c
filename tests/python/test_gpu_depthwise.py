"""Depthwise 2-D convolution's direct CUDA kernels
(runtime/kernels/cuda/depthwise_conv_cuda.cu) against the CPU in float64:
the forward, the data gradient (deconvolution) and the weight gradient,
over 3x3, 5x5 and 7x7 kernels with strides, padding, dilation and bias,
and the geometries that stay on cuDNN (a channel multiplier, 1x1, a
non-square kernel). Skipped without a GPU."""
import numpy as np
import pytest

import loom as lm

pytestmark = pytest.mark.skipif(lm.num_gpus() == 0, reason="needs a GPU (none visible to this process)")


def _conv_and_grads(ctx, dtype, x_np, w_np, b_np, g_np, **attrs):
    x, w = lm.nd.array(x_np.astype(dtype), ctx=ctx), lm.nd.array(w_np.astype(dtype), ctx=ctx)
    b = None if b_np is None else lm.nd.array(b_np.astype(dtype), ctx=ctx)
    for a in (x, w) + (() if b is None else (b,)):
        a.attach_grad()
    with lm.autograd.record():
        y = lm.nd.convolution(x, w, b, **attrs)
        loss = (y * lm.nd.array(g_np.astype(dtype), ctx=ctx)).sum()
    loss.backward()
    return [y.asnumpy(), x.grad.asnumpy(), w.grad.asnumpy()] + ([] if b is None else [b.grad.asnumpy()])


CASES = [
    # (x shape, kernel, stride, padding, dilation, bias, multiplier)
    ((4, 16, 28, 28), 3, 1, 1, 1, True, 1),
    ((3, 8, 17, 23), 3, 2, 1, 1, False, 1),
    ((2, 6, 19, 16), 5, 2, 2, 2, True, 1),
    ((2, 5, 15, 15), 7, 1, 3, 1, True, 1),
    ((2, 4, 9, 11), 3, 3, 0, 2, False, 1),
    ((1, 3, 30, 30), 3, 1, 1, 1, True, 1),   # one sample: one batch slice
    ((2, 4, 10, 10), 3, 1, 1, 1, True, 2),   # channel multiplier 2: cuDNN
    ((2, 4, 10, 10), 1, 1, 0, 1, True, 1),   # 1x1: cuDNN
]


@pytest.mark.parametrize("shape,k,stride,pad,dil,bias,mult", CASES)
def test_depthwise_gpu_matches_the_cpu(shape, k, stride, pad, dil, bias, mult):
    rng = np.random.default_rng(sum(shape) + k)
    c = shape[1]
    x_np = rng.standard_normal(shape)
    w_np = rng.standard_normal((c * mult, 1, k, k))
    b_np = rng.standard_normal(c * mult) if bias else None
    attrs = dict(stride=[stride], padding=[pad], dilation=[dil], groups=c)
    out_shape = lm.nd.convolution(lm.nd.array(x_np), lm.nd.array(w_np), **attrs).shape
    g_np = rng.standard_normal(out_shape)
    want = _conv_and_grads(lm.cpu(), "float64", x_np, w_np, b_np, g_np, **attrs)
    for dtype, rtol in (("float64", 1e-12), ("float32", 1e-4)):
        got = _conv_and_grads(lm.gpu(0), dtype, x_np, w_np, b_np, g_np, **attrs)
        for name, g, w in zip(("y", "dx", "dw", "db"), got, want):
            np.testing.assert_allclose(g, w, rtol=rtol, atol=rtol * np.abs(w).max(),
                                       err_msg=f"{name} {dtype} for {shape} k{k} s{stride} p{pad} d{dil}")


def test_depthwise_deconvolution_with_bias_and_output_padding_matches_the_cpu():
    rng = np.random.default_rng(7)
    x_np = rng.standard_normal((2, 6, 9, 8))
    w_np = rng.standard_normal((6, 1, 3, 3))
    b_np = rng.standard_normal(6)
    attrs = dict(stride=[2], padding=[1], output_padding=[1], dilation=[1], groups=6)
    want = lm.nd.deconvolution(lm.nd.array(x_np), lm.nd.array(w_np), lm.nd.array(b_np), **attrs).asnumpy()
    got = lm.nd.deconvolution(*(lm.nd.array(a, ctx=lm.gpu(0)) for a in (x_np, w_np, b_np)), **attrs).asnumpy()
    assert got.shape == want.shape == (2, 6, 18, 16)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_depthwise_weight_gradient_of_an_empty_batch_is_zero():
    x = lm.nd.zeros((0, 4, 8, 8), ctx=lm.gpu(0))
    g = lm.nd.zeros((0, 4, 8, 8), ctx=lm.gpu(0))
    dw = lm.nd.convolution_weight_grad(x, g, kernel=[3, 3], padding=[1], groups=4)
    assert dw.shape == (4, 1, 3, 3)
    np.testing.assert_array_equal(dw.asnumpy(), np.zeros((4, 1, 3, 3)))
