"""scaled_dot_product_attention's fused GPU kernels
(runtime/kernels/cuda/flash_attention_cuda.cu) against the CPU's blocked
kernel run in float64: outputs and the gradients of q, k and v, over the
shapes the kernels treat specially (lengths that are not multiples of the
64-row tiles, Lq != Lk, D != Dv, head dims over 64, causal masks with more
queries than keys, valid_length, strided inputs), the op-by-op fallback for
head dims over 128, and the memory the fused path saves. Skipped without a
GPU."""
import numpy as np
import pytest

import loom as lm

pytestmark = pytest.mark.skipif(lm.num_gpus() == 0, reason="needs a GPU (none visible to this process)")


def gpu():
    return lm.gpu(0)


def _run(ctx, dtype, arrays, head_grad, valid_length, **attrs):
    """out and (dq, dk, dv) of sum(attention(q, k, v) * head_grad) on ctx."""
    q, k, v = (lm.nd.array(a.astype(dtype), ctx=ctx) for a in arrays)
    for a in (q, k, v):
        a.attach_grad()
    vl = None if valid_length is None else lm.nd.array(np.asarray(valid_length, dtype=np.int64), ctx=ctx)
    w = lm.nd.array(head_grad.astype(dtype), ctx=ctx)
    with lm.autograd.record():
        out = lm.nd.scaled_dot_product_attention(q, k, v, vl, **attrs)
        loss = (out * w).sum()
    loss.backward()
    return [out.asnumpy()] + [a.grad.asnumpy() for a in (q, k, v)]


def _check(q_shape, k_shape, v_shape, valid_length=None, seed=0, rtol=2e-4, atol=2e-5, **attrs):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s) for s in (q_shape, k_shape, v_shape)]
    out_shape = q_shape[:-1] + v_shape[-1:]
    head_grad = rng.standard_normal(out_shape)
    want = _run(lm.cpu(), "float64", arrays, head_grad, valid_length, **attrs)
    got = _run(gpu(), "float32", arrays, head_grad, valid_length, **attrs)
    for name, g, w in zip(("out", "dq", "dk", "dv"), got, want):
        assert g.shape == w.shape, name
        # float32 sums over up to a few hundred keys: bound the error by the
        # array's scale, as the values near zero carry absolute error
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol * max(1.0, np.abs(w).max()),
                                   err_msg=f"{name} for q {q_shape}, k {k_shape}, v {v_shape}, {attrs}")


@pytest.mark.parametrize("causal", [False, True])
def test_flash_attention_gpu_matches_the_cpu_on_whole_tiles(causal):
    _check((2, 3, 128, 64), (2, 3, 128, 64), (2, 3, 128, 64), causal=causal)


@pytest.mark.parametrize("causal", [False, True])
def test_flash_attention_gpu_handles_ragged_lengths_and_unequal_dims(causal):
    # 130 queries (three tiles, the last of 2 rows), 70 keys, D 40, Dv 24;
    # causal with more queries than keys: rows past 70 see every key
    _check((2, 130, 40), (2, 70, 40), (2, 70, 24), causal=causal)
    _check((3, 5, 8), (3, 200, 8), (3, 200, 5), causal=causal)


def test_flash_attention_gpu_head_dims_over_64():
    _check((2, 2, 100, 128), (2, 2, 90, 128), (2, 2, 90, 96), causal=True)
    _check((1, 70, 65), (1, 70, 65), (1, 70, 128))


def test_flash_attention_gpu_valid_length_and_scale():
    # one length per batch entry, shared by its heads; 1 keeps a single key
    _check((3, 2, 90, 32), (3, 2, 90, 32), (3, 2, 90, 32), valid_length=[1, 45, 90], causal=True)
    _check((3, 2, 20, 16), (3, 2, 150, 16), (3, 2, 150, 16), valid_length=[[64, 65], [129, 150], [3, 200]],
           scale=0.3)


def test_flash_attention_gpu_strided_inputs():
    rng = np.random.default_rng(5)
    # (batch, length, heads, dim) swapped to (batch, heads, length, dim): strided views
    arrays = [rng.standard_normal((2, 77, 4, 32)) for _ in range(3)]
    head_grad = rng.standard_normal((2, 4, 77, 32))
    results = []
    for ctx, dtype in ((lm.cpu(), "float64"), (gpu(), "float32")):
        q, k, v = (lm.nd.array(a.astype(dtype), ctx=ctx) for a in arrays)
        for a in (q, k, v):
            a.attach_grad()
        with lm.autograd.record():
            out = lm.nd.scaled_dot_product_attention(*(a.swapaxes(1, 2) for a in (q, k, v)), causal=True)
            loss = (out * lm.nd.array(head_grad.astype(dtype), ctx=ctx)).sum()
        loss.backward()
        results.append([out.asnumpy()] + [a.grad.asnumpy() for a in (q, k, v)])
    for g, w in zip(*reversed(results)):
        np.testing.assert_allclose(g, w, rtol=2e-4, atol=2e-5 * np.abs(w).max())


def test_attention_gpu_past_the_flash_head_dims_runs_op_by_op():
    _check((2, 50, 160), (2, 60, 160), (2, 60, 130), causal=True)


def test_attention_gpu_float16_goes_through_float32():
    rng = np.random.default_rng(2)
    arrays = [rng.standard_normal((2, 2, 100, 64)).astype(np.float16) for _ in range(3)]
    want = lm.nd.scaled_dot_product_attention(*(lm.nd.array(a.astype(np.float64)) for a in arrays), causal=True)
    got = lm.nd.scaled_dot_product_attention(*(lm.nd.array(a, ctx=gpu()) for a in arrays), causal=True)
    assert got.dtype == "float16"
    np.testing.assert_allclose(got.asnumpy().astype(np.float64), want.asnumpy(), rtol=2e-3, atol=2e-3)


def test_flash_attention_gpu_never_holds_the_score_matrix():
    # 16384 x 16384 float32 scores would take 1 GiB; q, k, v and out 4 MiB each
    lm.nd.waitall()
    before = lm._C.memory_stats(gpu())
    q = lm.nd.array(np.random.default_rng(1).standard_normal((1, 1, 16384, 64)).astype(np.float32), ctx=gpu())
    out = lm.nd.scaled_dot_product_attention(q, q, q, causal=True)
    out.wait_to_read()
    peak = lm._C.memory_stats(gpu())["peak"]
    assert peak < max(before["peak"], before["in_use"] + 256 * 2 ** 20), (before, peak)
    np.testing.assert_allclose(out[0, 0, 0].asnumpy(), q[0, 0, 0].asnumpy(), rtol=1e-6)  # row 0 sees key 0 only


def test_flash_attention_gpu_rejects_a_zero_valid_length():
    q = lm.nd.ones((2, 5, 8), ctx=gpu())
    with pytest.raises(lm.LoomError, match="valid_length must be >= 1"):
        lm.nd.scaled_dot_product_attention(q, q, q, lm.nd.array(np.array([3, 0], np.int64), ctx=gpu())).wait_to_read()
