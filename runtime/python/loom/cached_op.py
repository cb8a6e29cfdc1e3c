"""Tracing imperative code into a graph, and running it again: the core of
hybridize (MXNet's CachedOp).

    def forward(x, w):
        return lm.nd.relu(lm.nd.linear(x, w)) * 2
    op = lm.cached_op.CachedOp(forward, "net")
    y = op([x], params={"w": w})        # traced on first use, then replayed

The first call for a given input signature (shapes, dtypes, devices, and
lm.autograd.is_training()) runs `fn` once in abstract evaluation: every op
call records a graph node and no kernel runs (runtime/graph/trace.h). Later
calls replay that graph from C++ (runtime/graph/graph_program.h): the same
op calls `fn` would make, with no Python in between, recorded for autograd
when recording is on, so results and gradients equal the imperative run.

Tracing is honest: reading an array's value in Python while tracing (a
branch on `x.sum().item()`, `asnumpy()`, `bool(x)`) raises an error naming
the traced function and the source line, rather than freezing the branch
taken; so do in-place and out= calls, and arrays made by something the
trace cannot follow. Keep such code imperative (do not hybridize it).
Dropout's mask becomes a graph input drawn afresh on every run, in trace
order from lm.random's stream, so a replay draws what the imperative run
would have."""
from __future__ import annotations

import traceback
from dataclasses import dataclass

from loom import _C

NDArray = _C.NDArray
_G = _C.graph
_tracing: list[str] = []   # what is being traced, innermost last


def _user_frame() -> str:
    """file:line of the innermost frame outside loom's own Python files."""
    import os
    here = os.path.dirname(os.path.abspath(__file__))
    for frame in reversed(traceback.extract_stack()[:-2]):
        if not os.path.abspath(frame.filename).startswith(here):
            return f"{frame.filename}:{frame.lineno}: {frame.line}"
    return "?"


def _guard(name: str, original):
    def method(self, *args, **kwargs):
        if _tracing:
            from loom.errors import LoomValueError
            raise LoomValueError(
                f"{_tracing[-1]}: {name} reads an array's value while the block is traced into a graph "
                f"(at {_user_frame()}); a graph cannot follow a Python branch or number taken from data, so "
                "keep this block imperative (do not hybridize it)")
        return original(self, *args, **kwargs)
    method.__name__ = name
    method.__doc__ = getattr(original, "__doc__", None)
    return method


def install_guards() -> None:
    """Wraps NDArray's value-reading methods (called once by loom/__init__)."""
    for name in ("asnumpy", "item", "tolist", "__bool__", "__float__", "__int__", "__index__", "__array__"):
        original = getattr(NDArray, name, None)
        if original is not None:
            setattr(NDArray, name, _guard(name, original))


def is_tracing() -> bool:
    return bool(_tracing)


# Per active trace: its Tracer and the random masks it takes as inputs.
_frames: list[dict] = []


def random_mask(x, p: float):
    """While tracing: a graph input holding the scaled dropout mask for x,
    which the cached op draws on every run (lm.nd.dropout_mask) in trace
    order, so a replay draws what the imperative run would have drawn."""
    from loom import nd
    frame = _frames[-1]
    mask = nd.empty(x.shape, dtype=x.dtype, ctx=x.device)  # abstract: no memory while tracing
    name = f"_dropout{len(frame['random'])}"
    frame["tracer"].add_variable(name, mask)
    frame["random"].append((name, float(p), tuple(x.shape), x.dtype, x.device))
    return mask


def _abstract_inputs(tracer, inputs) -> tuple[list, list[str]]:
    """Arrays without memory shaped like `inputs`, declared to the tracer as
    the variables data (one input) or data0, data1, ..."""
    from loom import nd
    abstract = [nd.empty(a.shape, dtype=a.dtype, ctx=a.device) for a in inputs]
    names = [f"data{k}" if len(inputs) > 1 else "data" for k in range(len(inputs))]
    for name, a in zip(names, abstract):
        tracer.add_variable(name, a)
    return abstract, names


def trace(fn, inputs, params: dict, what: str):
    """(symbol, input names, parameter names, constants, several outputs?,
    random masks) of fn(*inputs). Inputs become abstract arrays of the same
    shapes; parameters are read as the variables named by their keys."""
    tracer = _G.Tracer(what)
    _tracing.append(what)
    frame = {"tracer": tracer, "random": []}
    _frames.append(frame)
    try:
        abstract, names = _abstract_inputs(tracer, inputs)
        for name, p in params.items():
            tracer.add_variable(name, p)
        out = fn(*abstract)
        multiple = isinstance(out, (list, tuple))
        outs = list(out) if multiple else [out]
        for k, o in enumerate(outs):
            if not isinstance(o, NDArray):
                raise TypeError(f"{what}: output {k} is {type(o).__name__}, not an NDArray")
        symbol, constants = tracer.finish(outs)
    finally:
        _tracing.pop()
        _frames.pop()
        # Ended here, even when an exception's traceback keeps this frame
        # (and the tracer) alive: otherwise the thread stays in abstract
        # evaluation and later arrays have no memory (test_cached_op).
        tracer.end()
    return symbol, names, list(params), constants, multiple, frame["random"]


