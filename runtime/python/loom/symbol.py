"""lm.sym: symbolic graphs, declared ahead and run through the same operators.

    data = lm.sym.var("data")
    fc = lm.sym.linear(data, name="fc1")            # makes fc1_w (and no bias)
    net = lm.sym.relu(fc)
    net.list_arguments()                            # ['data', 'fc1_w']
    arg_shapes, out_shapes, _ = net.infer_shape(data=(32, 784), fc1_w=(10, 784))
    ex = net.simple_bind(lm.cpu(), data=(32, 784), fc1_w=(10, 784))
    ex.forward(is_train=True, data=batch); ex.backward(); ex.grad_dict["fc1_w"]

Every operator of lm.nd is here under the same name and signature, taking
symbols where it takes arrays (built from the schemas the generator emits
from opdefs/, plus `_scalar`, the number in `sym + 1`). A required array
argument left out becomes a variable named `<node name>_<argument>`, as in
MXNet (`linear(data, name="fc1")` reads `fc1_w`); an optional one left out
is absent. Graphs run on the C++ executor (runtime/graph/executor.h)."""
from __future__ import annotations

import inspect
import numbers

import numpy as np

from loom import _C
from loom.serialization import _DTYPES  # runtime/core/dtype.h's enum order

_G = _C.graph
NDArray = _C.NDArray
_SCHEMAS = {s["name"]: s for s in _G.schemas()}


