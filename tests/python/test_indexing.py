"""x[key] and x[key] = value against NumPy (the reference for every key),
views sharing memory, gradients through basic indexing against PyTorch and
finite differences, and the errors NumPy gives."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import loom as lm

A = np.arange(60.0).reshape(3, 4, 5)
KEYS = [0, -1, (1, 2), (slice(None), 1), (Ellipsis, -1), (None, 0, slice(None, None, -1)),
        (slice(1, None), slice(None, None, 2), None, 3), (0, slice(3, 0, -2)), (slice(5, 9),),
        (Ellipsis, None), (2, Ellipsis, 1), (slice(-2, None), -3, slice(None, None, 3)), ()]


@pytest.mark.parametrize("key", KEYS, ids=repr)
def test_basic_indexing_matches_numpy(key):
    got = lm.nd.array(A, dtype="float64")[key]
    want = A[key]
    assert got.shape == np.shape(want)
    np.testing.assert_array_equal(got.asnumpy(), want)


@settings(max_examples=80 if settings.default.derandomize else 800, deadline=None)
@given(hnp.basic_indices(shape=(3, 4, 5), allow_ellipsis=True, allow_newaxis=True))
def test_random_basic_indices_match_numpy(key):
    np.testing.assert_array_equal(lm.nd.array(A, dtype="float64")[key].asnumpy(), A[key])


def test_basic_indexing_is_a_view():
    x = lm.nd.array(A, dtype="float64")
    v = x[1, ::2]
    x += 1
    np.testing.assert_array_equal(v.asnumpy(), A[1, ::2] + 1)


def test_advanced_indexing_copies_like_numpy():
    x = lm.nd.array(A, dtype="float64")
    for key in ([2, 0], (np.array([0, 2]), slice(1, 3)), A[:, :, 0] > 20, (lm.nd.array([1, 1]), 0)):
        np_key = tuple(k.asnumpy().astype(np.int64) if isinstance(k, lm.nd.NDArray) else k for k in key) \
            if isinstance(key, tuple) else key
        np.testing.assert_array_equal(x[key].asnumpy(), A[np_key])


B = np.random.default_rng(0).standard_normal((4, 5, 3))
ADVANCED_KEYS = [
    (np.array([0, 2, -1]),), (slice(None), np.array([[1, 0], [4, 4]])), (Ellipsis, np.array([2, 0])),
    (1, np.array([3, 1])), (B[:, :, 0] > 0,), (slice(1, 3), B[0] > 0), (None, np.array([1])),
    (B > 0,), (slice(None), slice(None), np.array([], dtype=np.int64)), (np.array([True, False, True, True]), 0),
    ([0, 1],), (slice(None, None, -1), [2]), (np.array([[3]]), None, slice(1, None)),
]


@pytest.mark.parametrize("key", ADVANCED_KEYS, ids=range(len(ADVANCED_KEYS)))
def test_one_advanced_index_matches_numpy_and_is_differentiable(key):
    """One integer array or mask among basic indices goes through take():
    NumPy's values and shape, and gradients (repeated indices accumulate)."""
    got = lm.nd.array(B)[key]
    want = B[key]
    assert got.shape == want.shape
    np.testing.assert_array_equal(got.asnumpy(), want)
    if want.size:
        lm.autograd.gradcheck(lambda x: x[key] * x[key], [B])


def test_several_advanced_indices_refuse_to_drop_gradients():
    x = lm.nd.array(A, dtype="float64")
    x.attach_grad()
    with lm.autograd.record():
        with pytest.raises(NotImplementedError, match="several integer arrays or boolean masks"):
            x[[0, 1], [1, 0]]
        y = x[[0, 0, 1]].sum()  # one array: recorded, repeated rows accumulate
    y.backward()
    want = np.zeros_like(A, dtype=np.float64)
    want[0] = 2
    want[1] = 1
    np.testing.assert_array_equal(x.grad.asnumpy(), want)
    with pytest.raises(IndexError, match="boolean index of shape"):
        lm.nd.array(A)[np.array([True, False])]
    with pytest.raises(IndexError, match="index 7 is out of bounds for axis 0 with size 3"):
        lm.nd.array(A)[[7]]  # at the call, as NumPy (not when the kernel runs)


def test_gradients_through_views_match_torch():
    torch = pytest.importorskip("torch")
    x = lm.nd.array(A, dtype="float64")
    x.attach_grad()
    with lm.autograd.record():
        y = (x[0, 1:, ::-2] * x[1, :3, ::2] + x[..., None][2, :3, 0, 0, None]).sum()
    y.backward()
    t = torch.tensor(A, requires_grad=True)
    (t[0, 1:].flip(-1)[:, ::2] * t[1, :3, ::2] + t[..., None][2, :3, 0, 0, None]).sum().backward()
    np.testing.assert_allclose(x.grad.asnumpy(), t.grad.numpy())


def test_gradient_of_indexing_has_a_gradient():
    rng = np.random.default_rng(0)
    assert lm.autograd.gradgradcheck(lambda t: (t[1, ::2] ** 2).sum() * t[0, 0, 1:], [rng.random((2, 3, 4))])


