"""References NumPy lacks, for the `tests.ref` expressions in opdefs/ (as
`refs.<name>`). Computed in float64 with the standard library, so they are
independent of loom's kernels."""
import builtins
import math

import numpy as np

_erf = np.vectorize(math.erf, otypes=[np.float64])


def erf(x):
    return _erf(np.asarray(x, dtype=np.float64))


def axis(dims):
    """A reduction's `dims` (None, an int or a list) as NumPy's `axis`."""
    if dims is None or isinstance(dims, int):
        return dims
    return tuple(dims)


def flatten(x):
    """MXNet's flatten: (batch, everything else), for empty arrays too
    (NumPy's reshape cannot infer a -1 beside a 0-size dim)."""
    return x.reshape(x.shape[0], int(np.prod(x.shape[1:])))


def cast(x, dtype):
    """loom's conversion: NumPy's, but a float to an integer dtype saturates
    at the dtype's limits and takes NaN to 0 (NumPy leaves those undefined)."""
    x, dtype = np.asarray(x), np.dtype(dtype)
    if dtype.kind in "iu" and x.dtype.kind == "f":
        info = np.iinfo(dtype)
        x = np.nan_to_num(np.trunc(x.astype(np.float64)), nan=0.0, posinf=np.inf, neginf=-np.inf)
        high, low = x >= float(info.max), x <= float(info.min)
        out = np.where(high | low, 0.0, x).astype(dtype)
        out[high], out[low] = info.max, info.min
        return out
    with np.errstate(over="ignore"):  # float16's overflow to inf is the defined result
        return x.astype(dtype)


def shuffle_seeded(x, seed, offset):
    """x's rows in the order that sorts lm.random.uniform's float64 draws at
    (seed, offset), ties by index (the Philox stream is checked on its own
    in test_random.py; this checks the sort and the gather)."""
    import loom as lm
    x = np.asarray(x)
    state = lm.random.get_state()
    try:
        lm.random.set_state((seed, offset))
        keys = lm.random.uniform(0.0, 1.0, (x.shape[0],), dtype="float64").asnumpy() if len(x) else np.zeros(0)
    finally:
        lm.random.set_state(state)
    return x[np.argsort(keys, kind="stable")]


def mx_slice(x, begin, end=None, step=None):
    """MXNet's slice through Python's slicing: begin/end/step per leading dim."""
    x = np.asarray(x)
    index = tuple(builtins.slice(b, None if end is None else end[k], None if step is None else step[k])
                  for k, b in enumerate(begin))
    return x[index]


def mx_split(x, num_outputs, axis=1, squeeze_axis=False):
    """MXNet's split through NumPy's: equal parts along axis, the axis
    dropped from each when squeeze_axis."""
    parts = np.split(np.asarray(x), num_outputs, axis=axis)
    return [np.squeeze(p, axis=axis) if squeeze_axis else p for p in parts]


def split_with_sizes(x, sizes, dim=0):
    """Consecutive parts of the given sizes along dim (torch.split with a list)."""
    return np.split(np.asarray(x), np.cumsum(sizes)[:-1], axis=dim)


def log_softmax(x, dim):
    """log(softmax(x)) along dim, in float64 with the max subtracted first."""
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return x.copy()
    shifted = x - np.max(x, axis=dim, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=dim, keepdims=True))


def index_add(x, indices, src, dim):
    """PyTorch's index_add with NumPy: np.add.at accumulates repeated indices."""
    out = np.array(x, copy=True)
    src = np.asarray(src)
    if np.ndim(indices) == 0:  # one slice, given without the dim
        src = np.expand_dims(src, dim)
    idx = np.asarray(indices).reshape(-1)
    moved = np.moveaxis(out, dim, 0)
    np.add.at(moved, idx, np.moveaxis(src, dim, 0))
    return out


def one_hot(indices, depth, on_value, off_value):
    idx = np.asarray(indices)
    out = np.full(idx.shape + (depth,), off_value, dtype=np.float32)
    np.put_along_axis(out, idx[..., None], np.float32(on_value), axis=-1)
    return out


