"""Reductions, loom against PyTorch: a full sum over 16M float32 (thread
split along the reduction), sums over each axis of a (4096, 4096) matrix
(many short outputs vs. long strided ones), and softmax/log_softmax over
(4096, 1024)."""
from __future__ import annotations

import numpy as np

import loom as lm
from bench.harness import Case


def cases(quick: bool) -> list[Case]:
    try:
        import torch
    except ImportError:
        torch = None
    rng = np.random.default_rng(0)
    flat = rng.standard_normal(16 * 1024 * 1024).astype(np.float32)
    side = 1024 if quick else 4096
    square = rng.standard_normal((side, side)).astype(np.float32)
    lf, ls = lm.nd.array(flat), lm.nd.array(square)
    tf = torch.from_numpy(flat) if torch else None
    ts = torch.from_numpy(square) if torch else None
    out = [
        Case("sum   n=16M", lambda: lm.nd.sum(lf), (lambda: torch.sum(tf)) if torch else None, flat.size),
        Case("max   n=16M", lambda: lm.nd.max(lf), (lambda: torch.max(tf)) if torch else None, flat.size),
        Case("mean  n=16M", lambda: lm.nd.mean(lf), (lambda: torch.mean(tf)) if torch else None, flat.size),
    ]
    for axis in (0, 1):
        out.append(Case(f"sum   ({side}, {side}) dims={axis}", lambda a=axis: lm.nd.sum(ls, dims=a),
                        (lambda a=axis: torch.sum(ts, dim=a)) if torch else None, square.size))
    logits = rng.standard_normal((4096, 1024)).astype(np.float32)
    ll, tl = lm.nd.array(logits), (torch.from_numpy(logits) if torch else None)
    out.append(Case("softmax (4096, 1024) dim -1", lambda: lm.nd.softmax(ll, dim=-1),
                    (lambda: torch.softmax(tl, -1)) if torch else None, logits.size))
    out.append(Case("log_softmax (4096, 1024) dim -1", lambda: lm.nd.log_softmax(ll, dim=-1),
                    (lambda: torch.log_softmax(tl, -1)) if torch else None, logits.size))
    return out
