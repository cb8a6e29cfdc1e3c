"""Initialisers: what a Parameter's values start as (MXNet's names). Each is
called with (parameter name, shape) and returns a NumPy array, drawn from
NumPy's generator seeded by lm.random.seed (so a seed replays a network)."""
from __future__ import annotations

import numpy as np


def _rng() -> np.random.Generator:
    from loom import random
    seed, offset = random._reserve(1)  # the next parameter draws different values
    return np.random.default_rng([seed & 0xFFFFFFFF, offset & 0xFFFFFFFF])


def _fans(shape) -> tuple[int, int]:
    if len(shape) < 2:
        return shape[0] if shape else 1, shape[0] if shape else 1
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


class Initializer:
    def __call__(self, name: str, shape) -> np.ndarray:
        # Biases and normalisation offsets start at zero, scales at one, as in Gluon.
        if name.endswith(("bias", "beta", "running_mean")):
            return np.zeros(shape)
        if name.endswith(("gamma", "running_var")):
            return np.ones(shape)
        return self.draw(shape)

    def draw(self, shape) -> np.ndarray:
        raise NotImplementedError


class Constant(Initializer):
    def __init__(self, value: float):
        self.value = value

    def __call__(self, name, shape):
        return self.draw(shape)

    def draw(self, shape):
        return np.full(shape, self.value)


class Zero(Constant):
    def __init__(self):
        super().__init__(0.0)


class One(Constant):
    def __init__(self):
        super().__init__(1.0)


class Uniform(Initializer):
    def __init__(self, scale: float = 0.07):
        self.scale = scale

    def draw(self, shape):
        return _rng().uniform(-self.scale, self.scale, shape)


class Normal(Initializer):
    def __init__(self, sigma: float = 0.01):
        self.sigma = sigma

    def draw(self, shape):
        return _rng().normal(0.0, self.sigma, shape)


class Xavier(Initializer):
    """Glorot & Bengio: uniform or gaussian with variance magnitude / fan,
    fan being 'avg', 'in' or 'out'."""

    def __init__(self, rnd_type: str = "uniform", factor_type: str = "avg", magnitude: float = 3.0):
        self.rnd_type, self.factor_type, self.magnitude = rnd_type, factor_type, magnitude

    def draw(self, shape):
        fan_in, fan_out = _fans(shape)
        factor = {"avg": (fan_in + fan_out) / 2.0, "in": fan_in, "out": fan_out}[self.factor_type]
        scale = np.sqrt(self.magnitude / factor)
        if self.rnd_type == "uniform":
            return _rng().uniform(-scale, scale, shape)
        return _rng().normal(0.0, scale, shape)


class MSRAPrelu(Xavier):
    """He et al.: gaussian with variance 2 / ((1 + slope^2) fan_in)."""

    def __init__(self, factor_type: str = "in", slope: float = 0.25):
        super().__init__("gaussian", factor_type, 2.0 / (1 + slope ** 2))


class Orthogonal(Initializer):
    """A (scaled) orthogonal matrix over (shape[0], prod(shape[1:])): Saxe et al. 2013."""

    def __init__(self, scale: float = 1.414, rand_type: str = "uniform"):
        self.scale, self.rand_type = scale, rand_type

    def draw(self, shape):
        rows, cols = shape[0], int(np.prod(shape[1:]))
        rng = _rng()
        a = rng.uniform(-1.0, 1.0, (rows, cols)) if self.rand_type == "uniform" else rng.normal(0, 1, (rows, cols))
        u, _, vt = np.linalg.svd(a, full_matrices=False)
        q = u if u.shape == (rows, cols) else vt
        return (self.scale * q).reshape(shape)


def create(init) -> Initializer:
    if isinstance(init, Initializer):
        return init
    names = {"zeros": Zero, "zero": Zero, "ones": One, "one": One, "uniform": Uniform, "normal": Normal,
             "xavier": Xavier, "msraprelu": MSRAPrelu, "orthogonal": Orthogonal}
    if isinstance(init, str) and init.lower() in names:
        return names[init.lower()]()
    raise ValueError(f"unknown initializer {init!r} (one of {sorted(names)} or an Initializer)")
