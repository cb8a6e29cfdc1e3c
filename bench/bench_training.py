"""One training step of a 784-256-10 perceptron (batch 128, float32):
forward, softmax cross-entropy, backward, SGD update — loom's autograd and
generated ops against the same step in PyTorch."""
from __future__ import annotations

import numpy as np

import loom as lm
from bench.harness import Case

BATCH, HIDDEN, LR = 128, 256, 0.1


def cases(quick: bool) -> list[Case]:
    try:
        import torch
    except ImportError:
        torch = None
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((BATCH, 784)).astype(np.float32)
    onehot = np.eye(10, dtype=np.float32)[rng.integers(0, 10, BATCH)]
    init = [(rng.standard_normal((784, HIDDEN)) * 0.05).astype(np.float32), np.zeros(HIDDEN, np.float32),
            (rng.standard_normal((HIDDEN, 10)) * 0.05).astype(np.float32), np.zeros(10, np.float32)]
    params = [lm.nd.array(p) for p in init]
    for p in params:
        p.attach_grad()
    w1, b1, w2, b2 = params
    x, o = lm.nd.array(x_np), lm.nd.array(onehot)

    def loom_step():
        with lm.autograd.record():
            loss = -(lm.nd.log_softmax(lm.nd.relu(x @ w1 + b1) @ w2 + b2) * o).sum() / BATCH
        loss.backward()
        for p in params:
            lm.nd.sub(p, p.grad * LR, out=p)
        return loss.asnumpy()

    torch_step = None
    if torch:
        tp = [torch.from_numpy(p.copy()).requires_grad_() for p in init]
        tx, to = torch.from_numpy(x_np), torch.from_numpy(onehot)

        def torch_step():
            for p in tp:
                p.grad = None
            tw1, tb1, tw2, tb2 = tp
            loss = -(torch.log_softmax(torch.relu(tx @ tw1 + tb1) @ tw2 + tb2, 1) * to).sum() / BATCH
            loss.backward()
            with torch.no_grad():
                for p in tp:
                    p.sub_(p.grad * LR)
            return loss.item()
    return [Case("MLP 784-256-10 SGD step, batch 128", loom_step, torch_step)]