class Symbol:
    """One or more outputs of a graph's nodes (MXNet's Symbol)."""

    __slots__ = ("_h",)

    def __init__(self, handle):
        self._h = handle

    # ---------------------------------------------------------------- structure
    def list_arguments(self) -> list[str]:
        return self._h.list_arguments()

    def list_outputs(self) -> list[str]:
        return self._h.list_outputs()

    def list_auxiliary_states(self) -> list[str]:
        return self._h.list_auxiliary_states()

    def list_inputs(self) -> list[str]:
        return self.list_arguments() + self.list_auxiliary_states()

    def get_internals(self) -> "Symbol":
        """Every output of every node, in topological order; index by name
        (`internals["fc1_output"]`) to take a sub-network."""
        return Symbol(self._h.internals())

    @property
    def name(self) -> str:
        """The node's name (a symbol with one output)."""
        nodes = self._h.output_nodes()
        if len(nodes) != 1:
            raise ValueError(f"a symbol with {len(nodes)} outputs has no single name ({self.list_outputs()})")
        return nodes[0][0]

    def attr_dict(self) -> dict:
        """{node name: attributes} for the nodes of this symbol's outputs."""
        return {name: dict(attrs) for name, op, attrs, _ in self._h.output_nodes() if op is not None}

    def __len__(self) -> int:
        return self._h.num_outputs()

    def __iter__(self):
        return (self[k] for k in range(len(self)))

    def __getitem__(self, index) -> "Symbol":
        if isinstance(index, str):
            names = self.list_outputs()
            if index not in names:
                raise KeyError(f"no output named {index!r} (outputs: {', '.join(names)})")
            index = names.index(index)
        if not isinstance(index, numbers.Integral):
            raise TypeError(f"symbol index must be an int or an output name, got {type(index).__name__}")
        n = len(self)
        if index < 0:
            index += n
        return Symbol(self._h.output(int(index)))

    def __call__(self, *args, **kwargs) -> "Symbol":
        """Composition: a copy whose variables (by position in
        list_arguments(), or by name) read the given symbols instead:
        `net(data=other)`."""
        names = self.list_arguments()
        if len(args) > len(names):
            raise TypeError(f"compose: {len(args)} positional symbols for {len(names)} arguments ({names})")
        replacements = dict(zip(names, args))
        for key, value in kwargs.items():
            if key in replacements:
                raise TypeError(f"compose: argument {key!r} given twice")
            replacements[key] = value
        for key, value in replacements.items():
            if not isinstance(value, Symbol):
                raise TypeError(f"compose: argument {key!r} must be a Symbol, got {type(value).__name__}")
        return Symbol(self._h.compose({k: v._h for k, v in replacements.items()}))

    def __repr__(self) -> str:
        outs = self.list_outputs()
        return f"<Symbol {outs[0]}>" if len(outs) == 1 else f"<Symbol group [{', '.join(outs)}]>"

    # ---------------------------------------------------------------- inference
    def _infer(self, args, kwargs, what):
        shapes, dtypes = {}, {}
        names = self.list_arguments()
        if len(args) > len(names):
            raise TypeError(f"{what}: {len(args)} positional values for {len(names)} arguments")
        given = dict(zip(names, args))
        given.update(kwargs)
        for key, value in given.items():
            if value is None:
                continue
            if what == "infer_shape":
                shapes[key] = [int(value)] if isinstance(value, numbers.Integral) else [int(d) for d in value]
                if any(d < 0 for d in shapes[key]):
                    raise ValueError(f"{what}: {key}'s shape {tuple(shapes[key])} has a negative dim")
            else:
                dtypes[key] = np.dtype(value).name if value != "bfloat16" else "bfloat16"
        return self._h.infer(shapes, dtypes)

    def infer_shape(self, *args, **kwargs):
        """(argument shapes, output shapes, auxiliary state shapes) from the
        shapes of some variables (by position or name). What cannot be
        inferred yet is None (partial inference); an operator that rejects
        the shapes raises its error, prefixed with the node's name."""
        arg, out, aux, _ = self._infer(args, kwargs, "infer_shape")
        return [s for s, _ in arg], [s for s, _ in out], [s for s, _ in aux]

    infer_shape_partial = infer_shape

    def infer_type(self, *args, **kwargs):
        """(argument dtypes, output dtypes, auxiliary state dtypes) as names.
        Variables default to float32; an output's dtype is known once every
        shape it depends on is (the ops' dtype rules run with their shape rules)."""
        arg, out, aux, _ = self._infer(args, kwargs, "infer_type")
        return [t for _, t in arg], [t for _, t in out], [t for _, t in aux]

    def memory_plan(self, type_dict=None, **shapes) -> dict:
        """Memory planning report (runtime/graph/plan_memory.h) for these
        shapes: bytes with one buffer per value an operator makes
        (unplanned_bytes) and with in-place reuse and co-sharing of buffers
        whose lifetimes do not overlap (planned_bytes), the caller's own
        arguments (external_bytes), and how many values went in place / shared."""
        shapes = {k: [int(v)] if isinstance(v, numbers.Integral) else [int(d) for d in v] for k, v in shapes.items()}
        dtypes = {k: (v if v == "bfloat16" else np.dtype(v).name) for k, v in (type_dict or {}).items()}
        return dict(self._h.memory_plan(shapes, dtypes))

    # ---------------------------------------------------------------- JSON
    def tojson(self) -> str:
        """The graph as versioned JSON (runtime/graph/graph_json.h)."""
        return self._h.to_json()

    def save(self, fname: str) -> None:
        with open(fname, "w", encoding="utf-8") as f:
            f.write(self.tojson())

    # ---------------------------------------------------------------- executors
    def bind(self, ctx=None, args=None, args_grad=None, grad_req="write", aux_states=None):
        """An Executor running this graph on the given arrays (lists in
        list_arguments() order, or dicts by name). Gradients go into
        `args_grad` per `grad_req` ('write', 'add', 'null'; one for all, a
        list, or a dict)."""
        from loom.executor import Executor
        return Executor(self, ctx, args, args_grad, grad_req, aux_states)

    def simple_bind(self, ctx=None, grad_req="write", type_dict=None, **shapes):
        """bind() with arrays made here: zeros shaped by infer_shape(**shapes),
        and gradient arrays for the floating-point arguments."""
        from loom import nd
        from loom.context import cpu
        ctx = ctx if ctx is not None else cpu()
        arg_shapes, _, aux_shapes = self.infer_shape(**shapes)
        arg_types, _, aux_types = self.infer_type(**(type_dict or {}))
        names, aux_names = self.list_arguments(), self.list_auxiliary_states()
        missing = [n for n, s in zip(names + aux_names, arg_shapes + aux_shapes) if s is None]
        if missing:
            raise ValueError(f"simple_bind: cannot infer the shapes of {', '.join(missing)}; give them as keywords")
        args = [nd.zeros(s, dtype=t, ctx=ctx) for s, t in zip(arg_shapes, arg_types)]
        reqs = _grad_reqs(grad_req, names)
        grads = [nd.zeros(s, dtype=t, ctx=ctx) if r != "null" and t in _FLOATING else None
                 for s, t, r in zip(arg_shapes, arg_types, reqs)]
        reqs = [r if g is not None else "null" for r, g in zip(reqs, grads)]
        aux = [nd.zeros(s, dtype=t, ctx=ctx) for s, t in zip(aux_shapes, aux_types)]
        return self.bind(ctx, args, grads, reqs, aux)

    # ---------------------------------------------------------------- arithmetic
    def _binary(self, op: str, other, reflected: bool):
        if isinstance(other, (numbers.Number, np.generic)) and not isinstance(other, Symbol):
            integral = isinstance(other, (numbers.Integral, np.integer)) and not isinstance(other, (bool, np.bool_))
            other = _apply("_scalar", [self], {"value": float(other), "integral": integral}, None)
        elif not isinstance(other, Symbol):
            return NotImplemented
        x, y = (other, self) if reflected else (self, other)
        return _apply(op, [x, y], {}, None)


