"""Checking gradients against central finite differences (float64).

    lm.autograd.gradcheck(lambda x, y: x * y, [np.random.rand(3), np.random.rand(3)])

`fn` takes NDArrays and returns one NDArray. The check contracts the output
with a fixed random cotangent v, so one backward pass gives the full
vector-Jacobian product, and compares it with (f(x + eps) - f(x - eps)) / 2eps
of <fn(x), v> for every element of every input. `gradgradcheck` does the same
for the gradient function itself (create_graph=True), i.e. the second
derivatives that make higher-order autograd trustworthy.
"""
from __future__ import annotations

import numpy as np

__all__ = ["gradcheck", "gradgradcheck", "GradcheckError"]


class GradcheckError(AssertionError):
    """An analytic gradient differs from the finite-difference one."""


def _arrays(values, requires):
    from loom import nd
    out = []
    for v, r in zip(values, requires):
        if v is None:  # an optional array argument not given
            out.append(None)
            continue
        a = nd.array(np.asarray(v), dtype=np.asarray(v).dtype)
        if r:
            a.attach_grad()
        out.append(a)
    return out


def _forward(fn, values) -> np.ndarray:
    from loom import nd
    arrays = [None if v is None else nd.array(v, dtype=v.dtype) for v in values]
    return np.asarray(fn(*arrays).asnumpy(), dtype=np.float64)


def _numeric(scalar_fn, values, which, eps):
    """d scalar_fn / d values[i] for i in which, by central differences."""
    grads = []
    for i in which:
        g = np.zeros_like(values[i], dtype=np.float64)
        flat = values[i].reshape(-1)
        for j in range(flat.size):
            old = flat[j]
            flat[j] = old + eps
            plus = scalar_fn(values)
            flat[j] = old - eps
            minus = scalar_fn(values)
            flat[j] = old
            g.reshape(-1)[j] = (plus - minus) / (2 * eps)
        grads.append(g)
    return grads


def _compare(what, analytic, numeric, names, atol, rtol):
    for name, a, n in zip(names, analytic, numeric):
        if a.shape != n.shape:
            raise GradcheckError(f"{what} for {name}: shape {a.shape}, expected {n.shape}")
        bad = ~np.isclose(a, n, atol=atol, rtol=rtol, equal_nan=True)
        if bad.any():
            k = np.flatnonzero(bad)[0]
            idx = np.unravel_index(k, a.shape) if a.shape else ()
            raise GradcheckError(
                f"{what} for {name} differs at index {idx}: analytic {a.reshape(-1)[k]!r}, "
                f"finite differences {n.reshape(-1)[k]!r} ({int(bad.sum())} of {a.size} elements "
                f"off; atol={atol}, rtol={rtol})")


def _prepare(inputs, wrt):
    # Floating inputs become float64; integer ones (indices) stay integers,
    # and only floating inputs can be differentiated. None (an optional
    # array argument not given) is passed through as None.
    values = [None if v is None else np.array(v) if np.asarray(v).dtype.kind in "iub"
              else np.array(v, dtype=np.float64) for v in inputs]
    which = ([i for i in range(len(values)) if values[i] is not None and values[i].dtype == np.float64]
             if wrt is None else list(wrt))
    for i in which:
        if values[i] is None:
            raise ValueError(f"gradcheck: input {i} is None and has no gradient")
        if values[i].dtype != np.float64:
            raise ValueError(f"gradcheck: input {i} holds {values[i].dtype} values; only floating inputs "
                             "have gradients")
    return values, which


def _first_order(fn, values, which, v, create_graph=False):
    from loom import autograd
    arrays = _arrays(values, [i in which for i in range(len(values))])
    from loom import nd
    with autograd.record():
        out = fn(*arrays)
        if not out.requires_grad:
            return arrays, [nd.zeros(arrays[i].shape, dtype="float64") for i in which]
        grads = autograd.grad(out, [arrays[i] for i in which], head_grads=nd.array(v, dtype="float64"),
                              create_graph=create_graph, retain_graph=create_graph)
    return arrays, grads


def gradcheck(fn, inputs, wrt=None, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              seed: int = 0, names=None) -> bool:
    """Checks the gradients of `fn` w.r.t. inputs[i] for i in `wrt` (default:
    all). Raises GradcheckError naming the input and the first bad element."""
    values, which = _prepare(inputs, wrt)
    names = names or [f"input {i}" for i in range(len(values))]
    out = _forward(fn, values)
    v = np.random.default_rng(seed).standard_normal(out.shape)
    _, grads = _first_order(fn, values, which, v)
    analytic = [np.asarray(g.asnumpy(), dtype=np.float64) for g in grads]
    numeric = _numeric(lambda vals: float(np.sum(_forward(fn, vals) * v)), values, which, eps)
    _compare("gradient", analytic, numeric, [names[i] for i in which], atol, rtol)
    return True


def gradgradcheck(fn, inputs, wrt=None, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
                  seed: int = 0, names=None) -> bool:
    """Checks the gradients of the gradient: d/dx <grad_x <fn(x), v>, w> for
    fixed random v and w, analytic (create_graph=True) vs finite differences
    of the first-order analytic gradient."""
    from loom import autograd, nd
    values, which = _prepare(inputs, wrt)
    names = names or [f"input {i}" for i in range(len(values))]
    rng = np.random.default_rng(seed)
    v = rng.standard_normal(_forward(fn, values).shape)
    ws = [rng.standard_normal(values[i].shape) for i in which]

    def contracted(vals) -> float:
        _, grads = _first_order(fn, vals, which, v)
        return float(sum(np.sum(g.asnumpy() * w) for g, w in zip(grads, ws)))

    arrays, grads = _first_order(fn, values, which, v, create_graph=True)
    with autograd.record():
        terms = [(g * nd.array(w, dtype="float64")).sum() for g, w in zip(grads, ws) if g.requires_grad]
        total = terms[0] if terms else None
        for t in terms[1:]:
            total = total + t
    if total is None:  # the gradient does not depend on the inputs: second derivatives are zero
        analytic = [np.zeros(values[i].shape) for i in which]
    else:
        second = autograd.grad(total, [arrays[i] for i in which])
        analytic = [np.asarray(g.asnumpy(), dtype=np.float64) for g in second]
    numeric = _numeric(contracted, values, which, eps)
    _compare("second derivative", analytic, numeric, [names[i] for i in which], atol, rtol)
    return True

