"""Eager and autograd overhead from Python, loom against PyTorch: tiny
arrays, so the time is the framework's per-call cost (argument handling,
dispatch, allocation, recording, the backward pass), plus a 3-layer MLP
training step (784-1024-1024-10, batch 256) big enough that the kernels
matter."""
from __future__ import annotations

import numpy as np

import loom as lm
from bench.bench_training import mlp_case
from bench.harness import Case


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
        out.append(mlp_case((784, 1024, 1024, 10), 256, torch))
    return out
