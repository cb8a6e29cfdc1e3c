"""gluon.utils: split_data / split_and_load (data parallelism) and clip_global_norm."""
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


def split_data(data, num_slice: int, batch_axis: int = 0, even_split: bool = True) -> list:
    """`data` cut into num_slice parts along batch_axis. With even_split the
    batch must divide evenly; otherwise the last parts are one shorter."""
    size = data.shape[batch_axis]
    if num_slice < 1:
        raise ValueError(f"split_data: num_slice must be >= 1, got {num_slice}")
    if size < num_slice:
        raise ValueError(f"split_data: a batch of {size} along axis {batch_axis} cannot feed {num_slice} slices")
    if even_split and size % num_slice:
        raise ValueError(f"split_data: a batch of {size} along axis {batch_axis} does not split evenly into "
                         f"{num_slice} slices; use a batch size divisible by {num_slice} or even_split=False")
    step, extra = divmod(size, num_slice)
    bounds, begin = [], 0
    for i in range(num_slice):
        end = begin + step + (1 if i < extra else 0)
        bounds.append((begin, end))
        begin = end
    if num_slice == 1:
        return [data]
    lead = (slice(None),) * (batch_axis % data.ndim)
    return [data[lead + (slice(b, e),)] for b, e in bounds]


def split_and_load(data, ctx_list, batch_axis: int = 0, even_split: bool = True) -> list:
    """`data` (an NDArray or a NumPy array) split along batch_axis, one part
    per device of ctx_list, each part on its device."""
    if not isinstance(data, nd.NDArray):
        data = nd.array(data)
    ctx_list = list(ctx_list)
    if len(ctx_list) == 1:
        return [data.as_in_context(ctx_list[0])]
    return [part.as_in_context(ctx) for part, ctx in zip(split_data(data, len(ctx_list), batch_axis, even_split),
                                                         ctx_list)]
