"""Max and average pooling against PyTorch on identical inputs: outputs and
input gradients over 1-D/2-D/3-D windows, strides, padding, dilation,
ceil mode and count_include_pad; bad windows raise errors naming the op."""
import numpy as np
import pytest

import loom as lm

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _tuple(v, n):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n


def _loom_and_grad(fn, x, **attrs):
    lx = lm.nd.array(x)
    lx.attach_grad()
    with lm.autograd.record():
        y = fn(lx, **attrs)
    head = np.random.default_rng(1).standard_normal(y.shape).astype(x.dtype)
    y.backward(lm.nd.array(head))
    return y.asnumpy(), lx.grad.asnumpy(), head


def _torch_and_grad(fn, x, head, **attrs):
    tx = torch.tensor(x, requires_grad=True)
    y = fn(tx, **attrs)
    y.backward(torch.tensor(head))
    return y.detach().numpy(), tx.grad.numpy()


MAX_CASES = [  # (x shape, kernel, stride, padding, dilation, ceil_mode)
    ((2, 3, 9), 3, 2, 1, 1, False),
    ((2, 3, 10, 9), 2, None, 0, 1, False),
    ((2, 3, 11, 11), 3, 2, 1, 1, True),
    ((1, 4, 9, 10), (3, 2), (2, 3), (1, 0), (2, 1), True),
    ((2, 2, 5, 6, 7), 2, (1, 2, 2), (1, 0, 1), 1, False),
    ((4, 8, 56, 56), 3, 2, 1, 1, False),  # ResNet's stem pool
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", MAX_CASES, ids=lambda c: f"{c[0]}")
def test_max_pool_matches_torch(case, dtype):
    xs, k, s, p, d, ceil = case
    n = len(xs) - 2
    x = np.random.default_rng(sum(xs)).standard_normal(xs).astype(dtype)
    y, g, head = _loom_and_grad(lm.nd.max_pool, x, kernel=list(_tuple(k, n)),
                                stride=None if s is None else list(_tuple(s, n)), padding=list(_tuple(p, n)),
                                dilation=list(_tuple(d, n)), ceil_mode=ceil)
    tfn = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[n]
    ty, tg = _torch_and_grad(tfn, x, head, kernel_size=_tuple(k, n), stride=None if s is None else _tuple(s, n),
                             padding=_tuple(p, n), dilation=_tuple(d, n), ceil_mode=ceil)
    np.testing.assert_array_equal(y, ty)
    np.testing.assert_allclose(g, tg, rtol=1e-6, atol=1e-6)


AVG_CASES = [  # (x shape, kernel, stride, padding, ceil_mode, count_include_pad)
    ((2, 3, 9), 3, 2, 1, False, True),
    ((2, 3, 10, 9), 2, None, 0, False, True),
    ((2, 3, 11, 11), 3, 2, 1, True, True),
    ((2, 3, 11, 11), 3, 2, 1, True, False),
    ((1, 4, 9, 10), (3, 2), (2, 3), (1, 1), True, False),
    ((2, 2, 5, 6, 7), 2, (1, 2, 2), (1, 0, 1), False, True),
    # windows inside the input: pool_cpu.cc's row loops (forward), and where
    # they tile it, the one-share gradient (rows/columns past the last window: 0)
    ((2, 3, 10), 2, None, 0, False, True),
    ((2, 3, 12, 13), 3, 2, 0, False, True),
    ((2, 3, 12, 12), (3, 2), (3, 2), 0, False, False),
    ((2, 3, 11, 14), (2, 3), (2, 3), 0, False, True),
    ((3, 5, 17, 17), 2, 2, 0, True, True),  # ceil_mode's partial window: the generic loops
]


@pytest.mark.parametrize("case", AVG_CASES, ids=lambda c: f"{c[0]}-{c[4]}-{c[5]}")
def test_avg_pool_matches_torch(case):
    xs, k, s, p, ceil, include = case
    n = len(xs) - 2
    x = np.random.default_rng(sum(xs)).standard_normal(xs)
    y, g, head = _loom_and_grad(lm.nd.avg_pool, x, kernel=list(_tuple(k, n)),
                                stride=None if s is None else list(_tuple(s, n)), padding=list(_tuple(p, n)),
                                ceil_mode=ceil, count_include_pad=include)
    tfn = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}[n]
    ty, tg = _torch_and_grad(tfn, x, head, kernel_size=_tuple(k, n), stride=None if s is None else _tuple(s, n),
                             padding=_tuple(p, n), ceil_mode=ceil, count_include_pad=include)
    np.testing.assert_allclose(y, ty, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(g, tg, rtol=1e-12, atol=1e-12)


def test_max_pool_lets_nan_win_like_torch():
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    x[0, 0, 1, 0] = np.nan
    y = lm.nd.max_pool(lm.nd.array(x), kernel=2).asnumpy()
    np.testing.assert_array_equal(y, F.max_pool2d(torch.tensor(x), 2).numpy())


@pytest.mark.parametrize("shape", [(3, 4, 28, 28), (2, 3, 7, 9), (1, 2, 4, 600)])
def test_max_pool_2x2_fast_path_picks_torchs_element(shape):
    """2x2 stride 2 windows (the vectorised path): ties (small integers, so
    many windows hold their maximum twice), NaNs in some rows, odd sizes that
    drop a last row/column, rows wider than its 256-output chunk. The
    gradient lands on the element torch picks."""
    rng = np.random.default_rng(3)
    x = rng.integers(-3, 4, shape).astype(np.float32)
    x.reshape(-1)[rng.choice(x.size, 5, replace=False)] = np.nan
    x[0, 0, 0, :4] = [-0.0, 0.0, 0.0, -0.0]
    y, g, head = _loom_and_grad(lm.nd.max_pool, x, kernel=2)
    ty, tg = _torch_and_grad(F.max_pool2d, x, head, kernel_size=2)
    np.testing.assert_array_equal(y, ty)
    np.testing.assert_array_equal(np.signbit(y), np.signbit(ty))
    np.testing.assert_array_equal(g, tg)


@pytest.mark.parametrize("fn, xs, attrs, match", [
    ("max_pool", (2, 3, 4, 4), {"kernel": 5}, r"max_pool: the window .* is larger than the padded input"),
    ("max_pool", (2, 3, 8, 8), {"kernel": 2, "padding": 2}, r"padding must be between 0 and half the window"),
    ("avg_pool", (8, 8), {"kernel": 2}, r"avg_pool: x must be \(batch, channels, \*spatial\)"),
    ("avg_pool", (2, 3, 8, 8), {"kernel": [2, 2, 2]}, r"kernel needs one value or 2"),
    ("max_pool", (2, 3, 8, 8), {"kernel": 2, "stride": 0}, r"kernel, stride and dilation must be >= 1"),
])
def test_bad_windows_raise_errors_naming_the_op(fn, xs, attrs, match):
    with pytest.raises(ValueError, match=match):
        getattr(lm.nd, fn)(lm.nd.zeros(xs), **attrs)


@pytest.mark.parametrize("shape, size", [((2, 3, 10), 4), ((2, 3, 7, 9), (3, 4)), ((2, 3, 7, 9), 1),
                                         ((1, 2, 5, 6, 7), (2, 3, 4)), ((2, 2, 4, 4), (6, 5))])
def test_adaptive_avg_pool_matches_torch(shape, size):
    x = np.random.default_rng(len(shape)).standard_normal(shape)
    n = len(shape) - 2
    y, g, head = _loom_and_grad(lm.nd.adaptive_avg_pool, x, output_size=list(_tuple(size, n)))
    tfn = {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}[n]
    ty, tg = _torch_and_grad(tfn, x, head, output_size=_tuple(size, n))
    np.testing.assert_allclose(y, ty, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(g, tg, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape, size", [((2, 3, 10), 4), ((2, 3, 7, 9), (3, 4)), ((2, 3, 7, 9), 1),
                                         ((1, 2, 5, 6, 7), (2, 3, 4)), ((2, 2, 4, 4), (6, 5))])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_adaptive_max_pool_matches_torch(shape, size, dtype):
    """Overlapping windows (7 -> 3 shares rows), windows of one element
    (4 -> 6) and global pooling; the gradient of an element that is the
    maximum of two windows gets both heads."""
    x = np.random.default_rng(len(shape)).standard_normal(shape).astype(dtype)
    n = len(shape) - 2
    y, g, head = _loom_and_grad(lm.nd.adaptive_max_pool, x, output_size=list(_tuple(size, n)))
    tfn = {1: F.adaptive_max_pool1d, 2: F.adaptive_max_pool2d, 3: F.adaptive_max_pool3d}[n]
    ty, tg = _torch_and_grad(tfn, x, head, output_size=_tuple(size, n))
    np.testing.assert_array_equal(y, ty)
    np.testing.assert_allclose(g, tg, rtol=1e-6, atol=1e-6)


def test_adaptive_max_pool_picks_torchs_element_among_ties_and_nans():
    rng = np.random.default_rng(5)
    x = rng.integers(-2, 3, (2, 3, 9, 7)).astype(np.float32)
    x.reshape(-1)[rng.choice(x.size, 4, replace=False)] = np.nan
    y, g, head = _loom_and_grad(lm.nd.adaptive_max_pool, x, output_size=[4, 3])
    ty, tg = _torch_and_grad(F.adaptive_max_pool2d, x, head, output_size=(4, 3))
    np.testing.assert_array_equal(y, ty)
    np.testing.assert_array_equal(g, tg)
    with pytest.raises(ValueError, match=r"adaptive_max_pool: every spatial dim of x must be >= 1"):
        lm.nd.adaptive_max_pool(lm.nd.zeros((2, 3, 0, 4)), output_size=[2, 2])


@pytest.mark.parametrize("shape, size", [((2, 3, 5), 12), ((2, 3, 4, 5), (8, 10)), ((1, 2, 6, 6), (4, 9)),
                                         ((1, 2, 2, 3, 4), (4, 6, 3))])
def test_upsample_nearest_matches_torch(shape, size):
    x = np.random.default_rng(len(shape)).standard_normal(shape)
    n = len(shape) - 2
    y, g, head = _loom_and_grad(lm.nd.upsample_nearest, x, size=list(_tuple(size, n)))
    ty, tg = _torch_and_grad(lambda t, **k: F.interpolate(t, mode="nearest", **k), x, head, size=_tuple(size, n))
    np.testing.assert_array_equal(y, ty)
    np.testing.assert_allclose(g, tg, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("shape, size", [((2, 3, 4, 5), (8, 10)), ((1, 2, 7, 6), (3, 13)), ((1, 1, 1, 3), (4, 4))])
def test_upsample_bilinear_matches_torch(shape, size, align_corners):
    x = np.random.default_rng(sum(shape)).standard_normal(shape)
    y, g, head = _loom_and_grad(lm.nd.upsample_bilinear, x, size=list(size), align_corners=align_corners)
    ty, tg = _torch_and_grad(lambda t, **k: F.interpolate(t, mode="bilinear", **k), x, head, size=size,
                             align_corners=align_corners)
    np.testing.assert_allclose(y, ty, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(g, tg, rtol=1e-12, atol=1e-12)


def test_upsample_errors_name_the_op():
    with pytest.raises(ValueError, match=r"upsample_bilinear: x must have 2 spatial dims"):
        lm.nd.upsample_bilinear(lm.nd.zeros((1, 2, 3)), size=6)
    with pytest.raises(ValueError, match=r"upsample_nearest: size must be >= 1"):
        lm.nd.upsample_nearest(lm.nd.zeros((1, 2, 3, 3)), size=0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_avg_pool_fast_paths_keep_the_generic_summation_order_bit_for_bit(dtype):
    """pool_cpu.cc's row loops sum each window from zero, rows then columns,
    and divide by its size, as the generic loop does; the tiled gradient
    gives each input 0 + dy / size. NumPy in the same dtype does the same
    roundings, so the results must be equal, not close."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 3, 12, 13)).astype(dtype)
    y = lm.nd.avg_pool(lm.nd.array(x), kernel=[3, 3], stride=[2, 2]).asnumpy()
    want = np.zeros((2, 3, 5, 6), dtype)
    for kh in range(3):
        for kw in range(3):
            want = want + x[:, :, kh:kh + 9:2, kw:kw + 11:2]
    np.testing.assert_array_equal(y, want / np.dtype(dtype).type(9))
    # 2x2 at stride 2 (the four-load loop), and its one-share gradient
    lx = lm.nd.array(x)
    lx.attach_grad()
    with lm.autograd.record():
        y = lm.nd.avg_pool(lx, kernel=[2, 2])
    head = rng.standard_normal(y.shape).astype(dtype)
    y.backward(lm.nd.array(head))
    want = (((np.zeros((2, 3, 6, 6), dtype) + x[:, :, 0:12:2, 0:12:2]) + x[:, :, 0:12:2, 1:12:2])
            + x[:, :, 1:12:2, 0:12:2]) + x[:, :, 1:12:2, 1:12:2]
    np.testing.assert_array_equal(y.asnumpy(), want / np.dtype(dtype).type(4))
    share = np.zeros_like(head) + head / np.dtype(dtype).type(4)
    grad = np.zeros_like(x)
    grad[:, :, :12, :12] = np.repeat(np.repeat(share, 2, axis=2), 2, axis=3)
    np.testing.assert_array_equal(lx.grad.asnumpy(), grad)  # column 12 is past the last window: 0


@pytest.mark.parametrize("call, match", [
    (lambda: lm.nd.max_pool(lm.nd.ones((1, 1, 4)), [3], [1], [1], [2 ** 62]),
     r"max_pool: dilation 4611686018427387904 is out of range \(at most 2\^31 - 1"),
    (lambda: lm.nd.avg_pool(lm.nd.ones((1, 1, 4, 4)), [2 ** 40]), "avg_pool: kernel 1099511627776 is out of range"),
    (lambda: lm.nd.convolution(lm.nd.ones((1, 1, 4, 4)), lm.nd.ones((1, 1, 3, 3)), padding=2 ** 62),
     "convolution: padding 4611686018427387904 is out of range"),
])
def test_window_attributes_past_2_31_are_refused_by_name(call, match):
    """dilation x kernel at 2^62 wrapped to a negative output size, which
    surfaced as 'empty: negative dimension' naming neither op nor attribute."""
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("call, op", [
    (lambda: lm.nd.empty((2 ** 62,)), "empty"),
    (lambda: lm.nd.adaptive_avg_pool(lm.nd.ones((1, 4, 2, 2)), [2 ** 30, 2 ** 30]), "adaptive_avg_pool"),
    (lambda: lm.nd.upsample_nearest(lm.nd.ones((1, 4, 2, 2)), [2 ** 30, 2 ** 30]), "upsample_nearest"),
])
def test_outputs_past_the_64_bit_byte_range_are_refused(call, op):
    """2^62 float32 elements are 2^64 bytes: the count wrapped to 0, and the
    kernel then wrote past a 0-byte block (a crash, or a hang)."""
    with pytest.raises(ValueError, match=rf"^{op}: .*past the 64-bit byte range"):
        call()


def test_upsample_nearest_picks_torchs_source_pixels():
    """torch computes the source index in float32 (scale = float(in) / out);
    the exact integer floor differs on some size pairs, e.g. 2 -> 82."""
    F = torch.nn.functional
    rng = np.random.default_rng(11)
    pairs = [(2, 82), (2, 94), (3, 123), (6, 74)] + [tuple(p) for p in rng.integers(1, 128, (150, 2))]
    for size_in, size_out in pairs:
        x = np.arange(size_in, dtype=np.float32).reshape(1, 1, size_in)
        lx = lm.nd.array(x)
        lx.attach_grad()
        with lm.autograd.record():
            y = lm.nd.upsample_nearest(lx, [int(size_out)])
        head = rng.standard_normal(y.shape).astype(np.float32)
        y.backward(lm.nd.array(head))
        tx = torch.from_numpy(x).requires_grad_()
        ty = F.interpolate(tx, size=int(size_out), mode="nearest")
        ty.backward(torch.from_numpy(head))
        np.testing.assert_array_equal(y.asnumpy(), ty.detach().numpy(), err_msg=f"{size_in} -> {size_out}")
        np.testing.assert_allclose(lx.grad.asnumpy(), tx.grad.numpy(), rtol=1e-6, atol=1e-6)
