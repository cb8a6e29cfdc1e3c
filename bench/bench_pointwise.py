"""Pointwise operators, loom against PyTorch: per-call overhead at 1 element,
cache-resident work at 1K and 64K, memory bandwidth at 16M; each with a fresh
output and with out= into a preallocated one (the kernel alone, without the
page faults of a fresh 64 MB output)."""
from __future__ import annotations

import numpy as np

import loom as lm
from bench.harness import Case

SIZES = {"1": 1, "1K": 1024, "64K": 64 * 1024, "16M": 16 * 1024 * 1024}
# (loom name, torch function, torch out= function, arity)
OPS = [
    # A copy measures the machine's memory bandwidth through each framework:
    # the other memory-bound ops at 16M are judged against it.
    ("copy", "clone", "copy_into", 1),
    ("relu", "relu", "clamp_min0", 1),  # torch.relu has no out=; clamp_min(x, 0) is the same op
    ("exp", "exp", "exp", 1),
    ("sigmoid", "sigmoid", "sigmoid", 1),
    ("tanh", "tanh", "tanh", 1),
    ("add", "add", "add", 2),
    ("mul", "mul", "mul", 2),
    ("div", "div", "div", 2),
]


def _torch_fn(torch, name):
    if name == "clamp_min0":
        return lambda x, out=None: torch.clamp_min(x, 0, out=out)
    if name == "copy_into":
        return lambda x, out=None: out.copy_(x)
    return getattr(torch, name)


def cases(quick: bool) -> list[Case]:
    try:
        import torch
    except ImportError:
        torch = None
    sizes = {"1": 1, "16M": SIZES["16M"]} if quick else SIZES
    out = []
    for label, n in sizes.items():
        rng = np.random.default_rng(0)
        x_np = rng.uniform(0.5, 2.0, n).astype(np.float32)
        y_np = rng.uniform(0.5, 2.0, n).astype(np.float32)
        lx, ly, lo = lm.nd.array(x_np), lm.nd.array(y_np), lm.nd.zeros((n,))
        tx = torch.from_numpy(x_np) if torch else None
        ty = torch.from_numpy(y_np) if torch else None
        to = torch.zeros(n) if torch else None
        for name, tname, tout, arity in OPS:
            if quick and name not in ("relu", "add"):
                continue
            lfn = getattr(lm.nd, name)
            largs = (lx,) if arity == 1 else (lx, ly)
            targs = (tx,) if arity == 1 else (tx, ty)
            tfn = _torch_fn(torch, tname) if torch else None
            tofn = _torch_fn(torch, tout) if torch else None
            # bench/run.py times each loom call to completion (waitall).
            out.append(Case(f"{name:<8} n={label}", lambda f=lfn, a=largs: f(*a),
                            (lambda f=tfn, a=targs: f(*a)) if torch else None, n))
            out.append(Case(f"{name:<8} n={label} out=", lambda f=lfn, a=largs, o=lo: f(*a, out=o),
                            (lambda f=tofn, a=targs, o=to: f(*a, out=o)) if torch else None, n))
    return out