def trace_gradient(fn, inputs, params: dict, aux: dict | None = None, what: str = "training step"):
    """The training graph of fn(*inputs) -> loss, traced in abstract
    evaluation: (symbol, constants). The symbol's outputs are the loss and
    its gradient with respect to each parameter (in `params` order);
    constants are the arrays it captured (variables _const0, ...: Python
    numbers, arrays from outside). fn is called as
    fn(*inputs, *params.values(), *aux.values()), aux being arrays the ops
    update in place and take no gradient for (batch_norm's running
    statistics). The backward part is the ops' generated backward
    functions, recorded as graph nodes (autograd with create_graph, so every
    gradient step is an operator call). Arguments: data0.. (or data), the
    parameters and aux arrays by name."""
    from loom import autograd
    from loom.symbol import Symbol
    tracer = _G.Tracer(what)
    _tracing.append(what)
    _frames.append({"tracer": tracer, "random": []})
    try:
        abstract, _ = _abstract_inputs(tracer, inputs)
        # Aliases of the parameters (same memory, so the trace finds them by
        # identity) that take gradients here without touching the originals'.
        leaves = []
        for name, p in params.items():
            leaf = p.detach()
            leaf.attach_grad()
            tracer.add_variable(name, leaf)
            leaves.append(leaf)
        aux = aux or {}
        for name, a in aux.items():
            tracer.add_variable(name, a)
        with autograd.record():
            loss = fn(*abstract, *leaves, *aux.values())
        grads = autograd.grad(loss, leaves, create_graph=True) if leaves else []
        symbol, constants = tracer.finish([loss] + list(grads))
    finally:
        _tracing.pop()
        _frames.pop()
        # Ended here, even when an exception's traceback keeps this frame
        # (and the tracer) alive: otherwise the thread stays in abstract
        # evaluation and later arrays have no memory (test_cached_op).
        tracer.end()
    # Constants (Python numbers, arrays from outside) are variables named
    # _const0, ... with their shapes declared, so the graph infers alone;
    # binding it needs their values too. Its batch_norm nodes keep the
    # traced mode under any executor mode: the gradient nodes assume it.
    return Symbol(symbol.with_traced_modes()), dict(constants)


@dataclass
class Trace:
    """What CachedOp keeps per input signature."""
    symbol: object            # lm.symbol.Symbol of the traced graph
    program: object           # the compiled _G.Program that replays it
    param_names: list         # parameters, in the order the program takes them
    constants: dict           # name -> array the graph reads (captured, folded)
    multiple: bool            # fn returned several outputs
    masks: list               # (name, p, shape, dtype, ctx) of each dropout mask drawn per run


class CachedOp:
    """`fn` traced once per input signature and replayed from C++."""

    def __init__(self, fn, what: str = "cached op", static_alloc: bool = False):
        self._fn = fn
        self._what = what
        self._static_alloc = static_alloc
        self._cache: dict = {}

    def _signature(self, inputs, params):
        from loom import autograd
        return (tuple((tuple(a.shape), a.dtype, repr(a.device)) for a in inputs),
                tuple((k, tuple(p.shape), p.dtype) for k, p in params.items()), autograd.is_training())

    def entry(self, inputs, params) -> Trace:
        key = self._signature(inputs, params)
        self.last_key = key  # the signature of the latest call or trace (HybridBlock regroups outputs by it)
        entry = self._cache.get(key)
        if entry is None:
            from loom.symbol import Symbol
            symbol, names, param_names, constants, multiple, masks = trace(self._fn, inputs, params, self._what)
            # What depends only on constants runs once, now, and lone
            # activations fold into the ops that absorb them (simplify.h).
            symbol, constants = _G.fold_constants(symbol, dict(constants))
            symbol = _G.fold_epilogues(symbol)
            live = set(Symbol(symbol).list_arguments())
            constants = {n: c for n, c in constants.items() if n in live}
            variables = names + param_names + list(constants) + [m[0] for m in masks]
            program = _G.Program(symbol, variables)
            program.set_static_alloc(self._static_alloc)
            entry = Trace(Symbol(symbol), program, param_names, constants, multiple, masks)
            self._cache[key] = entry
            formats = getattr(self, "out_format", None)
            if formats is not None and "traced" in formats:  # a HybridBlock's result format, per trace
                formats[key] = formats.pop("traced")
        return entry

    def __call__(self, inputs, params: dict | None = None):
        params = params or {}
        for k, a in enumerate(inputs):
            if not isinstance(a, NDArray):
                raise TypeError(f"{self._what}: input {k} is {type(a).__name__}, not an NDArray")
        t = self.entry(inputs, params)
        from loom import nd
        drawn = [nd.dropout_mask(shape, p, dtype, ctx) for _, p, shape, dtype, ctx in t.masks]
        outs = t.program.run(list(inputs) + [params[n] for n in t.param_names] + list(t.constants.values()) + drawn)
        return outs if t.multiple else outs[0]

    def symbol(self, inputs, params: dict | None = None):
        """The graph traced for these inputs (tracing it if need be)."""
        return self.entry(inputs, params or {}).symbol

    def constants(self, inputs, params: dict | None = None) -> list:
        """(name, array) of the constants the trace for these inputs reads
        (captured arrays, Python numbers, folded values)."""
        return list(self.entry(inputs, params or {}).constants.items())

    def run_plan(self, inputs, params: dict | None = None) -> dict:
        """The memory plan (Symbol.memory_plan's fields) the last run of
        these inputs' trace ran on, when autograd did not record it (zeros
        otherwise): runs that do not record write each planned output into
        one of the plan's buffers."""
        return dict(self.entry(inputs, params or {}).program.run_plan())

    @property
    def num_traces(self) -> int:
        return len(self._cache)
