"""Autograd from Python: recording, backward, grad_req, higher order, and the
safety rules (freed graphs, arrays modified after being saved, out=).
References: PyTorch (same computation, float64) and closed-form NumPy."""
import threading

import numpy as np
import pytest

import loom as lm

torch = pytest.importorskip("torch")
RNG = np.random.default_rng(7)


def leaf(values, dtype="float64", grad_req="write"):
    a = lm.nd.array(np.asarray(values), dtype=dtype)
    a.attach_grad(grad_req)
    return a


def test_composite_expression_matches_torch():
    xv, wv, bv = RNG.standard_normal((4, 3)), RNG.standard_normal((3,)), RNG.standard_normal((4, 1))
    x, w, b = leaf(xv), leaf(wv), leaf(bv)
    with lm.autograd.record():
        h = lm.nd.tanh(x * w + b)
        loss = (lm.nd.sigmoid(h) * h.exp() / (1 + h * h)).sum() + lm.nd.logsumexp(h, dims=1).mean()
    loss.backward()
    tx, tw, tb = (torch.tensor(v, requires_grad=True) for v in (xv, wv, bv))
    th = torch.tanh(tx * tw + tb)
    tl = (torch.sigmoid(th) * th.exp() / (1 + th * th)).sum() + torch.logsumexp(th, dim=1).mean()
    tl.backward()
    np.testing.assert_allclose(loss.asnumpy(), tl.item(), rtol=1e-12)
    for ours, theirs in ((x, tx), (w, tw), (b, tb)):
        assert ours.grad.shape == ours.shape  # broadcast gradients reduced back (sum_to)
        np.testing.assert_allclose(ours.grad.asnumpy(), theirs.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_reductions_and_ties_match_torch():
    xv = np.array([[1.0, 3.0, 3.0], [-2.0, 0.5, 4.0]])
    x = leaf(xv)
    with lm.autograd.record():
        y = lm.nd.max(x, dims=1).sum() + lm.nd.prod(x, dims=0).sum() + lm.nd.norm(x) + lm.nd.min(x)
    y.backward()
    tx = torch.tensor(xv, requires_grad=True)
    # torch.amax splits the gradient between tied maxima, as loom does.
    (torch.amax(tx, dim=1).sum() + torch.prod(tx, dim=0).sum() + torch.linalg.norm(tx) + torch.amin(tx)).backward()
    np.testing.assert_allclose(x.grad.asnumpy(), tx.grad.numpy(), rtol=1e-12)


def test_grad_req_write_overwrites_and_add_accumulates():
    w, a = leaf([1.0, 2.0]), leaf([1.0, 2.0], grad_req="add")
    buffer = w.grad
    for _ in range(2):
        with lm.autograd.record():
            y = (w * 3).sum() + (a * a).sum()
        y.backward()
    np.testing.assert_array_equal(w.grad.asnumpy(), [3.0, 3.0])
    np.testing.assert_array_equal(a.grad.asnumpy(), [4.0, 8.0])
    # The gradient is written into the buffer attach_grad made (optimisers hold it).
    np.testing.assert_array_equal(buffer.asnumpy(), [3.0, 3.0])
    assert w.grad_req == "write" and a.grad_req == "add"


def test_gradients_from_several_paths_are_summed():
    x = leaf([2.0])
    with lm.autograd.record():
        y = x * x + x.exp() + x
    y.backward()
    np.testing.assert_allclose(x.grad.asnumpy(), [2 * 2.0 + np.exp(2.0) + 1])


def test_second_backward_without_retain_graph_raises_and_retain_graph_allows_it():
    x = leaf([1.0, 2.0], grad_req="add")
    with lm.autograd.record():
        y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.asnumpy(), [4.0, 8.0])
    with pytest.raises(lm.LoomError, match="SumBackward was already run by an earlier backward pass.*retain_graph=True"):
        y.backward()


def test_modifying_a_saved_array_in_place_is_reported_on_backward():
    x, c = leaf([1.0, 2.0]), lm.nd.array([3.0, 4.0], dtype="float64")
    with lm.autograd.record():
        y = (x * c).sum()
    lm.nd.add(c, c, out=c)  # c was saved by mul for x's gradient
    with pytest.raises(lm.LoomError, match=r"MulBackward: the input 'y' of mul .* was modified in place"):
        y.backward()


