"""Random arrays (lm.random / lm.nd.random, MXNet's names), reproducible with
lm.random.seed(n).

Samples are drawn on the host by one NumPy PCG64 generator per process and
copied to the array's device; the same seed gives the same arrays on every
machine and device."""
from __future__ import annotations

import numpy as np

_rng = np.random.default_rng()


def seed(n: int) -> None:
    """Restarts the generator: the arrays drawn afterwards repeat."""
    global _rng
    _rng = np.random.default_rng(n)


def _make(values, dtype, ctx):
    from loom import nd
    return nd.array(np.asarray(values), dtype=dtype, ctx=ctx)


def uniform(low=0.0, high=1.0, shape=(1,), dtype="float32", ctx=None):
    return _make(_rng.uniform(low, high, shape), dtype, ctx)


def normal(loc=0.0, scale=1.0, shape=(1,), dtype="float32", ctx=None):
    return _make(_rng.normal(loc, scale, shape), dtype, ctx)


def randn(*shape, dtype="float32", ctx=None):
    return normal(0.0, 1.0, shape, dtype, ctx)


def randint(low, high, shape=(1,), dtype="int32", ctx=None):
    return _make(_rng.integers(low, high, shape), dtype, ctx)


def shuffle(a):
    """A copy of `a` with its first axis permuted."""
    from loom import nd
    return nd.array(_rng.permutation(a.asnumpy()), dtype=a.dtype, ctx=a.device)
