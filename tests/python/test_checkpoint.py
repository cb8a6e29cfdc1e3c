"""lm.autograd.checkpoint: the same values and gradients as the plain
run (dropout masks redrawn alike, parameters found or given), and less
memory held between forward and backward."""
import numpy as np
import pytest

import loom as lm

RNG = np.random.default_rng(11)


def test_checkpointed_segment_gives_the_plain_gradients_with_dropout():
    w1 = lm.nd.array(RNG.standard_normal((4, 5)).astype(np.float32))
    w2 = lm.nd.array(RNG.standard_normal((5, 3)).astype(np.float32))
    x0 = RNG.standard_normal((6, 4)).astype(np.float32)
    results = []
    for checkpointed in (False, True):
        for w in (w1, w2):
            w.attach_grad()
        x = lm.nd.array(x0)
        x.attach_grad()

        def segment(h):
            return lm.nd.dropout(lm.nd.relu(lm.nd.matmul(h, w1)), 0.5)

        lm.random.seed(3)
        with lm.autograd.record():
            h = lm.autograd.checkpoint(segment, x, params=[w1]) if checkpointed else segment(x)
            loss = (lm.nd.matmul(h, w2) ** 2).sum()
        loss.backward()
        results.append([loss.asnumpy(), x.grad.asnumpy(), w1.grad.asnumpy(), w2.grad.asnumpy()])
    assert (results[0][2] != 0).any()
    for plain, ckpt in zip(*results):
        np.testing.assert_array_equal(ckpt, plain)


def test_a_blocks_parameters_are_found_and_data_needs_no_gradient():
    from loom.gluon import nn
    net = nn.HybridSequential()
    net.add(nn.Dense(8, activation="relu", in_units=5), nn.Dense(3, in_units=8))
    net.initialize()
    x = lm.nd.array(RNG.standard_normal((4, 5)).astype(np.float32))  # data: no gradient wanted
    grads = []
    for checkpointed in (False, True):
        with lm.autograd.record():
            y = lm.autograd.checkpoint(net, x) if checkpointed else net(x)
            loss = (y * y).sum()
        loss.backward()
        grads.append({k: p.grad().asnumpy().copy() for k, p in net.collect_params().items()})
    for k in grads[0]:
        np.testing.assert_allclose(grads[1][k], grads[0][k], rtol=1e-6, err_msg=k)
    assert lm.autograd.checkpoint(net, x).shape == (4, 3)  # not recording: just the call


def test_checkpointing_lowers_the_memory_held_for_the_backward():
    """Eight 2 MB layers as four checkpointed pairs: between forward and
    backward only the four segment inputs stay (8 MB), against every
    layer's output (16 MB) without checkpointing; both backwards give the
    same gradients."""
    ws = [lm.nd.array((RNG.standard_normal((512, 512)) / 23).astype(np.float32)) for _ in range(8)]
    for w in ws:
        w.attach_grad()
    x = lm.nd.array(RNG.standard_normal((1024, 512)).astype(np.float32))

    def layers(h, ks):
        for k in ks:
            h = lm.nd.relu(lm.nd.matmul(h, ws[k]))
        return h

    def run(checkpointed):
        lm.nd.waitall()
        before = lm._C.memory_stats(lm.cpu())["in_use"]
        with lm.autograd.record():
            h = x
            for pair in range(4):
                ks = (2 * pair, 2 * pair + 1)
                h = (lm.autograd.checkpoint(lambda v, ks=ks: layers(v, ks), h, params=[ws[k] for k in ks])
                     if checkpointed else layers(h, ks))
            loss = h.sum()
        lm.nd.waitall()
        held = lm._C.memory_stats(lm.cpu())["in_use"] - before
        loss.backward()
        return held, [w.grad.asnumpy().copy() for w in ws]

    held_ckpt, grads_ckpt = run(True)
    held_plain, grads_plain = run(False)
    assert held_ckpt <= 9 * 2 ** 20 and held_plain >= 16 * 2 ** 20, (held_ckpt, held_plain)
    for a, b in zip(grads_ckpt, grads_plain):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_gradients_of_gradients_through_a_checkpoint_match_torch():
    """create_graph=True: the recomputation hangs off the real inputs and its
    gradients are recorded. It used to differentiate detached copies, so a
    gradient penalty lost every term through the segment, silently."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    xn, wn = rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3))
    x, w = lm.nd.array(xn), lm.nd.array(wn)
    x.attach_grad()
    w.attach_grad()
    with lm.autograd.record():
        y = lm.autograd.checkpoint(lambda a: lm.nd.convolution(a, w).tanh(), x, params=[w])
        g = lm.autograd.grad(y.sum(), [x], create_graph=True)[0]
        loss = y.sum() + (g * g).sum()
    loss.backward()
    tx, tw = torch.tensor(xn, requires_grad=True), torch.tensor(wn, requires_grad=True)
    ty = torch.conv2d(tx, tw).tanh()
    tg = torch.autograd.grad(ty.sum(), [tx], create_graph=True)[0]
    (ty.sum() + (tg * tg).sum()).backward()
    np.testing.assert_allclose(w.grad.asnumpy(), tw.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(x.grad.asnumpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
