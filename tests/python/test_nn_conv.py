"""Convolution and transposed convolution against PyTorch, given identical
inputs and weights: outputs and the gradients of x, weight and bias over
1-D/2-D/3-D, strides, padding, dilation, groups (depthwise included);
shape errors name the op and the shapes."""
import numpy as np
import pytest

import loom as lm

torch = pytest.importorskip("torch")
F = torch.nn.functional

# (x shape, weight shape, stride, padding, dilation, groups)
CONV_CASES = [
    ((2, 3, 11), (4, 3, 3), 1, 0, 1, 1),
    ((2, 4, 12), (6, 2, 5), 2, 2, 1, 2),
    ((3, 3, 9, 8), (5, 3, 3, 3), 1, 1, 1, 1),
    ((2, 8, 10, 9), (8, 1, 3, 3), 2, 1, 1, 8),        # depthwise
    ((3, 16, 28, 28), (16, 1, 3, 3), 1, 1, 1, 16),    # MobileNet's 3x3, stride 1
    ((2, 5, 13, 11), (5, 1, 5, 3), 1, (2, 0), (1, 2), 5),  # depthwise, uneven kernel, dilation
    ((2, 6, 17), (6, 1, 4), 3, 2, 1, 6),              # depthwise 1-D, stride 3
    # stride 1 depthwise: the direct kernels (conv_depthwise.cc), each shape
    # past their register blocks: 1-D long rows, no padding, 3-D dilated with
    # more than eight taps, a kernel as large as the padded input
    ((2, 3, 70), (3, 1, 5), 1, 2, 1, 3),
    ((1, 4, 9, 6), (4, 1, 2, 2), 1, 0, 1, 4),
    ((2, 3, 4, 7, 6), (3, 1, 2, 3, 3), 1, (1, 1, 0), (2, 1, 2), 3),
    ((1, 2, 3, 3), (2, 1, 5, 5), 1, 1, 1, 2),
    ((2, 4, 9, 9), (6, 2, 3, 2), (2, 1), (1, 0), (2, 1), 2),
    ((1, 16, 7, 7), (8, 16, 1, 1), 1, 0, 1, 1),       # 1x1: no im2col
    ((2, 6, 8, 8), (4, 6, 1, 1), 2, 0, 1, 1),         # strided 1x1
    ((2, 2, 5, 6, 4), (3, 2, 3, 3, 2), (1, 2, 1), 1, 1, 1),
    ((1, 3, 32, 32), (8, 3, 7, 7), 2, 3, 1, 1),       # a ResNet stem, small
]


def _pair(v, n):
    return tuple(v) if isinstance(v, tuple) else (v,) * n


def _run_loom(fn, x, w, b, **attrs):
    xs = [lm.nd.array(a) for a in (x, w, b)]
    for a in xs:
        a.attach_grad()
    with lm.autograd.record():
        y = fn(*xs, **attrs)
    head = np.random.default_rng(3).standard_normal(y.shape).astype(x.dtype)
    y.backward(lm.nd.array(head))
    return y.asnumpy(), [a.grad.asnumpy() for a in xs], head


def _run_torch(fn, x, w, b, head, **attrs):
    ts = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    y = fn(*ts, **attrs)
    y.backward(torch.tensor(head))
    return y.detach().numpy(), [t.grad.numpy() for t in ts]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"{c[0]}-{c[1]}")
