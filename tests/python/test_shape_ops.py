"""Shape and view operators with the arguments the generated suites leave at
their defaults: explicit permutations, negative dims, dims lists, errors
that name the op and the shape, and gradients through each (NumPy and
finite differences as references)."""
import numpy as np
import pytest

import loom as lm

RNG = np.random.default_rng(11)
X = RNG.standard_normal((2, 3, 4))


@pytest.mark.parametrize("dims", [(0, 1, 2), (2, 0, 1), (1, 2, 0), (-1, 0, -2), None])
def test_transpose_matches_numpy(dims):
    got = lm.nd.transpose(lm.nd.array(X), dims=None if dims is None else list(dims))
    np.testing.assert_array_equal(got.asnumpy(), np.transpose(X, dims))
    assert lm.nd.array(X).transpose(dims=list(dims) if dims else None).shape == np.transpose(X, dims).shape
    assert lm.nd.permute(lm.nd.array(X), dims=[2, 0, 1]).shape == (4, 2, 3)   # PyTorch's name


@pytest.mark.parametrize("dims, message", [([0, 1], "must name each of the 3 dims"),
                                            ([0, 0, 1], "repeat dim 0"),
                                            ([0, 1, 3], "dim 3 is out of range")])
def test_transpose_rejects_bad_permutations(dims, message):
    with pytest.raises(lm.LoomError, match=rf"transpose: .*{message}"):
        lm.nd.transpose(lm.nd.array(X), dims=dims)


@pytest.mark.parametrize("d1, d2", [(0, 2), (-1, -3), (1, 1)])
def test_swapaxes_matches_numpy(d1, d2):
    np.testing.assert_array_equal(lm.nd.swapaxes(lm.nd.array(X), d1, d2).asnumpy(), np.swapaxes(X, d1, d2))


def test_squeeze_and_expand_dims_match_numpy():
    y = RNG.standard_normal((1, 3, 1, 2))
    a = lm.nd.array(y)
    np.testing.assert_array_equal(lm.nd.squeeze(a).asnumpy(), np.squeeze(y))
    np.testing.assert_array_equal(lm.nd.squeeze(a, dims=2).asnumpy(), np.squeeze(y, 2))
    np.testing.assert_array_equal(lm.nd.squeeze(a, dims=[0, -2]).asnumpy(), np.squeeze(y, (0, 2)))
    for dim in (0, 2, 4, -1, -5):
        np.testing.assert_array_equal(lm.nd.expand_dims(a, dim).asnumpy(), np.expand_dims(y, dim))
    with pytest.raises(lm.LoomError, match=r"squeeze: dim 1 has size 3, not 1, in an array of shape \(1, 3, 1, 2\)"):
        lm.nd.squeeze(a, dims=1)
    with pytest.raises(IndexError, match=r"expand_dims: dim 5 is out of range"):
        lm.nd.expand_dims(a, 5)


@pytest.mark.parametrize("dims", [None, 0, [1], [0, 2], [-1]])
def test_flip_matches_numpy_and_is_a_negative_stride_view(dims):
    a = lm.nd.array(X)
    got = lm.nd.flip(a, dims=dims)
    want = np.flip(X, None if dims is None else (tuple(dims) if isinstance(dims, list) else dims))
    np.testing.assert_array_equal(got.asnumpy(), want)
    assert any(s < 0 for s in got.strides)
    # Kernels read negative strides: a pointwise op, a reduction and a copy.
    np.testing.assert_allclose((got * 2 + 1).asnumpy(), want * 2 + 1)
    np.testing.assert_allclose(got.sum(dims=1).asnumpy(), want.sum(axis=1))
    np.testing.assert_array_equal(got.copy().asnumpy(), want)
    assert got.copy().is_contiguous()


def test_views_chain_and_write_through():
    a = lm.nd.array(np.arange(24.0).reshape(2, 3, 4))
    v = lm.nd.expand_dims(lm.nd.flip(lm.nd.transpose(a, dims=[2, 0, 1]), dims=0), 1)
    want = np.expand_dims(np.flip(np.transpose(np.arange(24.0).reshape(2, 3, 4), (2, 0, 1)), 0), 1)
    np.testing.assert_array_equal(v.asnumpy(), want)
    v[0, 0, 0, 0] = -5.0     # the last element of a's last dim, first row
    assert a.asnumpy()[0, 0, 3] == -5.0


