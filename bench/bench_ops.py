"""Shape, indexing and optimizer operators, loom against PyTorch (CPU):
concat and stack of 8 arrays (4M floats in all), tile, an embedding lookup
(take of 64K tokens from a 32K x 256 table) and its gradient pattern
(index_add), and the fused optimizer steps on a 4M-parameter tensor against
torch.optim (single-tensor and foreach implementations)."""
from __future__ import annotations

import numpy as np

import loom as lm
from bench.harness import Case

N = 4 * 1024 * 1024


def cases(quick: bool) -> list[Case]:
    try:
        import torch
    except ImportError:
        torch = None
    rng = np.random.default_rng(0)
    out = []
    parts = [rng.standard_normal((512, 1024)).astype(np.float32) for _ in range(8)]
    lp = [lm.nd.array(p) for p in parts]
    tp = [torch.from_numpy(p) for p in parts] if torch else None
    out.append(Case("concat 8 x (512, 1024), dim 0", lambda: lm.nd.concat(*lp, dim=0),
                    (lambda: torch.cat(tp, 0)) if torch else None, N))
    out.append(Case("stack 8 x (512, 1024), dim 1", lambda: lm.nd.stack(*lp, dim=1),
                    (lambda: torch.stack(tp, 1)) if torch else None, N))
    out.append(Case("tile (512, 1024) x (2, 2)", lambda: lm.nd.tile(lp[0], [2, 2]),
                    (lambda: tp[0].tile(2, 2)) if torch else None, N))
    table = rng.standard_normal((32768, 256)).astype(np.float32)
    tokens = rng.integers(0, 32768, 65536)
    lt, li = lm.nd.array(table), lm.nd.array(tokens)
    tt, ti = (torch.from_numpy(table), torch.from_numpy(tokens)) if torch else (None, None)
    out.append(Case("take (embedding) 64K rows of 256", lambda: lm.nd.take(lt, li),
                    (lambda: torch.nn.functional.embedding(ti, tt)) if torch else None, 65536 * 256))
    rows = rng.standard_normal((65536, 256)).astype(np.float32)
    lr_, tr_ = lm.nd.array(rows), (torch.from_numpy(rows) if torch else None)
    zeros_l = lm.nd.zeros((32768, 256))
    out.append(Case("index_add 64K rows into 32K x 256", lambda: lm.nd.index_add(zeros_l, li, lr_),
                    (lambda: torch.zeros(32768, 256).index_add_(0, ti, tr_)) if torch else None, 65536 * 256))
    w0 = rng.standard_normal(N).astype(np.float32)
    g0 = rng.standard_normal(N).astype(np.float32)
    lw, lg, lm_, lv = lm.nd.array(w0), lm.nd.array(g0), lm.nd.zeros((N,)), lm.nd.zeros((N,))
    out.append(Case("adam_update 4M params (fused) vs torch Adam", lambda: lm.nd.adam_update(lw, lg, lm_, lv, lr=1e-3),
                    _torch_step(torch, "Adam", w0, g0, foreach=False) if torch else None, N))
    if not quick:
        out.append(Case("adam_update 4M params vs torch Adam foreach", lambda: lm.nd.adam_update(lw, lg, lm_, lv, lr=1e-3),
                        _torch_step(torch, "Adam", w0, g0, foreach=True) if torch else None, N))
        lmom = lm.nd.zeros((N,))
        out.append(Case("sgd_mom_update 4M params vs torch SGD", lambda: lm.nd.sgd_mom_update(lw, lg, lmom, lr=0.01, momentum=0.9),
                        _torch_step(torch, "SGD", w0, g0, foreach=False, momentum=0.9) if torch else None, N))
    return out


def _torch_step(torch, name, w0, g0, foreach, **kwargs):
    w = torch.from_numpy(w0.copy()).requires_grad_()
    w.grad = torch.from_numpy(g0.copy())
    opt = getattr(torch.optim, name)([w], lr=1e-3 if name == "Adam" else 0.01, foreach=foreach, **kwargs)
    return opt.step