def test_out_is_refused_while_recording_inputs_that_require_grad():
    x = leaf([1.0, 2.0])
    out = lm.nd.zeros((2,), dtype="float64")
    with lm.autograd.record():
        with pytest.raises(ValueError, match="exp: out= cannot be used while autograd is recording"):
            lm.nd.exp(x, out=out)
    lm.nd.exp(x, out=out)  # fine outside recording
    np.testing.assert_allclose(out.asnumpy(), np.exp([1.0, 2.0]))


def test_nothing_is_recorded_outside_record_or_inside_pause():
    x = leaf([1.0])
    y = x * 2
    assert not y.requires_grad and y._grad_fn is None
    with lm.autograd.record():
        with lm.autograd.pause():
            z = x * 2
        w = x * 2
    assert not z.requires_grad
    assert w._grad_fn == "MulBackward"
    with pytest.raises(ValueError, match="does not require grad"):
        y.backward()


def test_comparisons_do_not_propagate_gradients():
    x = leaf([-1.0, 2.0])
    with lm.autograd.record():
        mask = x > 0
        y = (x * mask).sum()
    assert not mask.requires_grad
    y.backward()
    np.testing.assert_array_equal(x.grad.asnumpy(), [0.0, 1.0])
    with pytest.raises(ValueError, match="does not require grad"):
        mask.backward()


def test_autograd_grad_returns_gradients_and_leaves_grad_buffers_alone():
    x, unused = leaf([1.0, 3.0]), leaf([5.0])
    with lm.autograd.record():
        y = (x * x * x).sum()
    gx, gu = lm.autograd.grad(y, [x, unused])
    np.testing.assert_allclose(gx.asnumpy(), [3.0, 27.0])
    np.testing.assert_array_equal(gu.asnumpy(), [0.0])
    np.testing.assert_array_equal(x.grad.asnumpy(), [0.0, 0.0])


def test_higher_order_gradients():
    xv = np.array([0.3, -1.2, 2.0])
    x = leaf(xv)
    with lm.autograd.record():
        y = lm.nd.tanh(x)
        (g1,) = lm.autograd.grad(y, [x], create_graph=True)
        (g2,) = lm.autograd.grad(g1, [x], create_graph=True)
    g2.backward()
    t = np.tanh(xv)
    np.testing.assert_allclose(g1.asnumpy(), 1 - t ** 2, rtol=1e-12)
    np.testing.assert_allclose(g2.asnumpy(), -2 * t * (1 - t ** 2), rtol=1e-12)
    np.testing.assert_allclose(x.grad.asnumpy(), -2 * (1 - t ** 2) ** 2 + 4 * t ** 2 * (1 - t ** 2), rtol=1e-10)


def test_head_gradient_is_used_and_checked():
    x = leaf([1.0, 2.0])
    with lm.autograd.record():
        y = x * 3
    with pytest.raises(ValueError, match=r"the gradient for output 0 has shape \(3,\) but the output has shape \(2,\)"):
        y.backward(lm.nd.array([1.0, 1.0, 1.0], dtype="float64"), retain_graph=True)
    y.backward(lm.nd.array([10.0, -1.0], dtype="float64"))
    np.testing.assert_array_equal(x.grad.asnumpy(), [30.0, -3.0])


def test_detach_and_stop_gradient():
    x = leaf([2.0])
    with lm.autograd.record():
        y = x * x.detach()
    y.backward()
    np.testing.assert_array_equal(x.grad.asnumpy(), [2.0])


def test_views_and_casts_are_differentiable():
    xv = RNG.standard_normal((2, 3))
    x = leaf(xv, dtype="float32")
    with lm.autograd.record():
        y = (x.T.reshape(3, 2) * lm.nd.array(np.arange(6.0).reshape(3, 2), dtype="float64")).astype("float32")
        s = y.sum()
    s.backward()
    tx = torch.tensor(xv, dtype=torch.float32, requires_grad=True)
    (tx.T.reshape(3, 2) * torch.arange(6.0, dtype=torch.float64).reshape(3, 2)).float().sum().backward()
    assert x.grad.dtype == "float32"  # the float64 gradient is cast back to x's dtype
    np.testing.assert_allclose(x.grad.asnumpy(), tx.grad.numpy())


