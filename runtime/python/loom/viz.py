"""lm.viz: a symbol as a picture (Graphviz) and as a table of layers.

    lm.viz.print_summary(net, shape={"data": (1, 1, 28, 28)})
    lm.viz.plot_network(net, shape={"data": (1, 1, 28, 28)}).render("lenet.pdf")

Both read the graph the symbol describes (its JSON) and the shapes that
shape inference gives; `dot` (Debian's graphviz package) renders."""
from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np

# Node colours by kind of operator, as in MXNet's plot_network.
_COLOURS = {"convolution": "#fb8072", "deconvolution": "#fb8072", "linear": "#fb8072", "matmul": "#fb8072",
            "batch_norm": "#bebada", "layer_norm": "#bebada", "group_norm": "#bebada", "max_pool": "#80b1d3",
            "avg_pool": "#80b1d3", "adaptive_avg_pool": "#80b1d3", "relu": "#ffffb3", "sigmoid": "#ffffb3",
            "tanh": "#ffffb3", "gelu": "#ffffb3", "silu": "#ffffb3", "softmax": "#fccde5",
            "softmax_cross_entropy": "#fccde5", "reshape": "#fdb462", "flatten": "#fdb462", "concat": "#fdb462"}


def _graph(symbol, shape: dict | None):
    """(nodes, shape of each (node index, output)) of a symbol. The JSON's
    nodes and get_internals() both come in the graph's topological order,
    every output of a node in turn."""
    from loom import _C
    doc = json.loads(symbol.tojson())
    shapes = {}
    if shape:
        internals = symbol.get_internals()
        _, out_shapes, _ = internals.infer_shape(**shape)
        schemas = {s["name"]: s for s in _C.graph.schemas()}
        flat = iter(out_shapes)
        for i, n in enumerate(doc["nodes"]):
            for k in range(_num_outputs(n, schemas)):
                shapes[(i, k)] = next(flat)
    return doc["nodes"], shapes


def _num_outputs(node: dict, schemas: dict) -> int:
    """How many outputs a JSON node has: one for a variable, the schema's
    outputs, or what its count attribute says (split's num_outputs, or the
    length of split_with_sizes' sizes)."""
    if node["op"] is None:
        return 1
    schema = schemas[node["op"]]
    count = schema["output_count_attr"]
    if not count:
        return len(schema["outputs"])
    value = node["attrs"][count]
    return len(value) if isinstance(value, list) else int(value)


def _is_input(name: str) -> bool:
    """Data and labels, as MXNet names them; every other variable is a parameter."""
    return name.startswith(("data", "label")) or name.endswith(("_data", "_label"))


class Diagram:
    """DOT source for a symbol; render() writes a file through Graphviz's dot."""

    def __init__(self, source: str):
        self.source = source

    def __str__(self) -> str:
        return self.source

    def render(self, path: str, format: str | None = None) -> str:
        dot = shutil.which("dot")
        if dot is None:
            raise RuntimeError("lm.viz: rendering needs Graphviz's `dot` (apt-get install graphviz); the DOT "
                               "source is in .source")
        fmt = format or (path.rsplit(".", 1)[-1] if "." in path else "pdf")
        subprocess.run([dot, f"-T{fmt}", "-o", path], input=self.source, text=True, check=True)
        return path


def plot_network(symbol, title: str = "plot", shape: dict | None = None, hide_weights: bool = True) -> Diagram:
    """The graph as a Graphviz diagram: one box per operator (coloured by
    kind, labelled with its op and main attributes), edges labelled with
    shapes when `shape` gives the variables'. Parameters (variables not
    named data*/label*) are hidden unless hide_weights=False."""
    nodes, shapes = _graph(symbol, shape)
    shown_vars = {n["name"] for n in nodes if n["op"] is None and (not hide_weights or _is_input(n["name"]))}
    lines = [f'digraph "{title}" {{', '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];']
    visible = set()
    for i, n in enumerate(nodes):
        if n["op"] is None:
            if n["name"] not in shown_vars:
                continue
            label, colour = n["name"], "#8dd3c7"
        else:
            attrs = {k: v for k, v in n.get("attrs", {}).items() if k in ("kernel", "stride", "padding", "groups",
                                                                        "dims", "shape", "num_groups")}
            detail = "\\n".join(f"{k}={v}" for k, v in attrs.items())
            label = f"{n['op']}\\n{n['name']}" + (f"\\n{detail}" if detail else "")
            colour = _COLOURS.get(n["op"], "#d9d9d9")
        visible.add(i)
        lines.append(f'  n{i} [label="{label}", fillcolor="{colour}"];')
    for i, n in enumerate(nodes):
        if i not in visible or n["op"] is None:
            continue
        for inp in n.get("inputs", []):
            if inp is None or inp[0] not in visible:
                continue
            s = shapes.get((inp[0], inp[1]))
            label = f' [label="{"x".join(str(d) for d in s)}"]' if s else ""
            lines.append(f"  n{inp[0]} -> n{i}{label};")
    lines.append("}")
    return Diagram("\n".join(lines) + "\n")


def print_summary(symbol, shape: dict | None = None, line_length: int = 100) -> int:
    """Prints each operator node with its output shape, its parameters
    (variables not named data*/label*, counted once, sized by `shape`) and
    what it reads; returns the total number of parameters."""
    nodes, shapes = _graph(symbol, shape)
    cols = [0.32, 0.6, 0.75, 1.0]
    pos = [int(line_length * c) for c in cols]

    def row(fields):
        out = ""
        for f, p in zip(fields, pos):
            out = (out + str(f))[:p].ljust(p)
        print(out.rstrip())

    print("_" * line_length)
    row(["Layer (type)", "Output Shape", "Param #", "Previous Layer"])
    print("=" * line_length)
    total, counted = 0, set()
    for i, n in enumerate(nodes):
        if n["op"] is None:
            continue
        params = 0
        previous = []
        for inp in n.get("inputs", []):
            if inp is None:
                continue
            src = nodes[inp[0]]
            if src["op"] is None and not _is_input(src["name"]):
                if inp[0] not in counted and shapes.get((inp[0], 0)) is not None:
                    params += int(np.prod(shapes[(inp[0], 0)]))
                    counted.add(inp[0])
            else:
                previous.append(src["name"])
        total += params
        out = shapes.get((i, 0))
        row([f"{n['name']} ({n['op']})", "x".join(str(d) for d in out) if out else "?", params,
             ", ".join(previous)])
    print("=" * line_length)
    print(f"Total params: {total}")
    print("_" * line_length)
    return total
