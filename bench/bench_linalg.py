"""Matrix products, loom (OpenBLAS) against PyTorch (its own BLAS): square
GEMMs, a linear layer's shape ((batch*seq, in) @ (in, out)), a batched
product, and matmul forward+backward."""
from __future__ import annotations

import numpy as np

import loom as lm
from bench.harness import Case

SHAPES = {
    "256x256 @ 256x256": ((256, 256), (256, 256)),
    "1024x1024 @ 1024x1024": ((1024, 1024), (1024, 1024)),
    "2048x2048 @ 2048x2048": ((2048, 2048), (2048, 2048)),
    "linear 1120x512 @ 512x2048": ((1120, 512), (512, 2048)),
    "batched 32x(64x64 @ 64x64)": ((32, 64, 64), (32, 64, 64)),
}


def cases(quick: bool) -> list[Case]:
    try:
        import torch
    except ImportError:
        torch = None
    out = []
    for label, (sa, sb) in SHAPES.items():
        if quick and not label.startswith("256"):
            continue
        rng = np.random.default_rng(0)
        a, b = rng.standard_normal(sa).astype(np.float32), rng.standard_normal(sb).astype(np.float32)
        la, lb = lm.nd.array(a), lm.nd.array(b)
        ta, tb = (torch.from_numpy(a), torch.from_numpy(b)) if torch else (None, None)
        flops = 2 * int(np.prod(np.broadcast_shapes(sa[:-2], sb[:-2]) or (1,))) * sa[-2] * sa[-1] * sb[-1]
        out.append(Case(f"matmul {label}", lambda x=la, y=lb: x @ y,
                        (lambda x=ta, y=tb: x @ y) if torch else None, flops))
    # forward + backward of a linear layer's product
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((256, 512)).astype(np.float32), rng.standard_normal((512, 512)).astype(np.float32)
    lx, lw = lm.nd.array(x), lm.nd.array(w)
    lw.attach_grad()

    def loom_step():
        with lm.autograd.record():
            y = (lx @ lw).sum()
        y.backward()
        return lw.grad

    if torch:
        tx, tw = torch.from_numpy(x), torch.from_numpy(w.copy()).requires_grad_()

        def torch_step():
            tw.grad = None
            (tx @ tw).sum().backward()
            return tw.grad
    out.append(Case("matmul 256x512 @ 512x512 fwd+bwd", loom_step, torch_step if torch else None))
    return out
