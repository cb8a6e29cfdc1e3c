"""Eager and autograd overhead from Python, loom against PyTorch: tiny
arrays, so the time is the framework's per-call cost (argument handling,
dispatch, allocation, recording, the backward pass), plus a 3-layer MLP
training step big enough that the kernels matter."""
from __future__ import annotations

import numpy as np

import loom as lm
from bench.harness import Case


def _mlp_cases(torch, quick):
    batch, sizes = 256, (784, 1024, 1024, 10)
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    onehot = np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch)]
    init = []
    for i, o in zip(sizes[:-1], sizes[1:]):
        init += [(rng.standard_normal((i, o)) * np.sqrt(2 / i)).astype(np.float32), np.zeros(o, np.float32)]
    params = [lm.nd.array(p) for p in init]
    for p in params:
        p.attach_grad()
    x, o = lm.nd.array(x_np), lm.nd.array(onehot)

    def loom_step():
        with lm.autograd.record():
            h = x
            for k in range(0, len(params) - 2, 2):
                h = lm.nd.relu(h @ params[k] + params[k + 1])
            loss = -(lm.nd.log_softmax(h @ params[-2] + params[-1]) * o).sum() / batch
        loss.backward()
        for p in params:
            p -= p.grad * 0.01
        return loss.asnumpy()

    torch_step = None
    if torch:
        tp = [torch.from_numpy(p.copy()).requires_grad_() for p in init]
        tx, to = torch.from_numpy(x_np), torch.from_numpy(onehot)

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
                    p.sub_(p.grad * 0.01)
            return loss.item()
    return [Case(f"MLP 784-1024-1024-10 step, batch {batch} ({batch} samples)", loom_step, torch_step, batch)]


def cases(quick: bool) -> list[Case]:
    try:
        import torch
    except ImportError:
        torch = None
    a, b = lm.nd.array([1.0]), lm.nd.array([2.0])
    m = lm.nd.array([[1.0, 2.0], [3.0, 4.0]])
    ta, tb = (torch.tensor([1.0]), torch.tensor([2.0])) if torch else (None, None)
    tm = torch.tensor([[1.0, 2.0], [3.0, 4.0]]) if torch else None
    out = [
        Case("a + b, 1 element", lambda: a + b, (lambda: ta + tb) if torch else None),
        Case("relu, 1 element", lambda: lm.nd.relu(a), (lambda: torch.relu(ta)) if torch else None),
        Case("matmul 2x2", lambda: m @ m, (lambda: tm @ tm) if torch else None),
    ]
    x, w = lm.nd.array([1.0, 2.0, 3.0]), lm.nd.array([0.5, 0.5, 0.5])
    w.attach_grad()

    def loom_autograd():
        with lm.autograd.record():
            y = (x * w).sum()
        y.backward()

    torch_autograd = None
    if torch:
        tx, tw = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.5, 0.5, 0.5], requires_grad=True)

        def torch_autograd():
            tw.grad = None
            (tx * tw).sum().backward()
    out.append(Case("record y = (x * w).sum() + backward, 3 elements", loom_autograd, torch_autograd))
    if not quick:
        out += _mlp_cases(torch, quick)
    return out