def pad(x, pad_width, value):
    """MXNet's flat (before, after) list as NumPy's pairs."""
    pairs = [(pad_width[2 * i], pad_width[2 * i + 1]) for i in range(np.ndim(x))]
    return np.pad(np.asarray(x), pairs, mode="constant", constant_values=value)


def scatter_add(x, index, src, dim):
    """PyTorch's scatter_add with NumPy (np.add.at on the full index tuple)."""
    out = np.array(x, copy=True)
    index = np.asarray(index)
    grids = list(np.indices(index.shape, sparse=False))
    grids[dim] = index
    np.add.at(out, tuple(grids), np.asarray(src)[tuple(np.indices(index.shape))])
    return out


def gather(x, index, dim):
    """PyTorch's gather with NumPy: index may be smaller than x in the other dims."""
    index = np.asarray(index)
    grids = list(np.indices(index.shape, sparse=False))
    grids[dim] = index
    return np.asarray(x)[tuple(grids)]


def topk(x, k, dim, largest):
    """(values, indices) of the k largest (smallest) along dim, ties to the
    lower index: a stable sort of float64 keys (negated for largest)."""
    x = np.asarray(x)
    keys = x.astype(np.float64)
    order = np.argsort(-keys if largest else keys, axis=dim, kind="stable")
    idx = np.take(order, np.arange(k), axis=dim)
    return np.take_along_axis(x, idx, axis=dim), idx.astype(np.int64)


def softmax_cross_entropy(logits, label, dim, ignore_index=-100, label_smoothing=0.0):
    """(1 - e) * -log_softmax[label] + e * mean(-log_softmax) along dim, in
    float64; 0 where label == ignore_index."""
    lsm = log_softmax(logits, dim)
    label = np.asarray(label, dtype=np.int64)
    valid = label != ignore_index
    idx = np.expand_dims(np.where(valid, label, 0), dim)
    picked = -np.squeeze(np.take_along_axis(lsm, idx, axis=dim), axis=dim)
    smooth = -np.mean(lsm, axis=dim) if np.shape(lsm)[dim] else 0.0
    return np.where(valid, (1 - label_smoothing) * picked + label_smoothing * smooth, 0.0)


# ---------------------------------------------------------------- convolution
# Direct sums over kernel taps (one strided slice of the padded input per
# tap), independent of loom's im2col + GEMM kernels.

def _per_dim(values, n, fill):
    """An attribute list as one value per spatial dim (one value: all dims)."""
    values = [fill] if values is None else list(np.atleast_1d(values))
    return values * n if len(values) == 1 else values


def _tap_slices(tap, dilation, stride, count):
    return tuple(slice(t * d, t * d + s * (c - 1) + 1, s) for t, d, s, c in zip(tap, dilation, stride, count))