def test_convolution_matches_torch(case, dtype):
    xs, ws, stride, padding, dilation, groups = case
    n = len(xs) - 2
    rng = np.random.default_rng(sum(xs))
    x, w = rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    y, grads, head = _run_loom(lm.nd.convolution, x, w, b, stride=list(_pair(stride, n)),
                               padding=list(_pair(padding, n)), dilation=list(_pair(dilation, n)), groups=groups)
    tfn = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[n]
    ty, tgrads = _run_torch(tfn, x, w, b, head, stride=_pair(stride, n), padding=_pair(padding, n),
                            dilation=_pair(dilation, n), groups=groups)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == "float32" else dict(rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(y, ty, **tol)
    for name, g, tg in zip(("x", "weight", "bias"), grads, tgrads):
        np.testing.assert_allclose(g, tg, **tol, err_msg=f"gradient of {name}")


# (x shape, weight shape, stride, padding, output_padding, dilation, groups)
DECONV_CASES = [
    ((2, 3, 7), (3, 4, 3), 1, 0, 0, 1, 1),
    ((2, 4, 6), (4, 3, 4), 2, 1, 1, 1, 2),
    ((2, 4, 5, 6), (4, 2, 3, 3), 2, 1, 1, 1, 1),
    ((1, 6, 4, 5), (6, 1, 3, 3), (2, 3), (1, 0), (0, 2), (1, 2), 6),
    ((2, 5, 6, 7), (5, 1, 3, 2), 1, (1, 0), 0, (1, 2), 5),   # stride-1 depthwise: the direct kernel
    ((2, 3, 3, 4, 2), (3, 2, 2, 3, 2), 2, 0, 0, 1, 1),
]


@pytest.mark.parametrize("case", DECONV_CASES, ids=lambda c: f"{c[0]}-{c[1]}")
def test_deconvolution_matches_torch_conv_transpose(case):
    xs, ws, stride, padding, output_padding, dilation, groups = case
    n = len(xs) - 2
    rng = np.random.default_rng(sum(ws))
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    b = rng.standard_normal(ws[1] * groups)
    attrs = dict(stride=_pair(stride, n), padding=_pair(padding, n), output_padding=_pair(output_padding, n),
                 dilation=_pair(dilation, n), groups=groups)
    y, grads, head = _run_loom(lm.nd.deconvolution, x, w, b, **{k: (list(v) if isinstance(v, tuple) else v)
                                                                 for k, v in attrs.items()})
    tfn = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[n]
    ty, tgrads = _run_torch(tfn, x, w, b, head, **attrs)
    np.testing.assert_allclose(y, ty, rtol=1e-10, atol=1e-10)
    for name, g, tg in zip(("x", "weight", "bias"), grads, tgrads):
        np.testing.assert_allclose(g, tg, rtol=1e-10, atol=1e-10, err_msg=f"gradient of {name}")


def test_second_derivative_of_convolution_matches_torch():
    """d/dx of <d conv/dw, v>: the backward's own ops are differentiable."""
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((4, 3, 3, 3))
    lx, lw = lm.nd.array(x), lm.nd.array(w)
    lx.attach_grad()
    lw.attach_grad()
    with lm.autograd.record():
        y = lm.nd.convolution(lx, lw, stride=2, padding=1)
        (gw,) = lm.autograd.grad([(y * y).sum()], [lw], create_graph=True)
        z = (gw * gw).sum()
    z.backward()
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    ty = F.conv2d(tx, tw, stride=2, padding=1)
    (tgw,) = torch.autograd.grad((ty * ty).sum(), tw, create_graph=True)
    (tgw * tgw).sum().backward()
    np.testing.assert_allclose(lx.grad.asnumpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(lw.grad.asnumpy(), tw.grad.numpy(), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("xs, ws, attrs, match", [
    ((2, 3, 8, 8), (4, 2, 3, 3), {}, r"convolution: x \(2, 3, 8, 8\) has 3 channels, but weight \(4, 2, 3, 3\)"),
    ((2, 3, 4, 4), (4, 3, 7, 7), {}, r"larger than the padded input"),
    ((2, 3, 8, 8), (4, 3, 3, 3), {"stride": [1, 1, 1]}, r"stride needs one value or 2"),
    ((2, 3, 8, 8), (4, 3, 3, 3), {"stride": 0}, r"stride and dilation must be >= 1"),
    ((2, 4, 8, 8), (6, 2, 3, 3), {"groups": 4}, r"must divide by groups"),
    ((3, 8, 8), (4, 3, 3, 3), {}, r"weight must have x's rank"),
    ((8,), (4,), {}, r"x must be \(batch, channels, \*spatial\)"),
])
def test_bad_shapes_raise_errors_naming_the_op(xs, ws, attrs, match):
    with pytest.raises(ValueError, match=match):
        lm.nd.convolution(lm.nd.zeros(xs), lm.nd.zeros(ws), **attrs)


def test_bad_bias_and_output_padding_are_rejected():
    with pytest.raises(ValueError, match=r"convolution: bias must be \(out_channels,\) = \(4,\)"):
        lm.nd.convolution(lm.nd.zeros((1, 3, 5, 5)), lm.nd.zeros((4, 3, 3, 3)), lm.nd.zeros((3,)))
    with pytest.raises(ValueError, match=r"deconvolution: output_padding must be in \[0, stride\)"):
        lm.nd.deconvolution(lm.nd.zeros((1, 3, 5, 5)), lm.nd.zeros((3, 2, 3, 3)), output_padding=1)
    with pytest.raises(ValueError, match=r"convolution_weight_grad: grad_out must be convolution's output shape"):
        lm.nd.convolution_weight_grad(lm.nd.zeros((1, 3, 5, 5)), lm.nd.zeros((1, 2, 4, 4)), kernel=3)


def test_im2col_backend_matches_torch_too():
    """float32 convolutions run on oneDNN where loom has it; the same torch
    comparisons pass with loom's own im2col + GEMM forced (a child
    process: the backend is read once)."""
    import os
    import subprocess
    import sys
    env = dict(os.environ, LOOM_CONV_BACKEND="im2col")
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__, "-k",
                          "float32 or deconvolution or second_derivative", "--deselect",
                          f"{__file__}::test_im2col_backend_matches_torch_too"],
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]


WINOGRAD_SHAPE = ((8, 32, 24, 24), (48, 32, 3, 3))  # 3x3 stride 1, 32+ channels, 8 * 576 output pixels


def _conv_directions(x, w, dy):
    """Forward, data gradient and weight gradient of a 3x3 stride-1 padding-1
    convolution, each as its own op."""
    lx, lw, ldy = lm.nd.array(x), lm.nd.array(w), lm.nd.array(dy)
    return [lm.nd.convolution(lx, lw, stride=1, padding=1).asnumpy(),
            lm.nd.deconvolution(ldy, lw, stride=1, padding=1).asnumpy(),
            lm.nd.convolution_weight_grad(lx, ldy, kernel=[3, 3], stride=1, padding=1).asnumpy()]


def test_winograd_convolutions_stay_within_their_stated_error():
    """oneDNN's Winograd F(4x4, 3x3) runs the large 3x3 stride-1 float32
    convolutions on AVX-512 (conv_dnnl.cc, winograd_is_faster): each direction
    within 2e-5 of the largest value of a float64 reference."""
    impl = lm._C.conv_cpu_implementation(*WINOGRAD_SHAPE, 1, 1, "forward")
    if "wino" not in impl:
        pytest.skip(f"oneDNN runs a non-Winograd kernel here ({impl or 'none: im2col'})")
    for direction in ("data", "weight"):
        assert "wino" in lm._C.conv_cpu_implementation(*WINOGRAD_SHAPE, 1, 1, direction)
    # below the thresholds: the direct kernels
    assert "wino" not in lm._C.conv_cpu_implementation((1, 32, 24, 24), (48, 32, 3, 3), 1, 1, "forward")
    assert "wino" not in lm._C.conv_cpu_implementation((8, 16, 24, 24), (48, 16, 3, 3), 1, 1, "forward")
    assert "wino" not in lm._C.conv_cpu_implementation(*WINOGRAD_SHAPE, 2, 1, "forward")
    rng = np.random.default_rng(5)
    x = rng.standard_normal(WINOGRAD_SHAPE[0])
    w = rng.standard_normal(WINOGRAD_SHAPE[1])
    dy = rng.standard_normal((8, 48, 24, 24))
    want = _conv_directions(x, w, dy)  # float64: im2col + GEMM
    got = _conv_directions(x.astype(np.float32), w.astype(np.float32), dy.astype(np.float32))
    for name, g, r in zip(("forward", "data", "weight"), got, want):
        err = np.abs(g - r).max() / np.abs(r).max()
        assert err < 2e-5, (name, err)
    tx, tw = torch.tensor(x, dtype=torch.float32), torch.tensor(w, dtype=torch.float32)
    np.testing.assert_allclose(got[0], F.conv2d(tx, tw, padding=1).numpy(), atol=2e-5 * np.abs(want[0]).max())


def test_winograd_can_be_turned_off():
    import os
    import subprocess
    import sys
    code = ("import loom as lm; print(lm._C.conv_cpu_implementation(" + repr(WINOGRAD_SHAPE[0]) + ", "
            + repr(WINOGRAD_SHAPE[1]) + ", 1, 1, 'forward'))")
    run = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, LOOM_CONV_WINOGRAD="0"),
                         capture_output=True, text=True, timeout=120, check=True)
    assert "wino" not in run.stdout
    assert run.stdout.strip() == "" or "jit" in run.stdout or "gemm" in run.stdout or "ref" in run.stdout