def test_mixed_dtypes_give_each_input_its_own_dtype():
    a, b = leaf([1.0, 2.0], dtype="float32"), leaf([3.0, 4.0], dtype="float64")
    with lm.autograd.record():
        y = (a * b).sum()
    assert y.dtype == "float64"
    y.backward()
    assert a.grad.dtype == "float32" and b.grad.dtype == "float64"
    np.testing.assert_array_equal(a.grad.asnumpy(), [3.0, 4.0])


def test_attach_grad_refuses_integer_arrays():
    with pytest.raises(TypeError, match="only floating-point arrays have gradients"):
        lm.nd.array([1, 2], dtype="int64").attach_grad()
    with pytest.raises(ValueError, match="grad_req must be"):
        lm.nd.array([1.0]).attach_grad("sometimes")


def test_modes_are_per_thread_and_restored():
    assert not lm.autograd.is_recording() and not lm.autograd.is_training()
    seen = {}
    with lm.autograd.record():
        assert lm.autograd.is_recording() and lm.autograd.is_training()
        with lm.autograd.predict_mode():
            assert lm.autograd.is_recording() and not lm.autograd.is_training()
        t = threading.Thread(target=lambda: seen.setdefault("rec", lm.autograd.is_recording()))
        t.start()
        t.join()
    assert seen["rec"] is False
    assert not lm.autograd.is_recording()
    with lm.autograd.train_mode():
        assert lm.autograd.is_training() and not lm.autograd.is_recording()


def test_gradcheck_catches_a_wrong_gradient():
    x = RNG.uniform(0.5, 1.5, 4)
    assert lm.autograd.gradcheck(lambda a: lm.nd.sqrt(a) * a, [x])
    with pytest.raises(lm.autograd.GradcheckError, match="gradient for input 0 differs"):
        lm.autograd.gradcheck(lambda a: a * a.detach(), [x])
    with pytest.raises(lm.autograd.GradcheckError, match="second derivative"):
        lm.autograd.gradgradcheck(lambda a: a * a * a.detach(), [x])


def test_inplace_operators_keep_identity_and_are_refused_on_leaves_while_recording():
    x = lm.nd.array([1.0, 2.0])
    alias = x
    x += lm.nd.array([10.0, 20.0])
    x *= 2
    x -= 1
    x /= 2
    assert x is alias
    np.testing.assert_allclose(x.asnumpy(), [10.5, 21.5])
    x.relu_()
    w = leaf([1.0, 2.0], dtype="float32")
    with lm.autograd.record():
        with pytest.raises(ValueError, match="add_: .* is a leaf that requires grad"):
            w += 1
    with lm.autograd.pause():
        w -= 0.5  # an optimiser's update
    np.testing.assert_allclose(w.asnumpy(), [0.5, 1.5])
    i = lm.nd.array([1, 2], dtype="int32")
    with pytest.raises(TypeError, match="add: out= has dtype int32 but the result has dtype float32"):
        i += 0.5  # as in NumPy, a float result cannot be stored in an int array


class _Sigmoid(lm.autograd.Function):
    def forward(self, x):
        self.save_for_backward(x)
        return 1 / (1 + (-x).exp())

    def backward(self, dy):
        (x,) = self.saved_tensors  # an input: with create_graph its history is live
        y = 1 / (1 + (-x).exp())
        return dy * y * (1 - y)


class _ScaledProduct(lm.autograd.Function):
    """Two inputs and a non-array argument; a gradient for each array input."""

    def forward(self, a, b, scale):
        self.save_for_backward(a, b)
        self.scale = scale
        return a * b * scale

    def backward(self, dy):
        a, b = self.saved_tensors
        return dy * b * self.scale, dy * a * self.scale


def test_custom_function_gradients_match_the_builtin_op():
    xv = np.array([-2.0, 0.5, 3.0])
    x = leaf(xv)
    with lm.autograd.record():
        y = _Sigmoid()(x)
        (y * y).sum().backward()
    assert y._grad_fn == "_SigmoidBackward"
    s = 1 / (1 + np.exp(-xv))
    np.testing.assert_allclose(x.grad.asnumpy(), 2 * s * s * (1 - s), rtol=1e-12)
    assert lm.autograd.gradcheck(lambda t: _Sigmoid()(t), [xv])
    # backward made of loom ops is itself differentiable
    assert lm.autograd.gradgradcheck(lambda t: _Sigmoid()(t), [xv])