@pytest.mark.parametrize("fn", [
    lambda x: lm.nd.transpose(x, dims=[1, 2, 0]),
    lambda x: lm.nd.transpose(x, dims=[-1, 0, 1]),
    lambda x: lm.nd.swapaxes(x, 0, 2),
    lambda x: lm.nd.flip(x, dims=[0, 2]),
    lambda x: lm.nd.squeeze(lm.nd.expand_dims(x, 1), dims=1),
    lambda x: lm.nd.expand_dims(x, -1) * lm.nd.expand_dims(x, 2),
])
def test_gradients_through_views_match_finite_differences(fn):
    x = lm.nd.array(RNG.standard_normal((2, 3, 4)))
    lm.autograd.gradcheck(lambda t: fn(t) * fn(t), [x.asnumpy()], eps=1e-6, atol=1e-6, rtol=1e-5)
    lm.autograd.gradgradcheck(lambda t: fn(t) * fn(t), [x.asnumpy()], eps=1e-6, atol=1e-6, rtol=1e-5)


def test_views_of_non_float_dtypes():
    for dtype in ("int32", "uint8", "bool", "int64"):
        y = (RNG.integers(0, 2, (2, 3))).astype(dtype)
        a = lm.nd.array(y)
        np.testing.assert_array_equal(lm.nd.transpose(a).asnumpy(), y.T)
        np.testing.assert_array_equal(lm.nd.flip(a, dims=1).asnumpy(), y[:, ::-1])


@pytest.mark.parametrize("dim", [0, 1, -1, -2])
def test_concat_matches_numpy_with_positional_arrays_or_a_list(dim):
    parts = [RNG.standard_normal((2, 3)), RNG.standard_normal((2, 3)), RNG.standard_normal((2, 3))]
    arrays = [lm.nd.array(p) for p in parts]
    want = np.concatenate(parts, axis=dim)
    np.testing.assert_array_equal(lm.nd.concat(*arrays, dim=dim).asnumpy(), want)
    np.testing.assert_array_equal(lm.nd.concat(arrays, dim=dim).asnumpy(), want)
    np.testing.assert_array_equal(lm.nd.concatenate(tuple(arrays), dim=dim).asnumpy(), want)  # NumPy's name
    np.testing.assert_array_equal(lm.nd.stack(*arrays, dim=dim).asnumpy(), np.stack(parts, axis=dim))
    out = lm.nd.zeros(want.shape, dtype="float64")
    assert lm.nd.concat(*arrays, dim=dim, out=out) is not None
    np.testing.assert_array_equal(out.asnumpy(), want)


def test_concat_promotes_dtypes_and_takes_strided_inputs():
    a = lm.nd.array(np.arange(6, dtype=np.int32).reshape(2, 3))
    b = lm.nd.array(np.ones((3, 2), dtype=np.float32)).T          # a transposed view
    got = lm.nd.concat(a, b, dim=0)
    assert got.dtype == "float32"
    np.testing.assert_array_equal(got.asnumpy(), np.concatenate([np.arange(6).reshape(2, 3), np.ones((2, 3))]))


def test_concat_and_stack_errors_name_the_op_and_shapes():
    a, b = lm.nd.ones((2, 3)), lm.nd.ones((3, 3))
    with pytest.raises(ValueError, match=r"concat: arrays\[1\] has shape \(3, 3\) but arrays\[0\] has shape \(2, 3\)"):
        lm.nd.concat(a, b, dim=1)
    with pytest.raises(IndexError, match=r"concat: dim 2 is out of range for an array of shape \(2, 3\)"):
        lm.nd.concat(a, a, dim=2)
    with pytest.raises(ValueError, match=r"stack: arrays\[1\] has shape \(3, 3\)"):
        lm.nd.stack(a, b)
    with pytest.raises(ValueError, match="concat: 'arrays' needs at least one array"):
        lm.nd.concat()
    with pytest.raises(TypeError, match=r"concat\(\): argument 1 is a float, not an NDArray"):
        lm.nd.concat(a, 1.5)
    with pytest.raises(ValueError, match="0-d arrays have no dim"):
        lm.nd.concat(lm.nd.array(1.0), lm.nd.array(2.0), dim=0)


