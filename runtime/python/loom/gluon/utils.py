"""gluon.utils: clip_global_norm."""
from __future__ import annotations

import math

from loom import autograd, nd


def clip_global_norm(arrays, max_norm: float, check_isfinite: bool = True) -> float:
    """Scales `arrays` (gradients) in place so their joint 2-norm is at most
    max_norm; returns the norm before scaling."""
    with autograd.pause():
        total = sum(float(nd.sum(a.astype("float32") * a.astype("float32")).asnumpy()) for a in arrays)
    norm = math.sqrt(total)
    if check_isfinite and not math.isfinite(norm):
        raise ValueError(f"clip_global_norm: the gradients' norm is {norm}")
    if norm > max_norm > 0:
        scale = max_norm / (norm + 1e-8)
        with autograd.pause():
            for a in arrays:
                (a * scale).copyto(a)
    return norm
