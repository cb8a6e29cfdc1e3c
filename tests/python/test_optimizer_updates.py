"""The fused optimizer updates (opdefs/optimizer/updates.yaml) against
PyTorch's optimizers, step by step: the generated suites check them against
NumPy running the same statements; these check the statements themselves
against an independent implementation. MXNet-style updates keep bias
correction and learning-rate schedules outside the kernel, so each step
passes the equivalent per-step lr/epsilon."""
import math

import numpy as np
import pytest

import loom as lm

torch = pytest.importorskip("torch")

STEPS = 6
RNG = np.random.default_rng(21)
W0 = RNG.standard_normal((5, 7))
GRADS = [RNG.standard_normal((5, 7)) for _ in range(STEPS)]


def run_torch(make_optimizer):
    w = torch.tensor(W0, requires_grad=True)
    opt = make_optimizer([w])
    for g in GRADS:
        w.grad = torch.tensor(g)
        opt.step()
    return w.detach().numpy()


def states(*names):
    return {n: lm.nd.zeros(W0.shape, dtype="float64") for n in names}


@pytest.mark.parametrize("momentum, nesterov, wd", [(0.0, False, 0.0), (0.9, False, 0.01), (0.9, True, 0.01)])
def test_sgd_matches_torch(momentum, nesterov, wd):
    lr = 0.05
    w, s = lm.nd.array(W0), states("mom")
    for g in GRADS:
        if momentum == 0.0:
            lm.nd.sgd_update(w, lm.nd.array(g), lr=lr, wd=wd)
        else:
            lm.nd.sgd_mom_update(w, lm.nd.array(g), s["mom"], lr=lr, momentum=momentum, wd=wd, nesterov=nesterov)
    want = run_torch(lambda p: torch.optim.SGD(p, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=wd))
    np.testing.assert_allclose(w.asnumpy(), want, rtol=1e-12, atol=1e-12)


def run_adam(update, lr, b1, b2, eps, **kwargs):
    """Steps of a loom Adam-family update with PyTorch's bias correction
    folded into lr and epsilon (as MXNet's optimizer does)."""
    w, s = lm.nd.array(W0), states("mean", "var")
    for t, g in enumerate(GRADS, start=1):
        c1, c2 = 1 - b1 ** t, 1 - b2 ** t
        update(w, lm.nd.array(g), s["mean"], s["var"], lr=lr * math.sqrt(c2) / c1, beta1=b1, beta2=b2,
               epsilon=eps * math.sqrt(c2), **kwargs)
    return w.asnumpy()


def test_adam_matches_torch_with_bias_correction_folded_into_lr():
    lr, b1, b2, eps, wd = 0.01, 0.9, 0.999, 1e-8, 0.001
    got = run_adam(lm.nd.adam_update, lr, b1, b2, eps, wd=wd)
    want = run_torch(lambda p: torch.optim.Adam(p, lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd))
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_adamw_matches_torch():
    lr, b1, b2, eps, wd = 0.01, 0.9, 0.99, 1e-8, 0.05
    got = run_adam(lm.nd.adamw_update, lr, b1, b2, eps, wd=lr * wd)  # decoupled decay: lr * wd per step
    want = run_torch(lambda p: torch.optim.AdamW(p, lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd))
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_rmsprop_matches_torch():
    lr, alpha, eps, wd = 0.01, 0.95, 1e-8, 0.01
    w, s = lm.nd.array(W0), states("n")
    for g in GRADS:
        lm.nd.rmsprop_update(w, lm.nd.array(g), s["n"], lr=lr, gamma1=alpha, epsilon=eps, wd=wd)
    want = run_torch(lambda p: torch.optim.RMSprop(p, lr=lr, alpha=alpha, eps=eps, weight_decay=wd))
    np.testing.assert_allclose(w.asnumpy(), want, rtol=1e-10, atol=1e-12)


def test_clipping_and_rescaling_match_torch():
    lr, scale, clip = 0.1, 0.5, 0.3
    w = lm.nd.array(W0)
    for g in GRADS:
        lm.nd.sgd_update(w, lm.nd.array(g), lr=lr, rescale_grad=scale, clip_gradient=clip)
    tw = torch.tensor(W0)
    for g in GRADS:
        tw -= lr * torch.clamp(torch.tensor(g) * scale, -clip, clip)
    np.testing.assert_allclose(w.asnumpy(), tw.numpy(), rtol=1e-12)


def test_a_training_loop_updates_weights_in_place_after_backward():
    """The optimiser pattern: backward under record, then the fused update
    outside it; the weight keeps its identity (and its grad buffer)."""
    x = lm.nd.array(RNG.standard_normal((8, 5)))
    w = lm.nd.array(RNG.standard_normal((5, 1)))
    mom = lm.nd.zeros((5, 1), dtype="float64")
    w.attach_grad()
    losses = []
    for _ in range(20):
        with lm.autograd.record():
            loss = (lm.nd.matmul(x, w) ** 2).mean()
        loss.backward()
        lm.nd.sgd_mom_update(w, w.grad, mom, lr=0.1, momentum=0.5)
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0]


def test_adagrad_matches_torch():
    lr, eps = 0.05, 1e-7
    w, s = lm.nd.array(W0), states("history")
    for g in GRADS:
        lm.nd.adagrad_update(w, lm.nd.array(g), s["history"], lr=lr, epsilon=eps)
    want = run_torch(lambda p: torch.optim.Adagrad(p, lr=lr, eps=eps))
    np.testing.assert_allclose(w.asnumpy(), want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name, kwargs, make_torch", [
    ("sgd", {"momentum": 0.9}, lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9)),
    ("nag", {"momentum": 0.9, "wd": 0.01},
     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("rmsprop", {"gamma1": 0.9}, lambda p: torch.optim.RMSprop(p, lr=0.05, alpha=0.9, eps=1e-8)),
    ("adagrad", {}, lambda p: torch.optim.Adagrad(p, lr=0.05, eps=1e-7)),
])
def test_optimizer_classes_match_torch_over_several_steps(name, kwargs, make_torch):
    """lm.optimizer drives the fused ops with its own state and step count."""
    opt = lm.optimizer.create(name, learning_rate=0.05, **kwargs)
    w = lm.nd.array(W0)
    state = opt.create_state(0, w)
    for g in GRADS:
        opt.update(0, w, lm.nd.array(g), state)
    np.testing.assert_allclose(w.asnumpy(), run_torch(make_torch), rtol=1e-10, atol=1e-12)


def test_adam_class_folds_bias_correction_into_the_step():
    """MXNet's Adam: lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t), epsilon unscaled."""
    opt = lm.optimizer.Adam(learning_rate=0.01, wd=0.001)
    w = lm.nd.array(W0)
    state = opt.create_state(0, w)
    want, m, v = W0.copy(), np.zeros_like(W0), np.zeros_like(W0)
    for t, g in enumerate(GRADS, start=1):
        opt.update(0, w, lm.nd.array(g), state)
        g = g + 0.001 * want
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        want = want - 0.01 * math.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t) * m / (np.sqrt(v) + 1e-8)
    np.testing.assert_allclose(w.asnumpy(), want, rtol=1e-10, atol=1e-12)
    assert opt.num_update == STEPS


def test_unknown_optimizer_and_params_are_named():
    with pytest.raises(ValueError, match="unknown optimizer 'adamax'.*adagrad"):
        lm.optimizer.create("adamax")
    with pytest.raises(ValueError, match=r"SGD: unknown optimizer_params \['betas'\]"):
        lm.optimizer.create("sgd", betas=(0.9, 0.99))