def test_gradients_flow_to_each_joined_array():
    xs = [lm.nd.array(RNG.standard_normal(s)) for s in [(2, 1), (2, 3), (2, 2)]]
    lm.autograd.gradcheck(lambda a, b, c: lm.nd.concat(a, b, c, dim=1) ** 2, [x.asnumpy() for x in xs],
                          eps=1e-6, atol=1e-6, rtol=1e-5)
    lm.autograd.gradgradcheck(lambda a, b, c: lm.nd.concat(a, b, c, dim=-1) ** 3, [x.asnumpy() for x in xs],
                              eps=1e-6, atol=1e-6, rtol=1e-5)
    ys = [lm.nd.array(RNG.standard_normal((3, 2))) for _ in range(3)]
    lm.autograd.gradgradcheck(lambda a, b, c: lm.nd.stack(a, b, c, dim=1) ** 3, [y.asnumpy() for y in ys],
                              eps=1e-6, atol=1e-6, rtol=1e-5)
    # Only the arrays that require grad get one.
    a, b = lm.nd.array(np.ones((2, 2))), lm.nd.array(np.ones((2, 2)))
    a.attach_grad()
    with lm.autograd.record():
        y = (lm.nd.concat(a, b, dim=0) * 3).sum()
    y.backward()
    np.testing.assert_array_equal(a.grad.asnumpy(), np.full((2, 2), 3.0))
    assert b.grad is None


@pytest.mark.parametrize("reps", [2, [3], [2, 1], [1, 2, 2], [0, 2]])
def test_tile_matches_numpy(reps):
    x = RNG.standard_normal((2, 3))
    np.testing.assert_array_equal(lm.nd.tile(lm.nd.array(x), reps).asnumpy(), np.tile(x, reps))
    lm.autograd.gradcheck(lambda t: lm.nd.tile(t, reps) ** 2, [x])


@pytest.mark.parametrize("repeats, dim", [(2, 0), (3, 1), (1, -1), (0, 0)])
def test_repeat_matches_numpy(repeats, dim):
    x = RNG.standard_normal((2, 3))
    np.testing.assert_array_equal(lm.nd.repeat(lm.nd.array(x), repeats, dim=dim).asnumpy(),
                                  np.repeat(x, repeats, axis=dim))
    lm.autograd.gradcheck(lambda t: lm.nd.repeat(t, repeats, dim=dim) ** 2, [x])


def test_pad_matches_numpy_and_its_gradient_is_the_interior():
    x = RNG.standard_normal((2, 3, 4))
    widths = [0, 1, 2, 0, 1, 1]
    want = np.pad(x, [(0, 1), (2, 0), (1, 1)], constant_values=-2.0)
    np.testing.assert_array_equal(lm.nd.pad(lm.nd.array(x), widths, value=-2.0).asnumpy(), want)
    lm.autograd.gradgradcheck(lambda t: lm.nd.pad(t, widths) ** 3, [x])
    with pytest.raises(ValueError, match=r"pad: pad_width must hold \(before, after\) for each of the 3 dims"):
        lm.nd.pad(lm.nd.array(x), [1, 1])
    with pytest.raises(ValueError, match="pad: pad_width .* has a negative width"):
        lm.nd.pad(lm.nd.array(x), [0, 0, -1, 0, 0, 0])
    with pytest.raises(ValueError, match="tile: reps .* has a negative count"):
        lm.nd.tile(lm.nd.array(x), [-1])


# ------------------------------------------------------------------ reshape, flatten, broadcast_to

def _writes_through(base: lm.nd.NDArray, derived: lm.nd.NDArray, ref) -> bool:
    """Whether `derived` follows a write to `base` (a view) or keeps its
    values (a copy); either way its values must be ref(base) before the write."""
    before = derived.asnumpy().copy()
    np.testing.assert_array_equal(before, ref(base.asnumpy()))
    base += 1.0
    if np.array_equal(derived.asnumpy(), before):
        return False
    np.testing.assert_array_equal(derived.asnumpy(), ref(base.asnumpy()))
    return True