_FLOATING = {"float32", "float64", "float16", "bfloat16"}


def _grad_reqs(grad_req, names):
    if isinstance(grad_req, str):
        return [grad_req] * len(names)
    if isinstance(grad_req, dict):
        unknown = set(grad_req) - set(names)
        if unknown:
            raise ValueError(f"bind: grad_req names unknown arguments {sorted(unknown)} (arguments: {names})")
        return [grad_req.get(n, "null") for n in names]
    reqs = list(grad_req)
    if len(reqs) != len(names):
        raise ValueError(f"bind: {len(reqs)} grad_reqs for {len(names)} arguments")
    return reqs


def _apply(op: str, inputs, attrs: dict, name: str | None) -> Symbol:
    handles = [None if s is None else s._h for s in inputs]
    return Symbol(_G.Symbol.apply(op, handles, attrs, name or ""))


def _install_operators():
    """Python operators on symbols, from the ops' YAML (python.operators)."""
    for name in _C.list_ops():
        for dunder in _C.op_info(name)["python_operators"]:
            if dunder.startswith("__i"):  # no in-place arithmetic on symbols
                continue
            if dunder in ("__neg__", "__abs__", "__invert__"):
                setattr(Symbol, dunder, (lambda op: lambda self: _apply(op, [self], {}, None))(name))
                continue
            reflected = dunder.startswith("__r") and dunder not in ("__rshift__",)

            def method(self, other, _op=name, _reflected=reflected):
                return self._binary(_op, other, _reflected)
            method.__name__ = dunder
            setattr(Symbol, dunder, method)


def _graph_attr(value):
    """A generate op's dtype and device as its graph node holds them (the
    dtype's enum value, [type, id]); any other value as given."""
    if isinstance(value, _C.Device):
        return [int(value.type), int(value.id)]
    if isinstance(value, str) and value in _DTYPES:
        return _DTYPES.index(value)
    if isinstance(value, type) and issubclass(value, np.generic):
        return _DTYPES.index(np.dtype(value).name)
    return value


