"""The reference material every op gets from its spec: a Markdown page
(generated/docs/ops/<op>.md, plus an index table) and Python type stubs for
`lm.nd` (runtime/python/loom/nd.pyi, read by IDEs and type checkers).

Both are written by the manifest step, which already depends on every spec
file, so a doc or signature edit refreshes them without touching any
compiled object."""
from __future__ import annotations

from generator.model import ATTR_TYPES, OpDef

KIND_TEXT = {
    "pointwise": "elementwise kernel generated from `kernel.pointwise` (vectorised CPU loop, CUDA kernel)",
    "reduce": "reduction generated from the `kernel.reduce` monoid (CPU and CUDA)",
    "impl": "hand-written kernels (`kernel.impl`)",
    "composite": "composite of other operators (`kernel.composite`); autograd records the operators it calls",
    "view": "a view (`kernel.view`): shares its input's memory, no copy; writes to either show in both",
    "update": "an in-place update (`kernel.update`), one fused pass over same-shaped arrays (CPU and CUDA)",
    "generate": "every element a function of its index (`kernel.generate`), computed on the result's device "
                "(CPU loop, CUDA kernel)",
}


def _py_default(value, type_name: str) -> str:
    if type_name == "int[]":
        return "None" if value is None else repr(list(value))
    if type_name == "device":
        return "None"
    return repr(value)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def python_signature(op: OpDef) -> str:
    params = []
    for a in op.args:
        if a.is_list:  # concat(a, b, ...) or concat([a, b, ...]); the rest keyword-only
            params.append(f"*{a.name}: NDArray | Sequence[NDArray]")
            continue
        if a.kwarg_only and "*" not in params and not op.tensor_list:
            params.append("*")
        ann = "NDArray | None" if a.optional else "NDArray" if a.is_tensor else ATTR_TYPES[a.type][1]
        default = (f" = {_py_default(a.default, a.type)}" if a.has_default else " = None" if a.optional else "")
        params.append(f"{a.name}: {ann}{default}")
    if "out" in op.variants:
        params.append("out: NDArray | None = None" if op.tensor_list or "*" in params
                      else "*, out: NDArray | None = None")
    visible = op.visible_outputs
    if op.list_output is not None:  # as many as the count attribute says
        returns = "list[NDArray]"
    else:
        returns = "NDArray" if len(visible) == 1 else f"tuple[{', '.join(['NDArray'] * len(visible))}]"
    return f"def {op.python_name}({', '.join(params)}) -> {returns}"


def op_page(op: OpDef) -> str:
    lines = [f"# `lm.nd.{op.python_name}`", "", op.doc or "", "",
             "```python", python_signature(op).replace("def ", "lm.nd.") + ": ...", "```", "",
             "| argument | type | default | |", "|---|---|---|---|"]
    for a in op.args:
        default = _py_default(a.default, a.type) if a.has_default else "None" if a.optional else ""
        lines.append(f"| `{a.name}` | {a.type} | {default} | {a.doc} |")
    lines += ["", f"- dtypes: {', '.join(op.dtypes)} (kernels built: {', '.join(op.kernel_dtypes)})",
              f"- kernel: {KIND_TEXT[op.kind]}",
              f"- C++: `loom::op::{op.name}(...)`" + (f", `loom::op::{op.name}_out(out, ...)`" if "out" in op.variants else "")]
    if op.multi_output:
        visible = ", ".join(f"`{o.name}`" + ("" if o.differentiable else " (no gradient)")
                            for o in op.visible_outputs)
        lines.append(f"- returns: {visible}" + (" as a tuple" if len(op.visible_outputs) > 1 else ""))
        hidden = [o.name for o in op.outputs if o.hidden]
        if hidden:
            lines.append(f"- hidden outputs (saved for the backward, not returned): {', '.join(hidden)}")
    if op.python_operators:
        lines.append(f"- NDArray operators: {', '.join(f'`{o}`' for o in op.python_operators)}")
    if op.grads:
        lines.append("- gradient (`grad:`):")
        lines += [f"  - `{name}`: `{_one_line(expr.text)}`" for name, expr in op.grads.items()]
    elif op.kind == "composite":
        lines.append(f"- body: `{_one_line(op.composite.text)}`")
    elif op.kind == "update":
        lines.append(f"- updates in place: {', '.join(op.mutates)}; per element, in order:")
        lines += [f"  - `{name} = {_one_line(e.text)}`" for name, e in op.update.statements]
    elif op.kind == "generate":
        lines.append(f"- element i: `{_one_line(op.generate.body.text)}`")
    if op.nondiff:
        lines.append(f"- not differentiable in: {', '.join(op.nondiff)}")
    if op.kind == "update":
        reference = "NumPy running the statements above"
    elif op.tests.ref is None:  # a random op
        moments = op.tests.attrs["moments"]
        reference = f"same seed, same values; mean `{moments['mean']}`, standard deviation `{moments['std']}`"
    else:
        reference = f"`{_one_line(op.tests.ref.text)}`"
    lines += [f"- tests: `generated/tests/test_{op.name}.py` (reference: {reference})",
              f"- spec: `{op.file}:{op.line}`", ""]
    return "\n".join(lines)