@pytest.mark.parametrize("make, shape, view", [
    (lambda a: a, (4, 6), True),                           # contiguous
    (lambda a: a.T, (2, 3, 4), True),                      # (6, 4) split along its first dim
    (lambda a: a.T, (6, 2, 2), True),                      # ...along its second
    (lambda a: a.T, (24,), False),                         # merging a transposed pair needs a copy
    (lambda a: a[:, :3], (2, 2, 3), True),                 # part of each row: the rows can be grouped
    (lambda a: a[:, :3], (12,), False),                    # ...but not merged (a gap after each)
    (lambda a: a[:, ::2], (12,), True),                    # every other element is evenly spaced throughout
    (lambda a: a[:, None, :, None], (4, 1, 6, 1), True),   # size-1 dims move freely
    (lambda a: a[:, None, :, None], (1, 24), True),
])
def test_reshape_is_a_view_whenever_the_strides_allow(make, shape, view):
    base = lm.nd.array(np.arange(24, dtype=np.float64).reshape(4, 6))
    got = lm.nd.reshape(make(base), shape=list(shape))
    assert got.shape == shape
    assert _writes_through(base, got, lambda b: np.reshape(make(b), shape)) is view


def test_reshape_infers_minus_one_and_handles_0d_and_empty():
    assert lm.nd.reshape(lm.nd.array(np.float32(3.0)), shape=[1, 1]).shape == (1, 1)
    assert lm.nd.reshape(lm.nd.zeros((1, 1)), shape=[]).shape == ()
    assert lm.nd.reshape(lm.nd.zeros((0, 4)), shape=[2, -1, 2]).shape == (2, 0, 2)
    assert lm.nd.reshape(lm.nd.zeros((0, 4)), shape=[0, 5]).shape == (0, 5)   # 0 is a size, as in NumPy
    assert lm.nd.zeros((2, 3, 4)).reshape(-1, 4).shape == (6, 4)               # the method agrees
    np.testing.assert_array_equal(lm.nd.reshape(lm.nd.array(X), shape=[4, -1]).asnumpy(), X.reshape(4, -1))


@pytest.mark.parametrize("shape, message", [
    ([5, -1], r"cannot reshape NDArray\(shape=\(2, 3, 4\).*24 elements\) to \(5, -1\)"),
    ([-1, -1], "only one dim of the new shape can be -1"),
    ([4, 7], r"to \(4, 7\) \(28 elements\)"),
    ([-2, -12], "negative dim other than -1"),
])
def test_reshape_errors_name_the_shapes(shape, message):
    with pytest.raises(ValueError, match=message):
        lm.nd.reshape(lm.nd.array(X), shape=shape)


def test_flatten_keeps_the_batch_dim_and_is_a_method():
    x = lm.nd.array(X)
    np.testing.assert_array_equal(lm.nd.flatten(x).asnumpy(), X.reshape(2, 12))
    assert x.flatten().shape == (2, 12)
    assert lm.nd.flatten(lm.nd.zeros((3, 0, 2))).shape == (3, 0)
    with pytest.raises(ValueError, match="flatten: expects at least one dim"):
        lm.nd.flatten(lm.nd.array(np.float32(1.0)))


def test_broadcast_to_is_a_stride_0_view_and_rejects_bad_targets():
    base = lm.nd.array(np.arange(3, dtype=np.float64).reshape(3, 1))
    b = lm.nd.broadcast_to(base, shape=[2, 3, 4])
    assert _writes_through(base, b, lambda v: np.broadcast_to(v, (2, 3, 4)))
    with pytest.raises(ValueError, match=r"broadcast_to: cannot broadcast shapes \(3, 1\) and \(2, 4\)"):
        lm.nd.broadcast_to(base, shape=[2, 4])
    with pytest.raises(ValueError, match=r"broadcast_to: cannot broadcast NDArray\(shape=\(3, 1\).* to \(4,\)"):
        lm.nd.broadcast_to(base, shape=[4])   # the target may not drop dims
    with pytest.raises(ValueError, match="more than once"):
        lm.nd.broadcast_to(base, shape=[3, 4])[...] = 0.0