def test_custom_function_with_several_inputs_and_broadcasting():
    a, b = leaf(np.ones((2, 3))), leaf([1.0, 2.0, 3.0])
    with lm.autograd.record():
        y = _ScaledProduct()(a, b, 2.0).sum()
    y.backward()
    np.testing.assert_allclose(a.grad.asnumpy(), np.tile([2.0, 4.0, 6.0], (2, 1)))
    np.testing.assert_allclose(b.grad.asnumpy(), [4.0, 4.0, 4.0])  # summed back to (3,)


def test_custom_function_errors_are_clear():
    class Wrong(lm.autograd.Function):
        def forward(self, x):
            return x * 2

        def backward(self, dy):
            return dy, dy

    x = leaf([1.0])
    with lm.autograd.record():
        y = Wrong()(x)
    with pytest.raises(ValueError, match="WrongBackward: backward returned 2 gradient\\(s\\) for 1 NDArray input"):
        y.backward()

    class Raises(lm.autograd.Function):
        def forward(self, x):
            return x * 2

        def backward(self, dy):
            raise KeyError("from user code")

    with lm.autograd.record():
        y = Raises()(x)
    with pytest.raises(KeyError, match="from user code"):
        y.backward()


def test_the_mxnet_snippet_prints_what_mxnet_prints(capsys):
    x = lm.nd.array([[1, 2], [3, 4]])  # the snippet verbatim: float32, as in MXNet
    x.attach_grad()
    with lm.autograd.record():
        y = (x * x).sum()
    y.backward()
    print(x.grad)
    np.testing.assert_array_equal(x.grad.asnumpy(), [[2, 4], [6, 8]])
    assert "[[2., 4.],\n         [6., 8.]]" in capsys.readouterr().out


def test_inplace_ops_on_non_leaves_are_recorded_with_rebased_history():
    x = leaf([0.5, -1.0, 2.0])
    with lm.autograd.record():
        y = x * 3.0
        y += x          # y = 4x
        y *= y          # y = 16x^2: the backward reads y's old value (a copy made first)
        y.relu_()
        z = y.sum()
    z.backward()
    xv = np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(x.grad.asnumpy(), 32 * xv)  # relu of a square passes everything
    np.testing.assert_allclose(y.asnumpy(), 16 * xv ** 2)


def test_stale_histories_and_views_are_refused_while_recording():
    x = leaf([1.0, 2.0, 3.0])
    with lm.autograd.record():
        y = x * 2.0
        v = y[0:2]               # a view sharing y's memory
        with pytest.raises(ValueError, match="add_: .* is a view"):
            v += 1.0
        y += 1.0                 # rebases y; v's recorded history is now stale
        with pytest.raises(RuntimeError, match="was overwritten after it was computed"):
            v * 2.0
        plain = lm.nd.array([1.0, 1.0, 1.0])
        with pytest.raises(ValueError, match="add_: .* takes no part in autograd"):
            plain += x
        with lm.autograd.pause():
            y *= 2.0             # an unrecorded write: y's history no longer matches its values
        with pytest.raises(RuntimeError, match="MulBackward|AddBackward"):
            y.sum()


def _storage_shared(a, b):
    """Whether writing into a changes b (the two share memory)."""
    before = b.asnumpy().copy()
    a[:] = a + 1000.0
    changed = not np.array_equal(b.asnumpy(), before)
    a[:] = a - 1000.0
    return changed


def test_a_leaf_nobody_else_holds_takes_its_gradient_without_aliasing_anything():
    """With no handle on x.grad outside the leaf, backward may give the leaf
    the computed gradient itself instead of copying it into the old buffer
    (autograd/node.cc). It must still never share memory with the caller's
    head gradient, with another leaf's gradient, or with a forward value."""
    x1, x2 = leaf([1.0, 2.0, 3.0]), leaf([4.0, 5.0, 6.0])
    head = lm.nd.array([1.0, -2.0, 0.5])
    for _ in range(3):  # later passes find the buffer an earlier one gave the leaf
        with lm.autograd.record():
            y = x1 + x2  # add's gradient passes the head gradient through to both
        y.backward(head)
        np.testing.assert_array_equal(x1.grad.asnumpy(), [1.0, -2.0, 0.5])
        np.testing.assert_array_equal(x2.grad.asnumpy(), [1.0, -2.0, 0.5])
    g1, g2 = x1.grad, x2.grad
    assert not _storage_shared(g1, head) and not _storage_shared(g1, g2) and not _storage_shared(g2, g1)
    # A head that is its own gradient stays the caller's.
    z = leaf([1.0, 2.0])
    with lm.autograd.record():
        w = z * 1.0
    w.backward(w)
    assert not _storage_shared(z.grad, w)
    np.testing.assert_array_equal(z.grad.asnumpy(), [1.0, 2.0])