def convolution(x, w, b, stride, padding, dilation, groups):
    x, w = np.asarray(x), np.asarray(w)
    n = x.ndim - 2
    s, p, d = _per_dim(stride, n, 1), _per_dim(padding, n, 0), _per_dim(dilation, n, 1)
    xp = np.pad(x, [(0, 0), (0, 0)] + [(q, q) for q in p])
    k = w.shape[2:]
    out_sp = [(xp.shape[2 + i] - d[i] * (k[i] - 1) - 1) // s[i] + 1 for i in range(n)]
    cg, og = x.shape[1] // groups, w.shape[0] // groups
    out = np.zeros((x.shape[0], w.shape[0], *out_sp), dtype=np.float64)
    for tap in np.ndindex(*k):
        patch = xp[(slice(None), slice(None)) + _tap_slices(tap, d, s, out_sp)]
        for g in range(groups):
            out[:, g * og:(g + 1) * og] += np.einsum("nc...,oc->no...", patch[:, g * cg:(g + 1) * cg],
                                                     w[(slice(g * og, (g + 1) * og), slice(None)) + tap])
    if b is not None:
        out += np.asarray(b).reshape(1, -1, *[1] * n)
    return out.astype(np.result_type(x, w))


def deconvolution(x, w, b, stride, padding, output_padding, dilation, groups):
    """The transposed convolution: every input element scatters weight *
    value into the output, which is then cropped by padding."""
    x, w = np.asarray(x), np.asarray(w)
    n = x.ndim - 2
    s, p, d = _per_dim(stride, n, 1), _per_dim(padding, n, 0), _per_dim(dilation, n, 1)
    op = _per_dim(output_padding, n, 0)
    k, in_sp = w.shape[2:], x.shape[2:]
    cg, og = x.shape[1] // groups, w.shape[1]
    full = [(in_sp[i] - 1) * s[i] + d[i] * (k[i] - 1) + 1 + op[i] for i in range(n)]
    out = np.zeros((x.shape[0], og * groups, *full), dtype=np.float64)
    for tap in np.ndindex(*k):
        where = (slice(None), slice(None)) + _tap_slices(tap, d, s, in_sp)
        for g in range(groups):
            part = np.einsum("nc...,co->no...", x[:, g * cg:(g + 1) * cg],
                             w[(slice(g * cg, (g + 1) * cg), slice(None)) + tap])
            out[:, g * og:(g + 1) * og][where] += part
    out = out[(slice(None), slice(None)) + tuple(slice(p[i], full[i] - p[i]) for i in range(n))]
    if b is not None:
        out += np.asarray(b).reshape(1, -1, *[1] * n)
    return out.astype(np.result_type(x, w))


def convolution_weight_grad(x, grad_out, kernel, stride, padding, dilation, groups):
    x, g_out = np.asarray(x), np.asarray(grad_out)
    n = x.ndim - 2
    s, p, d = _per_dim(stride, n, 1), _per_dim(padding, n, 0), _per_dim(dilation, n, 1)
    k = _per_dim(kernel, n, 1)
    xp = np.pad(x, [(0, 0), (0, 0)] + [(q, q) for q in p])
    cg, og = x.shape[1] // groups, g_out.shape[1] // groups
    out = np.zeros((g_out.shape[1], cg, *k), dtype=np.float64)
    for tap in np.ndindex(*k):
        patch = xp[(slice(None), slice(None)) + _tap_slices(tap, d, s, g_out.shape[2:])]
        for g in range(groups):
            gg = g_out[:, g * og:(g + 1) * og].reshape(g_out.shape[0], og, -1)
            pp = patch[:, g * cg:(g + 1) * cg].reshape(x.shape[0], cg, -1)
            out[(slice(g * og, (g + 1) * og), slice(None)) + tap] = np.einsum("nol,ncl->oc", gg, pp)
    return out.astype(np.result_type(x, g_out))


# -------------------------------------------------------------------- pooling
# Loops over output positions and their windows, in float64.

def _pool_windows(in_sp, kernel, stride, padding, dilation, ceil_mode):
    """Per output position, the input indices of its window (inside the
    input) and its divisor lengths: PyTorch's output-size rules."""
    n = len(in_sp)
    k = _per_dim(kernel, n, 1)
    s = _per_dim(stride, n, 1) if stride is not None else k
    p, d = _per_dim(padding, n, 0), _per_dim(dilation, n, 1)
    outs = []
    for i in range(n):
        span = d[i] * (k[i] - 1) + 1
        num = in_sp[i] + 2 * p[i] - span
        o = (-(-num // s[i]) if ceil_mode else num // s[i]) + 1
        if ceil_mode and (o - 1) * s[i] >= in_sp[i] + p[i]:
            o -= 1
        outs.append(o)
    return outs, k, s, p, d


def max_pool(x, kernel, stride, padding, dilation, ceil_mode):
    x = np.asarray(x)
    outs, k, s, p, d = _pool_windows(x.shape[2:], kernel, stride, padding, dilation, ceil_mode)
    out = np.empty(x.shape[:2] + tuple(outs), dtype=x.dtype)
    for pos in np.ndindex(*outs):
        taps = [[o * s[i] - p[i] + t * d[i] for t in range(k[i]) if 0 <= o * s[i] - p[i] + t * d[i] < x.shape[2 + i]]
                for i, o in enumerate(pos)]
        window = x[(slice(None), slice(None)) + np.ix_(*taps)]
        out[(slice(None), slice(None)) + pos] = window.max(axis=tuple(range(2, x.ndim)), initial=-np.inf)
    return out


def avg_pool(x, kernel, stride, padding, ceil_mode, count_include_pad):
    x = np.asarray(x)
    outs, k, s, p, _ = _pool_windows(x.shape[2:], kernel, stride, padding, 1, ceil_mode)
    out = np.empty(x.shape[:2] + tuple(outs), dtype=np.float64)
    for pos in np.ndindex(*outs):
        lo = [o * s[i] - p[i] for i, o in enumerate(pos)]
        padded = [min(lo[i] + k[i], x.shape[2 + i] + p[i]) - lo[i] for i in range(len(pos))]
        sl = tuple(slice(max(lo[i], 0), min(lo[i] + k[i], x.shape[2 + i])) for i in range(len(pos)))
        window = x[(slice(None), slice(None)) + sl].astype(np.float64)
        count = int(np.prod(padded)) if count_include_pad else int(np.prod(window.shape[2:]))
        out[(slice(None), slice(None)) + pos] = window.sum(axis=tuple(range(2, x.ndim))) / count
    return out.astype(x.dtype)


def avg_pool_grad(grad_out, input_size, kernel, stride, padding, ceil_mode, count_include_pad):
    """avg_pool's adjoint: each output's gradient spread over its window."""
    g = np.asarray(grad_out)
    in_sp = _per_dim(input_size, g.ndim - 2, 1)
    outs, k, s, p, _ = _pool_windows(in_sp, kernel, stride, padding, 1, ceil_mode)
    dx = np.zeros(g.shape[:2] + tuple(in_sp), dtype=np.float64)
    for pos in np.ndindex(*outs):
        lo = [o * s[i] - p[i] for i, o in enumerate(pos)]
        padded = [min(lo[i] + k[i], in_sp[i] + p[i]) - lo[i] for i in range(len(pos))]
        sl = tuple(slice(max(lo[i], 0), min(lo[i] + k[i], in_sp[i])) for i in range(len(pos)))
        inside = int(np.prod([b.stop - b.start for b in sl]))
        count = int(np.prod(padded)) if count_include_pad else inside
        dx[(slice(None), slice(None)) + sl] += (g[(slice(None), slice(None)) + pos] / count)[
            (...,) + (None,) * len(pos)]
    return dx.astype(g.dtype)


def dropout(x, p, seed, offset):
    """x * mask / (1 - p) with the keep decisions of lm.random.bernoulli(1 - p)
    at the same stream position (the Philox stream is checked on its own in
    test_random.py; this checks the masking and the scaling)."""
    import loom as lm
    x = np.asarray(x)
    state = lm.random.get_state()
    try:
        lm.random.set_state((seed, offset))
        keep = lm.random.bernoulli(1 - p, shape=x.shape if x.ndim else (1,), dtype="float64").asnumpy()
    finally:
        lm.random.set_state(state)
    keep = keep.reshape(x.shape)
    return (x.astype(np.float64) * keep * (1.0 / (1 - p))).astype(x.dtype)


def batch_norm(x, weight, bias, running_mean, running_var, training, momentum, eps, relu=False):
    """The normalised x in float64 (the running statistics' update is
    checked against PyTorch in test_nn_norm.py)."""
    x64 = np.asarray(x, dtype=np.float64)
    dims = (0,) + tuple(range(2, x64.ndim))
    shape = [1, x64.shape[1]] + [1] * (x64.ndim - 2)
    if training:
        mean, var = x64.mean(axis=dims), x64.var(axis=dims)
    else:
        mean, var = np.asarray(running_mean, np.float64), np.asarray(running_var, np.float64)
    y = (x64 - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
    if weight is not None:
        y = y * np.asarray(weight, np.float64).reshape(shape)
    if bias is not None:
        y = y + np.asarray(bias, np.float64).reshape(shape)
    if relu:
        y = np.maximum(y, 0.0)
    return y.astype(np.asarray(x).dtype)


def layer_norm(x, weight, bias, axis, eps):
    x64 = np.asarray(x, dtype=np.float64)
    axis = axis % x64.ndim if x64.ndim else 0
    dims = tuple(range(axis, x64.ndim))
    mean = x64.mean(axis=dims, keepdims=True) if x64.size else np.zeros_like(x64)
    var = x64.var(axis=dims, keepdims=True) if x64.size else np.ones_like(x64)
    y = (x64 - mean) / np.sqrt(var + eps)
    if weight is not None:
        y = y * np.asarray(weight, np.float64)
    if bias is not None:
        y = y + np.asarray(bias, np.float64)
    return y.astype(np.asarray(x).dtype)


def group_norm(x, num_groups, weight, bias, eps):
    x64 = np.asarray(x, dtype=np.float64)
    n, c = x64.shape[:2]
    grouped = x64.reshape(n, num_groups, -1)
    mean, var = grouped.mean(axis=2, keepdims=True), grouped.var(axis=2, keepdims=True)
    y = ((grouped - mean) / np.sqrt(var + eps)).reshape(x64.shape)
    shape = [1, c] + [1] * (x64.ndim - 2)
    if weight is not None:
        y = y * np.asarray(weight, np.float64).reshape(shape)
    if bias is not None:
        y = y + np.asarray(bias, np.float64).reshape(shape)
    return y.astype(np.asarray(x).dtype)


def attention(q, k, v, valid_length, causal, scale):
    """softmax(q k^T * scale + mask) v in float64, the mask built per sequence."""
    q64, k64, v64 = (np.asarray(a, np.float64) for a in (q, k, v))
    scale = scale or 1.0 / np.sqrt(q64.shape[-1])
    s = np.matmul(q64, np.swapaxes(k64, -1, -2)) * scale
    lq, lk = s.shape[-2:]
    keep = np.ones(s.shape, dtype=bool)
    if causal:
        keep &= np.tril(np.ones((lq, lk), dtype=bool))
    if valid_length is not None:
        vl = np.asarray(valid_length).reshape(np.asarray(valid_length).shape + (1,) * (s.ndim - np.ndim(valid_length)))
        keep &= np.arange(lk) < vl
    s = np.where(keep, s, -np.inf)
    s = s - s.max(axis=-1, keepdims=True)
    p = np.exp(s)
    p /= p.sum(axis=-1, keepdims=True)
    return np.matmul(p, v64).astype(np.asarray(q).dtype)


def lstm_layer(x, w_ih, w_hh, b_ih, b_hh, h0, c0, reverse):
    """(y, h_n, c_n) of one LSTM layer, step by step in float64."""
    x64 = np.asarray(x, np.float64)
    steps, n = x64.shape[:2]
    hidden = np.asarray(w_hh).shape[1]
    h = np.zeros((n, hidden)) if h0 is None else np.asarray(h0, np.float64)
    c = np.zeros((n, hidden)) if c0 is None else np.asarray(c0, np.float64)
    bias = sum(np.asarray(b, np.float64) for b in (b_ih, b_hh) if b is not None)
    sig = lambda z: 1 / (1 + np.exp(-z))
    y = np.zeros((steps, n, hidden))
    for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
        pre = x64[t] @ np.asarray(w_ih, np.float64).T + h @ np.asarray(w_hh, np.float64).T + bias
        i, f, g, o = np.split(pre, 4, axis=1)
        c = sig(f) * c + sig(i) * np.tanh(g)
        h = sig(o) * np.tanh(c)
        y[t] = h
    dtype = np.asarray(x).dtype
    return y.astype(dtype), h.astype(dtype), c.astype(dtype)


def gru_layer(x, w_ih, w_hh, b_ih, b_hh, h0, reverse):
    """(y, h_n) of one GRU layer, step by step in float64 (PyTorch's equations)."""
    x64 = np.asarray(x, np.float64)
    steps, n = x64.shape[:2]
    hidden = np.asarray(w_hh).shape[1]
    h = np.zeros((n, hidden)) if h0 is None else np.asarray(h0, np.float64)
    bi = np.zeros(3 * hidden) if b_ih is None else np.asarray(b_ih, np.float64)
    bh = np.zeros(3 * hidden) if b_hh is None else np.asarray(b_hh, np.float64)
    sig = lambda v: 1 / (1 + np.exp(-v))
    y = np.zeros((steps, n, hidden))
    for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
        xi = x64[t] @ np.asarray(w_ih, np.float64).T + bi
        hh = h @ np.asarray(w_hh, np.float64).T + bh
        r = sig(xi[:, :hidden] + hh[:, :hidden])
        z = sig(xi[:, hidden:2 * hidden] + hh[:, hidden:2 * hidden])
        cand = np.tanh(xi[:, 2 * hidden:] + r * hh[:, 2 * hidden:])
        h = (1 - z) * cand + z * h
        y[t] = h
    dtype = np.asarray(x).dtype
    return y.astype(dtype), h.astype(dtype)


def rnn_layer(x, w_ih, w_hh, b_ih, b_hh, h0, reverse, relu):
    x64 = np.asarray(x, np.float64)
    steps, n = x64.shape[:2]
    hidden = np.asarray(w_hh).shape[0]
    h = np.zeros((n, hidden)) if h0 is None else np.asarray(h0, np.float64)
    bias = sum(np.asarray(b, np.float64) for b in (b_ih, b_hh) if b is not None)
    y = np.zeros((steps, n, hidden))
    for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
        pre = x64[t] @ np.asarray(w_ih, np.float64).T + h @ np.asarray(w_hh, np.float64).T + bias
        h = np.maximum(pre, 0) if relu else np.tanh(pre)
        y[t] = h
    dtype = np.asarray(x).dtype
    return y.astype(dtype), h.astype(dtype)


def _adaptive_windows(size_in, size_out):
    return [(i * size_in // size_out, -(-(i + 1) * size_in // size_out)) for i in range(size_out)]


def _adaptive_pool(x, output_size, reduce, dtype):
    """Each output position's adaptive window of x reduced over the spatial dims."""
    x = np.asarray(x)
    n = x.ndim - 2
    outs = _per_dim(output_size, n, 1)
    out = np.empty(x.shape[:2] + tuple(outs), dtype=dtype)
    windows = [_adaptive_windows(x.shape[2 + d], outs[d]) for d in range(n)]
    for pos in np.ndindex(*outs):
        sl = tuple(slice(*windows[d][pos[d]]) for d in range(n))
        out[(slice(None), slice(None)) + pos] = reduce(x[(slice(None), slice(None)) + sl], tuple(range(2, x.ndim)))
    return out


def adaptive_avg_pool(x, output_size):
    mean = _adaptive_pool(x, output_size, lambda w, axes: w.astype(np.float64).mean(axis=axes), np.float64)
    return mean.astype(np.asarray(x).dtype)


def adaptive_max_pool(x, output_size):
    return _adaptive_pool(x, output_size, lambda w, axes: w.max(axis=axes), np.asarray(x).dtype)


def adaptive_avg_pool_grad(grad_out, input_size):
    g = np.asarray(grad_out)
    n = g.ndim - 2
    ins = _per_dim(input_size, n, 1)
    dx = np.zeros(g.shape[:2] + tuple(ins))
    windows = [_adaptive_windows(ins[d], g.shape[2 + d]) for d in range(n)]
    for pos in np.ndindex(*g.shape[2:]):
        sl = tuple(slice(*windows[d][pos[d]]) for d in range(n))
        count = np.prod([windows[d][pos[d]][1] - windows[d][pos[d]][0] for d in range(n)])
        dx[(slice(None), slice(None)) + sl] += (g[(slice(None), slice(None)) + pos] / count)[(...,) + (None,) * n]
    return dx.astype(g.dtype)


# ------------------------------------------------------------------ upsampling

def _nearest_index(size_in, size_out):
    """PyTorch's source indices, in its float32 arithmetic: floor(i * scale)
    with scale = float32(size_in) / size_out (exact for equal sizes and
    doubling), at most size_in - 1."""
    scale = np.float32(size_in) / np.float32(size_out)
    src = np.floor(np.arange(size_out, dtype=np.float32) * scale).astype(np.int64)
    return np.minimum(src, size_in - 1)


def upsample_nearest(x, size):
    x = np.asarray(x)
    n = x.ndim - 2
    outs = _per_dim(size, n, 1)
    for d in range(n):
        x = np.take(x, _nearest_index(x.shape[2 + d], outs[d]), axis=2 + d)
    return x


def upsample_nearest_grad(grad_out, input_size):
    g = np.asarray(grad_out, np.float64)
    n = g.ndim - 2
    ins = _per_dim(input_size, n, 1)
    for d in range(n):
        idx = _nearest_index(ins[d], g.shape[2 + d])
        moved = np.moveaxis(g, 2 + d, 0)
        acc = np.zeros((ins[d],) + moved.shape[1:])
        np.add.at(acc, idx, moved)
        g = np.moveaxis(acc, 0, 2 + d)
    return g.astype(np.asarray(grad_out).dtype)


def _linear_matrix(size_in, size_out, align_corners):
    """(out, in) interpolation weights along one dim (PyTorch's rules)."""
    m = np.zeros((size_out, size_in))
    for i in range(size_out):
        if align_corners:
            src = i * (size_in - 1) / (size_out - 1) if size_out > 1 else 0.0
        else:
            src = max((i + 0.5) * size_in / size_out - 0.5, 0.0)
        i0 = min(int(np.floor(src)), size_in - 1)
        i1 = min(i0 + 1, size_in - 1)
        lam = src - i0
        m[i, i0] += 1 - lam
        m[i, i1] += lam
    return m


def upsample_bilinear(x, size, align_corners):
    x64 = np.asarray(x, np.float64)
    oh, ow = _per_dim(size, 2, 1)
    mh = _linear_matrix(x64.shape[2], oh, align_corners)
    mw = _linear_matrix(x64.shape[3], ow, align_corners)
    return np.einsum("ih,nchw,jw->ncij", mh, x64, mw).astype(np.asarray(x).dtype)


def upsample_bilinear_grad(grad_out, input_size, align_corners):
    g = np.asarray(grad_out, np.float64)
    ih, iw = _per_dim(input_size, 2, 1)
    mh = _linear_matrix(ih, g.shape[2], align_corners)
    mw = _linear_matrix(iw, g.shape[3], align_corners)
    return np.einsum("ih,ncij,jw->nchw", mh, g, mw).astype(np.asarray(grad_out).dtype)


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank):
    """CTC negative log-likelihood per sample: the alpha recursion over the
    blank-extended target, in float64 log space."""
    lp = np.asarray(log_probs, np.float64)
    targets, input_lengths, target_lengths = (np.asarray(a, np.int64) for a in
                                              (targets, input_lengths, target_lengths))
    out = np.zeros(lp.shape[1])
    for n in range(lp.shape[1]):
        frames, length = int(input_lengths[n]), int(target_lengths[n])
        ext = [blank]
        for c in targets[n, :length]:
            ext += [int(c), blank]
        alpha = np.full(len(ext), -np.inf)
        alpha[0] = lp[0, n, ext[0]]
        if len(ext) > 1:
            alpha[1] = lp[0, n, ext[1]]
        for t in range(1, frames):
            new = np.full(len(ext), -np.inf)
            for s in range(len(ext)):
                terms = [alpha[s]] + ([alpha[s - 1]] if s >= 1 else [])
                if s >= 2 and ext[s] != blank and ext[s] != ext[s - 2]:
                    terms.append(alpha[s - 2])
                new[s] = np.logaddexp.reduce(terms) + lp[t, n, ext[s]]
            alpha = new
        out[n] = -np.logaddexp.reduce(alpha[-2:] if len(ext) > 1 else alpha[-1:])
    return out.astype(np.asarray(log_probs).dtype)