@pytest.mark.parametrize("key,value", [
    (1, 5.0), ((slice(None), 2, 0), [1.0, 2.0, 3.0]), ((0, 0, slice(None, None, 2)), np.array([7, 8, 9])),
    ((Ellipsis, -1), np.ones((3, 4))), ([0, 2], -1.0), (A[:, :, 0] > 20, 0.5)], ids=repr)
def test_assignment_matches_numpy(key, value):
    x = lm.nd.array(A, dtype="float64")
    want = A.copy()
    want[key] = value
    x[key] = value
    np.testing.assert_array_equal(x.asnumpy(), want)


def test_assignment_errors():
    x = lm.nd.array(A, dtype="float64")
    with pytest.raises(ValueError, match=r"could not broadcast a value of shape \(2,\)"):
        x[0] = [1.0, 2.0]
    with pytest.raises(IndexError, match="out of bounds for axis 0 with size 3"):
        x[3]
    with pytest.raises(IndexError, match="too many indices"):
        x[0, 0, 0, 0]
    with pytest.raises(IndexError, match="single ellipsis"):
        x[..., ...]
    w = lm.nd.array([1.0, 2.0])
    w.attach_grad()
    with lm.autograd.record():
        with pytest.raises(ValueError, match="__setitem__: .* is a leaf that requires grad"):
            w[0] = 3.0


def _assign_rows(x, y):
    """z = 2x with rows 1:3 replaced by y * y (broadcast over columns)."""
    z = x * 2.0
    z[1:3] = y * y
    return z


def test_assignment_is_recorded_and_differentiates_into_both_sides():
    rng = np.random.default_rng(3)
    xv, yv = rng.standard_normal((4, 3)), rng.standard_normal((2, 1))
    x, y = lm.nd.array(xv), lm.nd.array(yv)
    x.attach_grad()
    y.attach_grad()
    w = rng.standard_normal((4, 3))
    with lm.autograd.record():
        z = _assign_rows(x, y)
        loss = (z * lm.nd.array(w)).sum()
    loss.backward()
    want = 2 * xv
    want[1:3] = yv * yv
    np.testing.assert_allclose(z.asnumpy(), want, rtol=1e-15)
    gx = 2 * w
    gx[1:3] = 0  # overwritten elements get no gradient
    np.testing.assert_allclose(x.grad.asnumpy(), gx, rtol=1e-15)
    np.testing.assert_allclose(y.grad.asnumpy(), (w[1:3] * 2 * yv).sum(axis=1, keepdims=True), rtol=1e-12)
    # first and second derivatives against finite differences, with steps, negative steps and None
    lm.autograd.gradcheck(_assign_rows, [xv, yv])
    lm.autograd.gradgradcheck(_assign_rows, [xv, yv])

    def stepped(x, y):
        z = x * 1.0
        z[::-2, None, 1] = y
        return z * z

    lm.autograd.gradcheck(stepped, [xv, rng.standard_normal((2, 1))])


def test_assignment_into_a_fresh_buffer_joins_the_graph():
    w = lm.nd.array([1.0, 2.0])
    w.attach_grad()
    with lm.autograd.record():
        buf = lm.nd.zeros((3, 2))
        buf[1] = w * 3
        buf[2, 0] = w[1]
        buf[0, 1] = w[0:1]  # a (1,) value into one element (NumPy drops the leading 1)
        loss = buf.sum()
    loss.backward()
    np.testing.assert_allclose(w.grad.asnumpy(), [4.0, 4.0])


def test_assignment_reading_its_own_target():
    x = lm.nd.array([1.0, 2.0, 3.0, 4.0])
    x.attach_grad()
    with lm.autograd.record():
        z = x * 1.0
        z[1:] = z[:-1] * 10  # the value views z: read before the write
        loss = (z * lm.nd.array([1.0, 2.0, 3.0, 4.0])).sum()
    loss.backward()
    np.testing.assert_allclose(z.asnumpy(), [1.0, 10.0, 20.0, 30.0])
    # z = [x0, 10 x0, 10 x1, 10 x2]: d/dx = [1 + 20, 30, 40, 0]
    np.testing.assert_allclose(x.grad.asnumpy(), [21.0, 30.0, 40.0, 0.0])


def test_unrecordable_assignments_say_why():
    y = lm.nd.array([1.0])
    y.attach_grad()
    with lm.autograd.record():
        z = lm.nd.array([1.0, 2.0, 3.0]) * y
        view = z[0:2]
        with pytest.raises(ValueError, match="__setitem__: .* is a view"):
            view[0] = y
        buf = lm.nd.zeros((3,))
        alias = buf[0:2]
        with pytest.raises(ValueError, match="takes no part in autograd and shares its memory"):
            buf[0] = y
        del alias
        with pytest.raises(NotImplementedError, match="integer arrays or boolean masks is not recorded"):
            z[lm.nd.array([0, 1])] = y
    x = lm.nd.zeros((2,))
    x[0] = y  # not recording: a plain write
    assert x.asnumpy().tolist() == [1.0, 0.0] and not x.requires_grad