def test_a_held_gradient_buffer_is_still_written_in_place():
    x = leaf(RNG.standard_normal(1000))
    held = x.grad  # an optimiser's handle, taken before backward
    for scale in (2.0, 3.0):
        with lm.autograd.record():
            y = (x * scale).sum()
        y.backward()
        np.testing.assert_array_equal(held.asnumpy(), np.full(1000, scale))
        np.testing.assert_array_equal(x.grad.asnumpy(), np.full(1000, scale))


def test_gradients_taken_over_by_leaves_match_torch_over_many_steps():
    """A layer_norm step repeated (the case this saves a 16 MB copy in):
    every step's gradients equal torch's, whether or not the leaf kept the
    previous buffer."""
    x_np = RNG.standard_normal((64, 32))
    w_np, b_np = RNG.standard_normal(32), RNG.standard_normal(32)
    x, w, b = leaf(x_np), leaf(w_np), leaf(b_np)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x_np, w_np, b_np))
    for step in range(3):
        head_np = RNG.standard_normal((64, 32))
        with lm.autograd.record():
            y = lm.nd.layer_norm(x, w, b)
        y.backward(lm.nd.array(head_np))
        for t in (tx, tw, tb):
            t.grad = None
        torch.nn.functional.layer_norm(tx, (32,), tw, tb).backward(torch.tensor(head_np))
        for got, want in ((x, tx), (w, tw), (b, tb)):
            np.testing.assert_allclose(got.grad.asnumpy(), want.grad.numpy(), rtol=1e-10, atol=1e-10,
                                       err_msg=f"step {step}")


def _step_ops(step) -> set:
    with lm.profiler.scope():
        step()
    return {line.split()[0] for line in lm.profiler.summary().splitlines()[1:] if line.strip()}


@pytest.mark.parametrize("inline", [True, False])
def test_a_leaf_nobody_else_holds_skips_the_copy_into_its_gradient(inline):
    """The point of taking the gradient over: no `copy` op into x.grad when
    kernels run as they are called (the default). When they are queued on
    the engine's threads, a queued op that computes the gradient may still
    hold it as backward ends, and then the leaf copies it: slower, never
    wrong. Either way the values are right and a held buffer is written."""
    x = leaf(RNG.standard_normal((256, 64)), dtype="float32")
    want = np.where(x.asnumpy() * 2 > 0, 2.0, 0.0)

    def step():
        with lm.autograd.record():
            y = lm.nd.relu(x * 2.0)
        y.backward()
    previous = lm._C.set_inline_work_limit(-1 if inline else 0)
    try:
        step()
        lm.nd.waitall()
        ops = _step_ops(step)
        assert "mul" in ops  # the profile did see the step's ops
        if inline:  # queued, it depends on whether the engine ran the op yet
            assert "copy" not in ops, lm.profiler.summary()
        np.testing.assert_array_equal(x.grad.asnumpy(), want)
        held = x.grad
        assert "copy" in _step_ops(step)  # a held buffer is written in place
        np.testing.assert_array_equal(held.asnumpy(), want)
    finally:
        lm._C.set_inline_work_limit(previous)


class _ReturnsItsSavedArray(lm.autograd.Function):
    """A legal but odd gradient: an array the function saved, not a new one."""

    def forward(self, x, w):
        self.save_for_backward(w)
        return x * 1.0

    def backward(self, dy):
        (w,) = self.saved_tensors
        return w, None


def test_a_gradient_that_is_someone_elses_array_is_copied_not_taken():
    x = leaf([1.0, 2.0, 3.0])
    w = lm.nd.array([7.0, 8.0, 9.0], dtype="float64")  # x's dtype: no cast in between
    with lm.autograd.record():
        y = _ReturnsItsSavedArray()(x, w)
    y.backward()
    np.testing.assert_array_equal(x.grad.asnumpy(), [7.0, 8.0, 9.0])
    assert not _storage_shared(x.grad, w)
