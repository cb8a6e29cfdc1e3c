"""Executors: a symbol bound to arrays (Symbol.bind / simple_bind).

    ex = net.simple_bind(lm.cpu(), data=(32, 784))
    ex.forward(is_train=True, data=batch)     # copies batch into arg_dict["data"]
    ex.backward()                              # gradients into grad_dict
    ex.outputs[0].asnumpy()

The graph runs on the C++ executor (runtime/graph/executor.h): every node
is the same operator call the imperative API makes, so the results equal
lm.nd's bit for bit."""
from __future__ import annotations

import numpy as np

from loom import _C

NDArray = _C.NDArray


def _by_name(what: str, values, names: list[str], required: bool):
    if values is None:
        if required and names:
            raise ValueError(f"bind: {what} missing (expected {names})")
        return [None] * len(names)
    if isinstance(values, dict):
        unknown = set(values) - set(names)
        if unknown:
            raise ValueError(f"bind: {what} names unknown variables {sorted(unknown)} (expected {names})")
        missing = [n for n in names if n not in values]
        if required and missing:
            raise ValueError(f"bind: {what} has no array for {missing}")
        return [values.get(n) for n in names]
    values = list(values)
    if len(values) != len(names):
        raise ValueError(f"bind: {len(values)} {what} for {len(names)} variables {names}")
    return values


class Executor:
    """A symbol with arrays bound to its arguments, gradients and auxiliary states."""

    def __init__(self, symbol, ctx, args, args_grad, grad_req, aux_states):
        from loom.symbol import _grad_reqs
        self._symbol = symbol
        self._ctx = ctx
        names = symbol.list_arguments()
        aux_names = symbol.list_auxiliary_states()
        args = _by_name("args", args, names, required=True)
        grads = _by_name("args_grad", args_grad, names, required=False)
        reqs = _grad_reqs(grad_req, names)
        # A gradient array is what makes a gradient: none given means 'null'.
        reqs = [r if g is not None else "null" for r, g in zip(reqs, grads)]
        aux = _by_name("aux_states", aux_states, aux_names, required=True)
        for what, arrays in (("args", args), ("aux_states", aux)):
            for n, a in zip(names if what == "args" else aux_names, arrays):
                if not isinstance(a, NDArray):
                    raise TypeError(f"bind: {what} '{n}' must be an NDArray, got {type(a).__name__}")
        self._h = _C.graph.Executor(symbol._h, args, grads, reqs, aux)
        self.arg_arrays = args
        self.grad_arrays = grads
        self.aux_arrays = aux
        self.arg_dict = dict(zip(names, args))
        self.grad_dict = {n: g for n, g in zip(names, grads) if g is not None}
        self.aux_dict = dict(zip(aux_names, aux))
        self.grad_req = dict(zip(names, reqs))

    @property
    def outputs(self) -> list[NDArray]:
        return list(self._h.outputs)

    @property
    def output_dict(self) -> dict:
        return dict(zip(self._symbol.list_outputs(), self._h.outputs))

    def forward(self, is_train: bool = False, **inputs) -> list[NDArray]:
        """Runs the graph (asynchronously, as every op does). Keyword arrays
        (NDArray or NumPy) are copied into the bound arguments first."""
        from loom import nd
        for name, value in inputs.items():
            if name not in self.arg_dict:
                raise ValueError(f"forward: no argument named {name!r} (arguments: {list(self.arg_dict)})")
            target = self.arg_dict[name]
            if not isinstance(value, NDArray):
                value = nd.array(np.asarray(value), dtype=target.dtype, ctx=target.device)
            if tuple(value.shape) != tuple(target.shape):
                raise ValueError(f"forward: {name!r} is bound with shape {tuple(target.shape)}, got "
                                 f"{tuple(value.shape)} (reshape() binds new shapes)")
            value.copyto(target)
        return list(self._h.forward(bool(is_train)))

    def backward(self, out_grads=None) -> None:
        """Gradients of the outputs (times `out_grads`; ones when omitted)
        into grad_dict, written or added per grad_req."""
        if out_grads is None:
            out_grads = []
        elif isinstance(out_grads, NDArray):
            out_grads = [out_grads]
        self._h.backward(list(out_grads))

    def memory_stats(self) -> dict:
        """The memory planning report (Symbol.memory_plan) for the bound shapes."""
        names = self._symbol.list_arguments() + self._symbol.list_auxiliary_states()
        arrays = self.arg_arrays + self.aux_arrays
        return self._symbol.memory_plan(type_dict={n: a.dtype for n, a in zip(names, arrays)},
                                        **{n: tuple(a.shape) for n, a in zip(names, arrays)})

    def run_plan(self) -> dict:
        """The memory plan the last forward(is_train=False) ran on: the same
        fields as memory_stats(), for the graph as the executor runs it
        (after its passes; outputs that ops allocate themselves, such as
        those of ops with several outputs, in self_allocated_bytes). Zeros
        before such a forward."""
        return dict(self._h.run_plan())

    def reshape(self, allow_up_sizing: bool = True, **shapes) -> "Executor":
        """An executor for new input shapes (a new batch size) that shares
        every bound array whose shape stays the same (the weights) and makes
        new ones for the rest."""
        from loom import nd
        arg_shapes, _, aux_shapes = self._symbol.infer_shape(
            **{n: tuple(a.shape) for n, a in self.arg_dict.items() if n not in shapes}, **shapes)

        def same_or_new(old, shape):
            if old is None:
                return None
            if tuple(old.shape) == tuple(shape):
                return old
            if not allow_up_sizing and np.prod(shape) > np.prod(old.shape):
                raise ValueError(f"reshape: {tuple(old.shape)} -> {tuple(shape)} grows an array "
                                 "(allow_up_sizing=False)")
            return nd.zeros(shape, dtype=old.dtype, ctx=old.device)

        args = [same_or_new(a, s) for a, s in zip(self.arg_arrays, arg_shapes)]
        grads = [same_or_new(g, s) for g, s in zip(self.grad_arrays, arg_shapes)]
        aux = [same_or_new(a, s) for a, s in zip(self.aux_arrays, aux_shapes)]
        reqs = [self.grad_req[n] for n in self._symbol.list_arguments()]
        return Executor(self._symbol, self._ctx, args, grads, reqs, aux)