@pytest.mark.parametrize("fn", [
    lambda x: lm.nd.reshape(x.T, shape=[3, 8]),           # through the copying path
    lambda x: lm.nd.reshape(x, shape=[6, 4]) * 2.0,       # through a view
    lambda x: lm.nd.flatten(x.T),
    lambda x: lm.nd.broadcast_to(lm.nd.sum(x, dims=[0], keepdim=True), shape=[5, 3, 4]),
])
def test_reshape_family_gradients_match_finite_differences(fn):
    lm.autograd.gradcheck(lambda t: fn(t) * fn(t), [X], eps=1e-6, atol=1e-6, rtol=1e-5)
    lm.autograd.gradgradcheck(lambda t: fn(t) * fn(t), [X], eps=1e-6, atol=1e-6, rtol=1e-5)


# ------------------------------------------------------------------ slice, index_select

@pytest.mark.parametrize("begin, end, step, index", [
    ([1], [3], None, np.s_[1:3]),
    ([-1, 0], None, [-1, 2], np.s_[::-1, ::2]),            # end None with a negative step: to the start
    ([0, -2], [100, -100], [1, -1], np.s_[0:100, -2:-100:-1]),  # out-of-range positions clamp
    ([3], [1], None, np.s_[3:1]),                            # empty
    ([-10, 1, 1], [10, 3, 4], [3, 1, 2], np.s_[-10:10:3, 1:3, 1:4:2]),
])
def test_slice_matches_python_slicing(begin, end, step, index):
    got = lm.nd.slice(lm.nd.array(X), begin=begin, end=end, step=step)
    np.testing.assert_array_equal(got.asnumpy(), X[index])


def test_slice_errors_name_the_arguments():
    with pytest.raises(ValueError, match=r"slice: begin \(0, 0, 0, 0\) has 4 entries, but x of shape \(2, 3, 4\)"):
        lm.nd.slice(lm.nd.array(X), begin=[0, 0, 0, 0])
    with pytest.raises(ValueError, match="slice: end .* must have begin's 2 entries"):
        lm.nd.slice(lm.nd.array(X), begin=[0, 0], end=[1])
    with pytest.raises(ValueError, match="slice: step .* has a 0 at dim 1"):
        lm.nd.slice(lm.nd.array(X), begin=[0, 0], step=[1, 0])


def test_slice_gradient_is_zero_outside_the_slice():
    lm.autograd.gradcheck(lambda t: lm.nd.slice(t, begin=[1, -1], end=None, step=[1, -2]) ** 2, [X],
                          eps=1e-6, atol=1e-6, rtol=1e-5)
    lm.autograd.gradgradcheck(lambda t: lm.nd.slice(t, begin=[0, 1], end=[2, 3]) ** 3, [X],
                              eps=1e-6, atol=1e-6, rtol=1e-5)


def test_index_select_takes_pytorchs_argument_order():
    idx = lm.nd.array(np.array([2, 0, -1]), dtype="int64")
    np.testing.assert_array_equal(lm.nd.index_select(lm.nd.array(X), 2, idx).asnumpy(), np.take(X, [2, 0, -1], 2))
    with pytest.raises(ValueError, match="index_select: .*index must be 1-D"):
        lm.nd.index_select(lm.nd.array(X), 0, lm.nd.array(np.zeros((2, 2)), dtype="int64"))


def test_a_composite_call_that_fails_leaves_no_error_behind():
    # With kernels on the engine (the CI's LOOM_INLINE_WORK=0 pass), take's
    # bad index is found after the call has already refused out=; the call
    # must take that failure with it rather than leave it to a later wait.
    bad = lm.nd.array(np.array([568]), dtype="int64")
    with pytest.raises(lm.LoomError):
        lm.nd.index_select(lm.nd.zeros((1, 3)), 0, bad, out=lm.nd.zeros((5, 5)))
    lm.nd.waitall()
