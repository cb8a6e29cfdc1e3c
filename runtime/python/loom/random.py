"""Random arrays (lm.random / lm.nd.random, MXNet's names), reproducible with
lm.random.seed(n).

Values come from a counter-based generator, Philox4x32-10, computed on the
array's own device (runtime/random/): element i of a call is a function of
the seed and of its position offset + i in the stream, so the same seed
gives the same values on the CPU and on a GPU, however many threads draw
them. Each call advances the offset by the number of elements it drew. The
stream lives in C++ (runtime/random/generator.h), shared with loom::op's
random ops and the graphs that call them."""
from __future__ import annotations

import numpy as np

from loom import _C


def seed(n: int) -> None:
    """Restarts the stream: the arrays drawn afterwards repeat."""
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
        raise TypeError(f"random.seed: expected an integer seed, got {type(n).__name__}")
    _C.random_seed(int(n) % 2**64)


def get_state() -> tuple[int, int]:
    """(seed, offset): pass to set_state to replay what follows."""
    return _C.random_state()


def set_state(state: tuple[int, int]) -> None:
    _C.random_set_state(int(state[0]) % 2**64, int(state[1]))


def _reserve(count: int) -> tuple[int, int]:
    """(seed, offset) for `count` draws, the stream advanced past them: for
    ops that draw inside their kernel (lm.nd.dropout)."""
    return _C.random_reserve(int(count))


def _reserve_for_op(count: int) -> tuple[int, int]:
    """_reserve's (seed, offset) as the seeded ops (dropout_seeded,
    shuffle_seeded) take them: their int attributes are signed 64-bit, so
    the seed's bits reinterpreted."""
    seed, offset = _reserve(count)
    return (seed - (1 << 64) if seed >= (1 << 63) else seed), offset


def _shape(shape) -> list[int]:
    return [int(shape)] if isinstance(shape, (int, np.integer)) else [int(s) for s in shape]


# The draws are the generated ops opdefs/random/random.yaml declares
# (lm.nd.random_uniform, ...); these keep MXNet's argument order.
def uniform(low=0.0, high=1.0, shape=(1,), dtype="float32", ctx=None, out=None):
    """Values in [low, high)."""
    return _C.ops.random_uniform(float(low), float(high), _shape(shape), dtype, ctx, out=out)


def normal(loc=0.0, scale=1.0, shape=(1,), dtype="float32", ctx=None, out=None):
    """Gaussian values with mean loc and standard deviation scale."""
    return _C.ops.random_normal(float(loc), float(scale), _shape(shape), dtype, ctx, out=out)


def randn(*shape, dtype="float32", ctx=None):
    return normal(0.0, 1.0, shape, dtype, ctx)


def randint(low, high, shape=(1,), dtype="int32", ctx=None, out=None):
    """Integers in [low, high)."""
    return _C.ops.random_randint(int(low), int(high), _shape(shape), dtype, ctx, out=out)


def bernoulli(p=0.5, shape=(1,), dtype="float32", ctx=None, out=None):
    """1 with probability p, else 0 (dropout masks)."""
    return _C.ops.random_bernoulli(float(p), _shape(shape), dtype, ctx, out=out)


def exponential(scale=1.0, shape=(1,), dtype="float32", ctx=None, out=None):
    """Exponential values with mean `scale` (MXNet's parameterisation; the
    op random_exponential takes the rate, 1 / scale)."""
    if not scale > 0:
        raise ValueError(f"random.exponential: scale must be > 0, got {scale}")
    return _C.ops.random_exponential(1.0 / float(scale), _shape(shape), dtype, ctx, out=out)


def shuffle(a):
    """A copy of `a` with its first axis permuted (MXNet's random.shuffle):
    the shuffle_seeded op at the stream's position, which it advances by one
    draw per row, so a seed repeats the permutation on any device."""
    if a.ndim == 0:
        raise ValueError("random.shuffle: a 0-d array has no axis to shuffle")
    return _C.ops.shuffle_seeded(a, *_reserve_for_op(a.shape[0]))