def _make_op(schema: dict):
    """lm.sym.<op>: the lm.nd signature, on symbols."""
    op = schema["name"]
    args = schema["args"]
    is_list = any(a["kind"] == "Tensor[]" for a in args)
    named = [a for a in args if a["kind"] != "Tensor[]"]  # by position or keyword, or keyword only
    positional = [a for a in named if not a["kwarg_only"]]

    def fn(*values, name: str | None = None, **kwargs):
        node = name or _G.auto_name(op)
        if is_list:
            items = values[0] if len(values) == 1 and isinstance(values[0], (list, tuple)) else values
            for k, s in enumerate(items):
                if not isinstance(s, Symbol):
                    raise TypeError(f"sym.{op}: array {k} must be a Symbol, got {type(s).__name__}")
            attrs = {}
            for key, value in kwargs.items():
                if key not in {a["name"] for a in named}:
                    raise TypeError(f"sym.{op}: unexpected argument {key!r}")
                attrs[key] = value
            return _apply(op, list(items), attrs, node)
        if len(values) > len(positional):
            keyword = [a["name"] for a in named if a["kwarg_only"]]
            raise TypeError(f"sym.{op}: takes {len(positional)} positional arguments, got {len(values)}"
                            + (f" ({', '.join(keyword)} by keyword only)" if keyword else ""))
        given = {a["name"]: v for a, v in zip(positional, values)}
        for key, value in kwargs.items():
            if key in given:
                raise TypeError(f"sym.{op}: argument {key!r} given twice")
            if key not in {a["name"] for a in named}:
                raise TypeError(f"sym.{op}: unexpected argument {key!r} "
                                f"(arguments: {', '.join(a['name'] for a in named)})")
            given[key] = value
        inputs, attrs = [], {}
        for a in named:
            value = given.get(a["name"])
            if a["kind"] == "attr":
                if a["name"] in given:
                    attrs[a["name"]] = _graph_attr(value)
                continue
            if value is None:
                # MXNet's rule: a missing weight is a variable named after the node.
                value = var(f"{node}_{a['name']}") if a["kind"] == "Tensor" else None
            elif not isinstance(value, Symbol):
                raise TypeError(f"sym.{op}: argument {a['name']!r} must be a Symbol, got {type(value).__name__}")
            inputs.append(value)
        return _apply(op, inputs, attrs, node)

    params = []
    if is_list:
        params.append(inspect.Parameter("arrays", inspect.Parameter.VAR_POSITIONAL))
    for a in named:
        default = a["default"] if a["has_default"] else (None if a["kind"] != "attr" else inspect.Parameter.empty)
        kind = (inspect.Parameter.KEYWORD_ONLY if is_list or a["kwarg_only"]
                else inspect.Parameter.POSITIONAL_OR_KEYWORD)
        params.append(inspect.Parameter(a["name"], kind, default=default))
    params.append(inspect.Parameter("name", inspect.Parameter.KEYWORD_ONLY, default=None))
    try:
        fn.__signature__ = inspect.Signature(params)
    except ValueError:  # a required attribute after a defaulted one: keep *args
        pass
    fn.__name__ = op
    fn.__qualname__ = op
    fn.__doc__ = f"{schema['doc']}\n\nSymbolic: takes and returns Symbols (generated from {schema['source']})."
    return fn


def var(name: str, shape=None, dtype=None) -> Symbol:
    """A variable: an argument of the graph, bound at bind() time."""
    if shape is not None:
        shape = [int(shape)] if isinstance(shape, numbers.Integral) else [int(d) for d in shape]
    if dtype is not None:
        dtype = dtype if dtype == "bfloat16" else np.dtype(dtype).name
    return Symbol(_G.Symbol.variable(name, shape, dtype))


Variable = var


def Group(symbols) -> Symbol:
    """One symbol whose outputs are all of theirs, in order."""
    symbols = list(symbols)
    for s in symbols:
        if not isinstance(s, Symbol):
            raise TypeError(f"Group: expects Symbols, got {type(s).__name__}")
    return Symbol(_G.Symbol.group([s._h for s in symbols]))


def load_json(text: str) -> Symbol:
    return Symbol(_G.Symbol.from_json(text))


def load(fname: str) -> Symbol:
    with open(fname, encoding="utf-8") as f:
        return load_json(f.read())


def _export():
    names = []
    for op, schema in _SCHEMAS.items():
        if op.startswith("_"):
            continue
        globals()[op] = _make_op(schema)
        names.append(op)
    return names


_install_operators()
__all__ = ["Symbol", "var", "Variable", "Group", "load", "load_json"] + _export()
