"""Training steps of perceptrons (float32): forward, softmax cross-entropy,
backward, SGD update — loom's autograd and generated ops against the same
step in PyTorch. bench_eager reuses mlp_case for its 3-layer MLP."""
from __future__ import annotations

import numpy as np

import loom as lm
from bench.harness import Case

LR = 0.1


def mlp_case(sizes: tuple, batch: int, torch, gpu: bool = False) -> Case:
    """One SGD step of a ReLU perceptron with layer widths `sizes`, on the
    CPU or on GPU 0 (bench_gpu)."""
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    onehot = np.eye(sizes[-1], dtype=np.float32)[rng.integers(0, sizes[-1], batch)]
    init = []
    for i, o in zip(sizes[:-1], sizes[1:]):
        init += [(rng.standard_normal((i, o)) * np.sqrt(2 / i)).astype(np.float32), np.zeros(o, np.float32)]
    ctx = lm.gpu(0) if gpu else lm.cpu()
    params = [lm.nd.array(p, ctx=ctx) for p in init]
    for p in params:
        p.attach_grad()
    x, o = lm.nd.array(x_np, ctx=ctx), lm.nd.array(onehot, ctx=ctx)

    def loom_step():
        with lm.autograd.record():
            h = x
            for k in range(0, len(params) - 2, 2):
                h = lm.nd.relu(h @ params[k] + params[k + 1])
            loss = -(lm.nd.log_softmax(h @ params[-2] + params[-1]) * o).sum() / batch
        loss.backward()
        for p in params:
            p -= p.grad * LR
        return loss.asnumpy()

    torch_step = None
    if torch:
        dev = "cuda" if gpu else "cpu"
        tp = [torch.from_numpy(p.copy()).to(dev).requires_grad_() for p in init]
        tx, to = torch.from_numpy(x_np).to(dev), torch.from_numpy(onehot).to(dev)

        def torch_step():
            for p in tp:
                p.grad = None
            h = tx
            for k in range(0, len(tp) - 2, 2):
                h = torch.relu(h @ tp[k] + tp[k + 1])
            loss = -(torch.log_softmax(h @ tp[-2] + tp[-1], 1) * to).sum() / batch
            loss.backward()
            with torch.no_grad():
                for p in tp:
                    p.sub_(p.grad * LR)
            return loss.item()
    widths = "-".join(str(s) for s in sizes)
    where = " on the GPU" if gpu else ""
    return Case(f"MLP {widths} SGD step, batch {batch}{where}", loom_step, torch_step, batch)


def cases(quick: bool) -> list[Case]:
    try:
        import torch
    except ImportError:
        torch = None
    return [mlp_case((784, 256, 10), 128, torch)]