def index_page(ops: list[OpDef]) -> str:
    lines = ["# Operators", "", f"{len(ops)} operators, each generated from its YAML under `opdefs/`.", "",
             "| op | kind | dtypes | differentiable | summary |", "|---|---|---|---|---|"]
    for op in sorted(ops, key=lambda o: o.name):
        diff = "yes" if op.grads or op.kind == "composite" else "no"
        summary = (op.doc.splitlines()[0] if op.doc else "").replace("|", "\\|")
        lines.append(f"| [`{op.python_name}`]({op.name}.md) | {op.kind} | {', '.join(op.kernel_dtypes)} | {diff} | "
                     f"{summary} |")
    return "\n".join(lines) + "\n"


def nd_stub(ops: list[OpDef]) -> str:
    """runtime/python/loom/nd.pyi: the hand-written part of lm.nd plus every op."""
    lines = ['"""Type stubs for lm.nd (generated from opdefs/ by the generator; do not edit)."""',
             "from typing import Any, Sequence", "", "import numpy as np", "", "from loom.context import Device", "",
             "class NDArray:",
             "    shape: tuple[int, ...]", "    dtype: str", "    device: Device", "    ndim: int", "    size: int",
             "    grad: NDArray | None", "    grad_req: str", "    requires_grad: bool", "    T: NDArray",
             "    def asnumpy(self) -> np.ndarray: ...",
             "    def astype(self, dtype: str) -> NDArray: ...",
             "    def to(self, device: Device) -> NDArray: ...",
             "    def reshape(self, *shape: int) -> NDArray: ...",
             "    def broadcast_to(self, shape: list[int]) -> NDArray: ...",
             "    def attach_grad(self, grad_req: str = 'write') -> None: ...",
             "    def detach(self) -> NDArray: ...",
             "    def backward(self, out_grad: NDArray | None = None, retain_graph: bool = False, "
             "train_mode: bool = True, create_graph: bool = False) -> None: ...",
             "    def is_contiguous(self) -> bool: ...",
             "    def __getitem__(self, key: Any) -> NDArray: ...",
             "    def __setitem__(self, key: Any, value: Any) -> None: ..."]
    for op in sorted(ops, key=lambda o: o.name):
        for dunder in op.python_operators:
            unary = dunder in ("__neg__", "__abs__", "__invert__")
            # == and != are elementwise, unlike object's
            ignore = "  # type: ignore[override]" if dunder in ("__eq__", "__ne__") else ""
            lines.append(f"    def {dunder}(self{'' if unary else ', other: Any'}) -> NDArray: ...{ignore}")
        if "method" in op.variants:  # x.exp(), a.matmul(b): the signature without its first argument
            rest = python_signature(op).split("(", 1)[1].split(", ", 1)
            params = rest[1] if len(rest) > 1 else ") -> " + python_signature(op).rsplit(" -> ", 1)[1]
            lines.append(f"    def {op.python_name}(self, {params}: ...".replace("(self, ) ->", "(self) ->"))
    lines += ["", "def array(obj: Any, dtype: str | None = None, ctx: Device | None = None) -> NDArray: ...",
              "def zeros(shape: Any, dtype: str = 'float32', ctx: Device | None = None) -> NDArray: ...",
              "def ones(shape: Any, dtype: str = 'float32', ctx: Device | None = None) -> NDArray: ...",
              "def full(shape: Any, value: Any, dtype: str = 'float32', ctx: Device | None = None) -> NDArray: ...",
              "def empty(shape: Any, dtype: str = 'float32', ctx: Device | None = None) -> NDArray: ...",
              "def zeros_like(a: NDArray) -> NDArray: ...",
              "def ones_like(a: NDArray) -> NDArray: ...",
              "def arange(start: Any, stop: Any = None, step: Any = 1, dtype: str | None = None, "
              "ctx: Device | None = None) -> NDArray: ...",
              "def linspace(start: float, stop: float, num: int = 50, endpoint: bool = True, dtype: str = 'float32', "
              "ctx: Device | None = None) -> NDArray: ...",
              "def eye(n: int, m: int | None = None, k: int = 0, dtype: str = 'float32', "
              "ctx: Device | None = None) -> NDArray: ...",
              "def stop_gradient(a: NDArray) -> NDArray: ...",
              "def dropout(x: NDArray, p: float = 0.5, training: bool | None = None) -> NDArray: ...",
              "def lstm(x: NDArray, weights: Any, h0: NDArray | None = None, c0: NDArray | None = None, "
              "num_layers: int = 1, bidirectional: bool = False) -> Any: ...",
              "def gru(x: NDArray, weights: Any, h0: NDArray | None = None, num_layers: int = 1, "
              "bidirectional: bool = False) -> Any: ...",
              "def rnn(x: NDArray, weights: Any, h0: NDArray | None = None, num_layers: int = 1, "
              "bidirectional: bool = False, nonlinearity: str = 'tanh') -> Any: ...",
              "def waitall() -> None: ...",
              "def save(path: Any, data: Any) -> None: ...",
              "def load(path: Any, ctx: Device | None = None) -> Any: ...", ""]
    for op in sorted(ops, key=lambda o: o.name):
        doc = (op.doc or op.name).replace('"""', "'''")
        lines += [f"{python_signature(op)}:", f'    """{doc}"""', "    ...", ""]
    return "\n".join(lines)
