"""Creation and random ops (kernel.generate, opdefs/creation and
opdefs/random), loom against PyTorch (CPU): full, arange and eye, and the
Philox draws (uniform, normal, randint, bernoulli) at 16M elements, each
making a new array. torch's CPU generator is a Mersenne Twister; loom's is
Philox4x32-10, counter-based, the same on a GPU."""
from __future__ import annotations

import loom as lm
from bench.harness import Case

N = 16 * 1024 * 1024


def cases(quick: bool) -> list[Case]:
    try:
        import torch
    except ImportError:
        torch = None
    n = N // 4 if quick else N
    t = torch
    out = [
        Case(f"full {n}", lambda: lm.nd.full((n,), 1.5), (lambda: t.full((n,), 1.5)) if t else None, n),
        Case(f"arange {n}", lambda: lm.nd.arange(0.0, float(n)), (lambda: t.arange(0.0, float(n))) if t else None, n),
        Case("eye 4096", lambda: lm.nd.eye(4096), (lambda: t.eye(4096)) if t else None, 4096 * 4096),
        Case(f"uniform {n}", lambda: lm.random.uniform(0.0, 1.0, (n,)), (lambda: t.rand(n)) if t else None, n),
        Case(f"normal {n}", lambda: lm.random.normal(0.0, 1.0, (n,)), (lambda: t.randn(n)) if t else None, n),
        Case(f"randint int64 {n}", lambda: lm.random.randint(0, 1000, (n,), dtype="int64"),
             (lambda: t.randint(0, 1000, (n,))) if t else None, n),
        Case(f"bernoulli p=0.3 {n}", lambda: lm.random.bernoulli(0.3, (n,)),
             (lambda: t.empty(n).bernoulli_(0.3)) if t else None, n),
    ]
    return out
