"""Blocks: the unit networks are built from (MXNet Gluon's Block,
HybridBlock and SymbolBlock).

A Block owns Parameters and child Blocks, registered by assigning them as
attributes; parameter names are structural ("features.0.weight").
HybridBlock.hybridize() moves its forward onto the graph path: the first
call for an input signature traces forward into a graph (lm.cached_op), and
later calls replay it from C++, with results and gradients equal to the
imperative run. export() writes that graph and the parameters, and
SymbolBlock.imports() loads them back as a block."""
from __future__ import annotations

import re
from collections import OrderedDict

from loom import _C
from loom.gluon.parameter import Parameter, running_on

NDArray = _C.NDArray


class Block:
    def __init__(self):
        object.__setattr__(self, "_children", OrderedDict())
        object.__setattr__(self, "_reg_params", OrderedDict())

    def __setattr__(self, name, value):
        if isinstance(value, Block):
            self._children[name] = value
        elif isinstance(value, Parameter):
            self._reg_params[name] = value
        object.__setattr__(self, name, value)

    def register_child(self, block: "Block", name: str | None = None) -> "Block":
        self._children[name if name is not None else str(len(self._children))] = block
        return block

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}("]
        for name, child in self._children.items():
            lines += [f"  ({name}): " + repr(child).replace("\n", "\n  ")]
        return "\n".join(lines) + ")" if self._children else f"{type(self).__name__}()"

    # ------------------------------------------------------------ parameters
    def collect_params(self, select: str | None = None) -> "OrderedDict[str, Parameter]":
        """Every parameter of this block and its children, by structural
        name; `select` keeps the names a regular expression matches."""
        out = OrderedDict()
        self._collect("", out)
        if select is not None:
            pattern = re.compile(select)
            out = OrderedDict((k, v) for k, v in out.items() if pattern.search(k))
        return out

    def _collect(self, prefix: str, out) -> None:
        for name, p in self._reg_params.items():
            out.setdefault(prefix + name, p)
        for name, child in self._children.items():
            child._collect(f"{prefix}{name}.", out)

    def initialize(self, init=None, ctx=None, verbose: bool = False, force_reinit: bool = False) -> None:
        for name, p in self.collect_params().items():
            if p.name == "param":
                p.name = name
            p.initialize(init=init, ctx=ctx, force_reinit=force_reinit)

    def zero_grad(self) -> None:
        for p in self.collect_params().values():
            p.zero_grad()

    def cast(self, dtype: str) -> None:
        """Every parameter to dtype, child by child, so that a block can keep
        its own (BatchNorm stays float32 under half precision)."""
        for child in self._children.values():
            child.cast(dtype)
        for p in self._reg_params.values():
            p.cast(dtype)

    def save_parameters(self, filename: str) -> None:
        from loom import nd
        nd.save(filename, {name: p.data() for name, p in self.collect_params().items()})

    def load_parameters(self, filename: str, ctx=None, allow_missing: bool = False,
                        ignore_extra: bool = False) -> None:
        """Values from save_parameters; missing, extra or mis-shaped names
        raise an error listing them (unless allowed)."""
        from loom import nd
        loaded = nd.load(filename, ctx=ctx)
        params = self.collect_params()
        missing = [k for k in params if k not in loaded]
        extra = [k for k in loaded if k not in params]
        problems = []
        if missing and not allow_missing:
            problems.append(f"missing in the file: {missing}")
        if extra and not ignore_extra:
            problems.append(f"not in the block: {extra}")
        # a deferred parameter's known dims count too (Dense(10) loading a
        # Dense(5) file took its (5, 20) weight silently)
        shaped = [f"{k}: file {tuple(loaded[k].shape)}, block {params[k].shape}" for k in params
                  if k in loaded and not params[k].accepts_shape(loaded[k].shape)]
        if shaped:
            problems.append("shapes differ: " + "; ".join(shaped))
        if problems:
            raise ValueError(f"load_parameters: {filename}: " + "; ".join(problems))
        for k, p in params.items():
            if k in loaded:
                p.set_data(loaded[k])

    # ------------------------------------------------------------ running
    def __call__(self, *args, **kwargs):
        with running_on(_input_device(args, kwargs)):
            return self.forward(*args, **kwargs)

    def forward(self, *args):
        raise NotImplementedError(f"{type(self).__name__}.forward")

    def hybridize(self, active: bool = True, **kwargs) -> None:
        for child in self._children.values():
            child.hybridize(active, **kwargs)

    def summary(self, *inputs) -> None:
        """Runs the block on `inputs` and prints each child's output shape and parameter count."""
        rows = []
        for name, child in self._children.items():
            count = sum(int(_numel(p.shape)) for p in child.collect_params().values() if p.shape)
            rows.append((name, type(child).__name__, count))
        out = self(*inputs)
        width = max([len(f"{n} ({t})") for n, t, _ in rows] + [20])
        print(f"{'Layer':<{width}}  Params")
        for n, t, c in rows:
            print(f"{n + ' (' + t + ')':<{width}}  {c}")
        total = sum(int(_numel(p.shape)) for p in self.collect_params().values() if p.shape)
        shape = tuple(out.shape) if isinstance(out, NDArray) else [tuple(o.shape) for o in out]
        print(f"Output: {shape}; total params: {total}")


def _input_device(args, kwargs):
    """The device of a call's first array input (None without one): the
    parameters' copy on it is the one the call uses."""
    for value in list(args) + list(kwargs.values()):
        if isinstance(value, NDArray):
            return value.device
        if isinstance(value, (list, tuple)):
            found = _input_device(value, {})
            if found is not None:
                return found
    return None


def _is_array_tree(value) -> bool:
    """An NDArray, or a non-empty list/tuple (nested) of them: what a
    hybridized call takes as graph inputs and gives back as outputs (an
    RNN layer's list of states, its (output, states) result)."""
    if isinstance(value, NDArray):
        return True
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(_is_array_tree(v) for v in value)


def _flatten(tree) -> tuple[list, object]:
    """(the arrays of an array tree in order, its format): None for one
    array, else (list or tuple, the formats of its entries)."""
    if isinstance(tree, NDArray):
        return [tree], None
    flat, formats = [], []
    for entry in tree:
        arrays, fmt = _flatten(entry)
        flat += arrays
        formats.append(fmt)
    return flat, (tuple if isinstance(tree, tuple) else list, tuple(formats))


def _regroup(flat, fmt, start: int = 0) -> tuple[object, int]:
    """The tree of `fmt` rebuilt from flat[start:], and where it ended."""
    if fmt is None:
        return flat[start], start + 1
    kind, formats = fmt
    entries = []
    for entry_fmt in formats:
        entry, start = _regroup(flat, entry_fmt, start)
        entries.append(entry)
    return kind(entries), start


def _static_key(value):
    """What a non-array argument contributes to a hybridized block's trace
    key: the value itself when hashable, NumPy arrays by content (their
    repr elides the middle of large arrays, so two different ones shared a
    stale trace), containers entry by entry, else the repr."""
    import numpy as np
    if isinstance(value, NDArray):
        raise TypeError("a hybridized call takes arrays as arguments, or lists and tuples holding only arrays; "
                        f"an array mixed with other values ({type(value).__name__} inside a container) would be "
                        "frozen into the graph")
    if isinstance(value, np.ndarray):
        import hashlib
        return ("ndarray", value.shape, str(value.dtype), hashlib.sha1(np.ascontiguousarray(value).tobytes()).digest())
    if isinstance(value, (list, tuple)):
        return (type(value).__name__,) + tuple(_static_key(v) for v in value)
    if isinstance(value, dict):
        return ("dict",) + tuple(sorted((repr(k), _static_key(v)) for k, v in value.items()))
    try:
        hash(value)
    except TypeError:
        return ("repr", repr(value))
    return (type(value).__name__, value)


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


class HybridBlock(Block):
    """A Block whose forward can run as a traced graph (hybridize())."""

    def __init__(self):
        super().__init__()
        object.__setattr__(self, "_active", False)
        object.__setattr__(self, "_cached", None)
        object.__setattr__(self, "_cached_ops", {})
        object.__setattr__(self, "_last_inputs", None)

    def hybridize(self, active: bool = True, static_alloc: bool = False, static_shape: bool = False,
                  **kwargs) -> None:
        """Traces forward into a graph on the next call and replays it
        afterwards. Calls that autograd does not record (inference) run on
        the graph's memory plan; static_alloc=True keeps the plan's buffers
        between calls instead of taking them from the pool each call.
        (static_shape is accepted for MXNet compatibility: traces are per
        input shape already.)"""
        object.__setattr__(self, "_active", active)
        object.__setattr__(self, "_static_alloc", static_alloc)
        object.__setattr__(self, "_cached", None)
        object.__setattr__(self, "_cached_ops", {})
        super().hybridize(active, **kwargs)

    def __call__(self, *args, **kwargs):
        device = _input_device(args, kwargs)
        with running_on(device):
            return self._call_on_device(device, args, kwargs)

    def _call_on_device(self, device, args, kwargs):
        from loom import cached_op
        if not self._active or cached_op.is_tracing():
            # Inside a hybridized parent's trace, a child is part of that graph.
            return self.forward(*args, **kwargs)
        params = self.collect_params()
        if any(p._data is None for p in params.values()):
            # Deferred initialisation runs imperatively, once; export() may
            # trace these arguments later without running them.
            object.__setattr__(self, "_deferred_call", (device, args, kwargs))
            return self.forward(*args, **kwargs)
        cached, inputs = self._cached_op_for(device, args, kwargs)
        outs = cached(inputs, {name: p.data() for name, p in params.items()})
        fmt = cached.out_format.get(cached.last_key)  # kept with the trace (CachedOp.entry)
        return outs if fmt is None else _regroup(outs, fmt)[0]

    def _cached_op_for(self, device, args, kwargs):
        """(the CachedOp for this call's signature, its flat array inputs),
        remembered as the block's last for export()."""
        # Array arguments (positional or keyword; an array or a nested list of
        # arrays, such as an RNN's states) are graph inputs, keywords after
        # positionals; other values (None for an optional state, flags) choose
        # the trace.
        array_pos = tuple(i for i, a in enumerate(args) if _is_array_tree(a))
        array_keys = tuple(k for k, v in kwargs.items() if _is_array_tree(v))
        static_pos = {i: a for i, a in enumerate(args) if i not in array_pos}
        static = {k: v for k, v in kwargs.items() if k not in array_keys}
        trees = [args[i] for i in array_pos] + [kwargs[k] for k in array_keys]
        flat_trees = [_flatten(t) for t in trees]
        in_formats = tuple(fmt for _, fmt in flat_trees)
        # One trace per device: constants a trace captures live on its device.
        key = (str(device), len(args), array_pos, array_keys, in_formats,
               tuple((i, _static_key(v)) for i, v in static_pos.items()),
               tuple(sorted((k, _static_key(v)) for k, v in static.items())))
        cached = self._cached_ops.get(key)
        if cached is None:
            from loom.cached_op import CachedOp
            n, total = len(array_pos), len(args)
            out_format = {}  # per input signature, the format of forward's result (set when traced)

            def traced(*xs):
                values, start = [], 0
                for fmt in in_formats:
                    value, start = _regroup(xs, fmt, start)
                    values.append(value)
                positional = {**static_pos, **dict(zip(array_pos, values[:n]))}
                out = self.forward(*(positional[i] for i in range(total)), **dict(zip(array_keys, values[n:])),
                                   **static)
                if not _is_array_tree(out):
                    return out  # CachedOp names what is not an array
                flat, out_format["traced"] = _flatten(out)
                return flat[0] if out_format["traced"] is None else flat

            cached = CachedOp(traced, type(self).__name__, getattr(self, "_static_alloc", False))
            cached.out_format = out_format
            self._cached_ops[key] = cached
        inputs = [a for arrays, _ in flat_trees for a in arrays]
        object.__setattr__(self, "_cached", cached)
        object.__setattr__(self, "_last_inputs", inputs)
        object.__setattr__(self, "_deferred_call", None)  # its arrays need not outlive this
        return cached, inputs

    def export(self, path: str, epoch: int = 0) -> tuple[str, str]:
        """Writes path-symbol.json (the traced graph; its inputs are data, or
        data0, data1, ...) and path-%04d.params (parameters as arg:<name>,
        running statistics as aux:<name>). Needs a hybridized call first."""
        from loom import nd
        pending = getattr(self, "_deferred_call", None)
        if self._cached is None and pending is not None and self._active:
            self._cached_op_for(*pending)  # the call that initialised the parameters, traced now
        if self._cached is None or self._last_inputs is None:
            raise RuntimeError(f"export: call hybridize() and run {type(self).__name__} on data first")
        params = self.collect_params()
        symbol = self._cached.symbol(self._last_inputs, {name: p.data() for name, p in params.items()})
        symbol_file, params_file = f"{path}-symbol.json", f"{path}-{epoch:04d}.params"
        symbol.save(symbol_file)
        aux = set(symbol.list_auxiliary_states())
        live = set(symbol.list_arguments()) | aux
        saved = {("aux:" if name in aux else "arg:") + name: p.data() for name, p in params.items() if name in live}
        # constants the trace captured (Python numbers, folded values) travel with the parameters
        for name, value in self._cached.constants(self._last_inputs, {n: p.data() for n, p in params.items()}):
            saved["arg:" + name] = value
        nd.save(params_file, saved)
        return symbol_file, params_file


class SymbolBlock(HybridBlock):
    """A block made from a symbol: `inputs` name its data variables, and
    every other argument or auxiliary state is a Parameter."""

    def __init__(self, outputs, inputs, params: dict | None = None):
        super().__init__()
        names = [i if isinstance(i, str) else i.name for i in (inputs if isinstance(inputs, (list, tuple)) else [inputs])]
        arguments = outputs.list_arguments()
        unknown = [n for n in names if n not in arguments]
        if unknown:
            raise ValueError(f"SymbolBlock: input(s) {unknown} are not variables of the symbol (its arguments: "
                             f"{arguments})")
        object.__setattr__(self, "_symbol", outputs)
        object.__setattr__(self, "_input_names", names)
        others = [n for n in outputs.list_arguments() + outputs.list_auxiliary_states() if n not in names]
        aux = set(outputs.list_auxiliary_states())
        for name in others:
            p = Parameter(name, grad_req="null" if name in aux or name.startswith("_") else "write")
            if params and name in params:
                p.set_data(params[name])
            self._reg_params[name] = p
        object.__setattr__(self, "_program", _C.graph.Program(outputs._h, names + others))
        object.__setattr__(self, "_others", others)
        object.__setattr__(self, "_train_program", None)

    @staticmethod
    def imports(symbol_file: str, input_names, param_file: str | None = None, ctx=None) -> "SymbolBlock":
        from loom import nd, symbol
        sym = symbol.load(symbol_file)
        names = [input_names] if isinstance(input_names, str) else list(input_names)
        params = {}
        if param_file is not None:
            for key, value in nd.load(param_file, ctx=ctx).items():
                params[key.split(":", 1)[1] if ":" in key else key] = value
        return SymbolBlock(sym, names, params)

    def forward(self, *args):
        if len(args) != len(self._input_names):
            raise TypeError(f"SymbolBlock: expects {len(self._input_names)} inputs ({self._input_names}), "
                            f"got {len(args)}")
        from loom import autograd
        values = list(args) + [self._reg_params[n].data() for n in self._others]
        program = self._training_program() if autograd.is_training() else self._program
        outs = program.run(values)
        return outs[0] if len(outs) == 1 else outs

    def _training_program(self):
        """The graph with its batch_norm nodes in training mode (batch
        statistics, running ones updated), for autograd.record(): a block
        exported from a predict-mode trace carries training=False, and
        fine-tuning it kept normalising with the running statistics.
        Dropout a predict-mode trace left out stays out (docs/gluon.md)."""
        if self._train_program is None:
            import json
            from loom import symbol
            graph = json.loads(self._symbol.tojson())
            for node in graph["nodes"]:
                if node.get("op") == "batch_norm" and not (node.get("attrs") or {}).get("training", True):
                    node["attrs"]["training"] = True
            trained = symbol.load_json(json.dumps(graph))
            object.__setattr__(self, "_train_program",
                               _C.graph.Program(trained._h, self._input_names + self._others))
        return self._train_program

    def __call__(self, *args, **kwargs):
        with running_on(_input_device(args, kwargs)):
            return self.forward(*args, **kwargs)
