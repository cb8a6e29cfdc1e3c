"""scaled_dot_product_attention against PyTorch's on identical inputs:
outputs and the gradients of q, k and v, over several 64-wide blocks,
causal masking, per-sequence valid lengths, and float32 at a realistic
size; the second derivative through the op-by-op backward."""
import numpy as np
import pytest

import loom as lm

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _run(q, k, v, valid_length=None, causal=False, scale=0.0, head=None):
    lq, lk, lv = (lm.nd.array(a) for a in (q, k, v))
    for a in (lq, lk, lv):
        a.attach_grad()
    vl = None if valid_length is None else lm.nd.array(np.asarray(valid_length, dtype=np.int64))
    with lm.autograd.record():
        out = lm.nd.scaled_dot_product_attention(lq, lk, lv, vl, causal=causal, scale=scale)
    out.backward(lm.nd.array(head))
    return out.asnumpy(), [a.grad.asnumpy() for a in (lq, lk, lv)]


def _torch(q, k, v, valid_length=None, causal=False, scale=None, head=None):
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    mask = None
    if valid_length is not None:
        keep = torch.arange(k.shape[-2]) < torch.tensor(valid_length).reshape(-1, *([1] * (q.ndim - 1)))
        mask = keep if not causal else keep & torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).tril()
    out = F.scaled_dot_product_attention(tq, tk, tv, attn_mask=mask, is_causal=causal and mask is None, scale=scale)
    out.backward(torch.tensor(head))
    return out.detach().numpy(), [t.grad.numpy() for t in (tq, tk, tv)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("lengths", [None, [150, 97]])
def test_attention_matches_torch(dtype, causal, lengths):
    rng = np.random.default_rng(3)
    q = rng.standard_normal((2, 3, 130, 16)).astype(dtype)
    k = rng.standard_normal((2, 3, 150, 16)).astype(dtype)
    v = rng.standard_normal((2, 3, 150, 24)).astype(dtype)
    head = rng.standard_normal((2, 3, 130, 24)).astype(dtype)
    out, grads = _run(q, k, v, lengths, causal, head=head)
    tout, tgrads = _torch(q, k, v, lengths, causal, head=head)
    tol = dict(rtol=2e-4, atol=2e-5) if dtype == "float32" else dict(rtol=1e-10, atol=1e-11)
    np.testing.assert_allclose(out, tout, **tol)
    for name, g, tg in zip("qkv", grads, tgrads):
        np.testing.assert_allclose(g, tg, **tol, err_msg=f"d{name}")


@pytest.mark.parametrize("causal, lengths", [(True, None), (False, [3, 5]), (True, [2, 4])])
def test_attention_second_derivative_matches_torch(causal, lengths):
    """The recorded backward (op by op, with the broadcast masks) against
    torch's math written out: causal, valid lengths, and both."""
    rng = np.random.default_rng(4)
    q, k, v = (rng.standard_normal((2, 5, 4)) for _ in range(3))
    lq, lk, lv = (lm.nd.array(a) for a in (q, k, v))
    vl = None if lengths is None else lm.nd.array(np.asarray(lengths, dtype=np.int64))
    lq.attach_grad()
    with lm.autograd.record():
        out = lm.nd.scaled_dot_product_attention(lq, lk, lv, vl, causal=causal)
        (gq,) = lm.autograd.grad([(out * out).sum()], [lq], create_graph=True)
        z = (gq * gq).sum()
    z.backward()
    tq = torch.tensor(q, requires_grad=True)
    # torch's fused kernels have no double backward: its math, written out
    scores = tq @ torch.tensor(k).transpose(-1, -2) / 2.0
    keep = torch.ones(2, 5, 5, dtype=torch.bool)
    if causal:
        keep &= torch.ones(5, 5, dtype=torch.bool).tril()
    if lengths is not None:
        keep &= (torch.arange(5) < torch.tensor(lengths).reshape(2, 1, 1))
    scores = scores.masked_fill(~keep, float("-inf"))
    tout = torch.softmax(scores, -1) @ torch.tensor(v)
    (tgq,) = torch.autograd.grad((tout * tout).sum(), tq, create_graph=True)
    (tgq * tgq).sum().backward()
    np.testing.assert_allclose(lq.grad.asnumpy(), tq.grad.numpy(), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("call, match", [
    (lambda: lm.nd.scaled_dot_product_attention(lm.nd.zeros((2, 4, 8)), lm.nd.zeros((2, 5, 7)), lm.nd.zeros((2, 5, 8))),
     r"k's last dim must equal q's \(8\)"),
    (lambda: lm.nd.scaled_dot_product_attention(lm.nd.zeros((2, 4, 8)), lm.nd.zeros((3, 5, 8)), lm.nd.zeros((3, 5, 8))),
     r"must have the same leading dims"),
    (lambda: lm.nd.scaled_dot_product_attention(lm.nd.zeros((2, 4, 8)), lm.nd.zeros((2, 5, 8)), lm.nd.zeros((2, 5, 8)),
                                                lm.nd.array(np.array([3, 0]))).asnumpy(),
     r"valid_length must be >= 1"),
])
def test_attention_errors_name_the_op(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("causal", [False, True])
def test_a_negative_scale_is_taken_as_given(causal):
    """Any finite scale, as torch takes it (0 still stands for 1/sqrt(D)).
    The masks apply after scaling, so a negative factor cannot turn a
    masked -inf into +inf. torch's own fused is_causal path gives NaN here,
    so the reference passes the causal mask explicitly (with valid_length)."""
    rng = np.random.default_rng(5)
    q, k, v = (rng.standard_normal((2, 70, 16)) for _ in range(3))
    head = rng.standard_normal((2, 70, 16))
    out, grads = _run(q, k, v, [70, 41], causal, scale=-0.3, head=head)
    tout, tgrads = _torch(q, k, v, [70, 41], causal, scale=-0.3, head=head)
    np.testing.assert_allclose(out, tout, rtol=1e-10, atol=1e-11)
    for name, g, tg in zip("qkv", grads, tgrads):
        np.testing.assert_allclose(g, tg, rtol=1e-10, atol=1e-11, err_msg=f"d{name}")
    with pytest.raises(ValueError, match="scale must be finite"):
        lm.nd.scaled_dot_product_attention(lm.nd.array(q), lm.nd.array(k), lm.nd.array(v), scale=float("inf"))
