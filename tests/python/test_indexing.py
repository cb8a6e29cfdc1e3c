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
        np_key = tuple(k.asnumpy() if isinstance(k, lm.nd.NDArray) else k for k in key) \
            if isinstance(key, tuple) else key
        np.testing.assert_array_equal(x[key].asnumpy(), A[np_key])


def test_advanced_indexing_refuses_to_drop_gradients():
    x = lm.nd.array(A, dtype="float64")
    x.attach_grad()
    with lm.autograd.record():
        with pytest.raises(NotImplementedError, match="not differentiable yet"):
            x[[0, 1]]


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
        with pytest.raises(ValueError, match="in-place update cannot be recorded"):
            w[0] = 3.0
