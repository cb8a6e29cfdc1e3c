"""Losses and lookups against PyTorch on identical inputs: sigmoid binary
cross-entropy with logits (pos_weight, extreme logits), softmax
cross-entropy with integer labels, and embedding's gradient, which adds
into the looked-up rows only."""
import numpy as np
import pytest

import loom as lm

torch = pytest.importorskip("torch")
F = torch.nn.functional


@pytest.mark.parametrize("pos_weight", [1.0, 3.0])
def test_sigmoid_binary_cross_entropy_matches_torch(pos_weight):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.standard_normal(50) * 4, [-200.0, -40.0, 0.0, 40.0, 200.0]])
    y = np.concatenate([rng.uniform(0, 1, 50), [0.0, 1.0, 0.5, 0.0, 1.0]])
    lx, ly = lm.nd.array(x), lm.nd.array(y)
    lx.attach_grad()
    ly.attach_grad()
    with lm.autograd.record():
        loss = lm.nd.sigmoid_binary_cross_entropy(lx, ly, pos_weight=pos_weight)
    loss.backward()
    tx, ty = torch.tensor(x, requires_grad=True), torch.tensor(y, requires_grad=True)
    tl = F.binary_cross_entropy_with_logits(tx, ty, pos_weight=torch.tensor(pos_weight, dtype=torch.float64),
                                            reduction="none")
    tl.sum().backward()
    assert np.isfinite(loss.asnumpy()).all()
    np.testing.assert_allclose(loss.asnumpy(), tl.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(lx.grad.asnumpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ly.grad.asnumpy(), ty.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_softmax_cross_entropy_matches_torch_for_large_logits():
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((16, 10)) * 50
    labels = rng.integers(0, 10, 16)
    lx = lm.nd.array(logits)
    lx.attach_grad()
    with lm.autograd.record():
        loss = lm.nd.softmax_cross_entropy(lx, lm.nd.array(labels))
    loss.backward()
    tx = torch.tensor(logits, requires_grad=True)
    tl = F.cross_entropy(tx, torch.tensor(labels), reduction="none")
    tl.sum().backward()
    np.testing.assert_allclose(loss.asnumpy(), tl.detach().numpy(), rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(lx.grad.asnumpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_embedding_gradient_adds_into_looked_up_rows_only():
    rng = np.random.default_rng(2)
    weight = rng.standard_normal((10, 4))
    ids = np.array([[1, 3, 1], [7, 3, 3]])
    lw = lm.nd.array(weight)
    lw.attach_grad()
    with lm.autograd.record():
        out = lm.nd.embedding(lm.nd.array(ids), lw)
    head = rng.standard_normal(out.shape)
    out.backward(lm.nd.array(head))
    tw = torch.tensor(weight, requires_grad=True)
    tout = F.embedding(torch.tensor(ids), tw)
    tout.backward(torch.tensor(head))
    np.testing.assert_allclose(out.asnumpy(), tout.detach().numpy())
    np.testing.assert_allclose(lw.grad.asnumpy(), tw.grad.numpy(), rtol=1e-12, atol=1e-12)
    untouched = [r for r in range(10) if r not in ids]
    assert not lw.grad.asnumpy()[untouched].any()
    with pytest.raises(IndexError, match="take"):
        lm.nd.embedding(lm.nd.array(np.array([10])), lw).asnumpy()


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_softmax_cross_entropy_ignore_index_and_label_smoothing_match_torch(smoothing):
    rng = np.random.default_rng(5)
    logits = rng.standard_normal((4, 7, 3)) * 3          # classes along dim 1, as torch wants
    labels = rng.integers(0, 7, (4, 3))
    labels[0, 1] = labels[2, 2] = -100
    lx = lm.nd.array(logits)
    lx.attach_grad()
    with lm.autograd.record():
        loss = lm.nd.softmax_cross_entropy(lx, lm.nd.array(labels), dim=1, label_smoothing=smoothing)
    head = rng.standard_normal(loss.shape)
    loss.backward(lm.nd.array(head))
    tx = torch.tensor(logits, requires_grad=True)
    tl = F.cross_entropy(tx, torch.tensor(labels), reduction="none", ignore_index=-100, label_smoothing=smoothing)
    tl.backward(torch.tensor(head))
    np.testing.assert_allclose(loss.asnumpy(), tl.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(lx.grad.asnumpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-12)
    assert loss.asnumpy()[0, 1] == 0 and not lx.grad.asnumpy()[0, :, 1].any()


def test_ctc_loss_matches_torch_through_log_softmax():
    rng = np.random.default_rng(6)
    frames, batch, classes = 12, 4, 5
    logits = rng.standard_normal((frames, batch, classes))
    targets = np.array([[1, 1, 2, 0], [3, 4, 3, 2], [2, 0, 0, 0], [4, 4, 4, 4]])   # repeats need blanks between
    input_lengths = np.array([12, 10, 3, 7])
    target_lengths = np.array([3, 4, 1, 4])
    lx = lm.nd.array(logits)
    lx.attach_grad()
    with lm.autograd.record():
        loss = lm.nd.ctc_loss(lm.nd.log_softmax(lx, -1), lm.nd.array(targets), lm.nd.array(input_lengths),
                              lm.nd.array(target_lengths))
    head = rng.uniform(0.5, 1.5, batch)
    loss.backward(lm.nd.array(head))
    tx = torch.tensor(logits, requires_grad=True)
    tl = F.ctc_loss(F.log_softmax(tx, -1), torch.tensor(targets), torch.tensor(input_lengths),
                    torch.tensor(target_lengths), reduction="none")
    tl.backward(torch.tensor(head))
    np.testing.assert_allclose(loss.asnumpy(), tl.detach().numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(lx.grad.asnumpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-10)


def test_ctc_loss_is_infinite_for_an_infeasible_target_and_checks_its_inputs():
    lp = lm.nd.log_softmax(lm.nd.array(np.zeros((3, 1, 4))), -1)
    one = lm.nd.array(np.array([3]))
    loss = lm.nd.ctc_loss(lp, lm.nd.array(np.array([[1, 1, 2]])), one, one * 1)  # 1 1 2 needs 4 frames
    assert np.isinf(loss.asnumpy()[0])
    with pytest.raises(IndexError, match=r"ctc_loss: targets\[0, 0\] = 0 is not a class in \[0, 4\) other than blank"):
        lm.nd.ctc_loss(lp, lm.nd.array(np.array([[0, 1, 2]])), one, one).asnumpy()
    with pytest.raises(ValueError, match=r"ctc_loss: input_lengths\[0\] = 5 is outside \[0, 3\]"):
        lm.nd.ctc_loss(lp, lm.nd.array(np.array([[1, 2, 3]])), one + 2, one).asnumpy()


def test_softmax_cross_entropy_with_probability_labels_matches_torch():
    rng = np.random.default_rng(7)
    logits = rng.standard_normal((5, 6)) * 40
    labels = rng.dirichlet(np.ones(6), size=5)
    lx, ly = lm.nd.array(logits), lm.nd.array(labels)
    lx.attach_grad()
    ly.attach_grad()
    with lm.autograd.record():
        loss = lm.nd.softmax_cross_entropy_prob(lx, ly)
    loss.backward()
    tx, ty = torch.tensor(logits, requires_grad=True), torch.tensor(labels, requires_grad=True)
    tl = F.cross_entropy(tx, ty, reduction="none")
    tl.sum().backward()
    np.testing.assert_allclose(loss.asnumpy(), tl.detach().numpy(), rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(lx.grad.asnumpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ly.grad.asnumpy(), ty.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("logits, label", [
    ([[0.5, -np.inf, 1.0]], [0]),      # a masked class, label elsewhere: finite
    ([[0.5, 2.0, -np.inf]], [2]),      # the label masked: inf
    ([[3e38, 1.0, 2.0, 3.0]], [1]),    # huge logits: the class sum overflows
])
def test_softmax_cross_entropy_with_infinite_or_huge_logits_matches_torch(logits, label, smoothing):
    """A term of weight 0 is left out, not multiplied: with -inf logits the
    smoothing term is infinite, and 0 * inf made the unsmoothed loss NaN."""
    got = lm.nd.softmax_cross_entropy(lm.nd.array(np.array(logits, np.float32)), lm.nd.array(np.array(label)),
                                      label_smoothing=smoothing).asnumpy()
    want = F.cross_entropy(torch.tensor(logits, dtype=torch.float32), torch.tensor(label), reduction="none",
                           label_smoothing=smoothing).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("call", [
    lambda labels: lm.nd.softmax_cross_entropy(lm.nd.array(np.zeros((2, 4), np.float32)), labels),
    lambda labels: lm.nd.embedding(labels, lm.nd.array(np.zeros((6, 2), np.float32))),
    lambda labels: lm.nd.take(lm.nd.array(np.zeros((6, 2), np.float32)), labels, 0),
])
def test_a_nan_float_index_is_an_index_error_not_index_zero(call):
    """Float index arrays are truncated (MXNet's rule), but NaN is no index:
    it used to cast to 0 and read the first row or class silently."""
    labels = lm.nd.array(np.array([1.0, np.nan], np.float32))
    with pytest.raises(IndexError, match="NaN or -inf"):
        call(labels).asnumpy()
    np.testing.assert_array_equal(call(lm.nd.array(np.array([1.9, 0.0], np.float32))).asnumpy(),
                                  call(lm.nd.array(np.array([1, 0]))).asnumpy())


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_embedding_and_cross_entropy_have_gradients(dtype):
    """Their backward ops (index_add, scatter_add) had no half kernels, so
    both ran forward and failed at backward() naming an internal op. They
    now run the float32 kernel on float32 copies and round once."""
    rng = np.random.default_rng(1)
    table = rng.standard_normal((5, 3)).astype(np.float32)
    w = lm.nd.array(table).astype(dtype)
    w.attach_grad()
    with lm.autograd.record():
        total = lm.nd.embedding(lm.nd.array(np.array([1, 2, 2])), w).sum()
    total.backward()
    np.testing.assert_array_equal(w.grad.astype("float32").asnumpy()[:, 0], [0, 1, 2, 0, 0])
    logits = rng.standard_normal((4, 5)).astype(np.float32)
    x = lm.nd.array(logits).astype(dtype)
    x.attach_grad()
    with lm.autograd.record():
        loss = lm.nd.softmax_cross_entropy(x, lm.nd.array(np.array([1, 0, 4, 2]))).sum()
    loss.backward()
    assert loss.dtype == dtype and x.grad.dtype == dtype
    tx = torch.tensor(x.astype("float32").asnumpy(), requires_grad=True)
    F.cross_entropy(tx, torch.tensor([1, 0, 4, 2]), reduction="sum").backward()
    np.testing.assert_allclose(x.grad.astype("float32").asnumpy(), tx.grad.numpy(), atol=1e-2)
