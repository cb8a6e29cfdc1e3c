"""The foundation slice's operators, relu and add, on 1 and 16M float32
elements: per-call overhead at 1 element, memory bandwidth at 16M, each with
a fresh output and with out= into a preallocated one."""
from __future__ import annotations

import numpy as np

import loom as lm
from bench.harness import Case


def cases(quick: bool) -> list[Case]:
    try:
        import torch
    except ImportError:
        torch = None
    out = []
    for n in (1, 16 * 1024 * 1024):
        rng = np.random.default_rng(0)
        x_np = rng.standard_normal(n).astype(np.float32)
        y_np = rng.standard_normal(n).astype(np.float32)
        lx, ly = lm.nd.array(x_np), lm.nd.array(y_np)
        tx = torch.from_numpy(x_np) if torch else None
        ty = torch.from_numpy(y_np) if torch else None
        label = "1" if n == 1 else "16M"
        # Each loom call is synchronous today; when the engine makes it
        # asynchronous, these lambdas must wait (wait_to_read) before returning.
        out.append(Case(f"relu  n={label}", lambda lx=lx: lm.nd.relu(lx),
                        (lambda tx=tx: torch.relu(tx)) if torch else None, n))
        out.append(Case(f"add   n={label}", lambda lx=lx, ly=ly: lm.nd.add(lx, ly),
                        (lambda tx=tx, ty=ty: torch.add(tx, ty)) if torch else None, n))
        # out= into a preallocated array: the kernel alone, without the
        # page faults of a fresh output buffer (which dominate at 16M).
        # torch.relu has no out=; clamp_min(x, 0) is the same operation.
        lo = lm.nd.zeros((n,))
        to = torch.zeros(n) if torch else None
        out.append(Case(f"relu  n={label} out=", lambda lx=lx, lo=lo: lm.nd.relu(lx, out=lo),
                        (lambda tx=tx, to=to: torch.clamp_min(tx, 0, out=to)) if torch else None, n))
        out.append(Case(f"add   n={label} out=", lambda lx=lx, ly=ly, lo=lo: lm.nd.add(lx, ly, out=lo),
                        (lambda tx=tx, ty=ty, to=to: torch.add(tx, ty, out=to)) if torch else None, n))
    return out
