"""Autograd, loom against PyTorch: forward + backward of small graphs.

n=1 measures the per-node cost of recording and running the backward pass
(the tape, saved tensors, gradient accumulation); larger n measures the
generated backward formulas' kernels. Both frameworks compute the same
gradients (float32) for every leaf, and torch's .grad is reset before each
run so neither accumulates."""
from __future__ import annotations

import numpy as np

import loom as lm
from bench.harness import Case

SIZES = {"1": 1, "64K": 64 * 1024, "1M": 1024 * 1024}


def _loom_chain(x, w, b):
    with lm.autograd.record():
        y = (lm.nd.tanh(x * w + b) * lm.nd.sigmoid(x)).sum()
    y.backward()
    return x.grad


def _torch_chain(torch, x, w, b):
    for t in (x, w, b):
        t.grad = None
    y = (torch.tanh(x * w + b) * torch.sigmoid(x)).sum()
    y.backward()
    return x.grad


def _loom_gelu(x):
    with lm.autograd.record():
        y = lm.nd.gelu(x).mean()
    y.backward()
    return x.grad


def _torch_gelu(torch, x):
    x.grad = None
    y = torch.nn.functional.gelu(x).mean()
    y.backward()
    return x.grad


def cases(quick: bool) -> list[Case]:
    try:
        import torch
    except ImportError:
        torch = None
    sizes = {"1": 1, "1M": SIZES["1M"]} if quick else SIZES
    out = []
    for label, n in sizes.items():
        rng = np.random.default_rng(0)
        xs = [rng.uniform(-2, 2, n).astype(np.float32) for _ in range(3)]
        lx, lw, lb = (lm.nd.array(v) for v in xs)
        for a in (lx, lw, lb):
            a.attach_grad()
        tx, tw, tb = ((torch.from_numpy(v.copy()).requires_grad_()) for v in xs) if torch else (None,) * 3
        out.append(Case(f"tanh(x*w+b)*sigmoid(x) fwd+bwd n={label}",
                        lambda a=(lx, lw, lb): _loom_chain(*a),
                        (lambda a=(tx, tw, tb): _torch_chain(torch, *a)) if torch else None, n))
        out.append(Case(f"gelu(x).mean() fwd+bwd n={label}", lambda a=lx: _loom_gelu(a),
                        (lambda a=tx: _torch_gelu(torch, a)) if torch else None, n))
    return out
