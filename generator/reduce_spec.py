"""Parsing `kernel: {reduce: ...}` and `shape: {reduce: ...}`: reductions
declared as a monoid (init, combine) with an optional projection."""
from __future__ import annotations

from generator import expr as ex
from generator.load import LocMap
from generator.model import Arg, ReduceKernel

REDUCE_KEYS = {"init", "map", "combine", "project", "acc", "empty"}


def parse_reduce_shape(ctx, value, line, args: list[Arg]) -> list[str]:
    """shape: {reduce: {in: x, dims: dims, keepdim: keepdim}} -> [x, dims, keepdim]."""
    if not isinstance(value, LocMap):
        ctx.fail(line, "shape.reduce", "expected {in: <tensor>, dims: <int[] attribute>, keepdim: <bool attribute>}")
    ctx.check_keys(value, {"in", "dims", "keepdim"}, "shape.reduce")
    by_name = {a.name: a for a in args}
    wanted = {"in": "Tensor", "dims": "int[]", "keepdim": "bool"}
    names = []
    for key, type_name in wanted.items():
        if key not in value:
            ctx.fail(value.line, f"shape.reduce.{key}", "missing required field")
        name = value[key]
        if name not in by_name or by_name[name].type != type_name:
            ctx.fail(value.key_line(key), f"shape.reduce.{key}", f"'{name}' is not a {type_name} argument")
        names.append(str(name))
    if len([a for a in args if a.is_tensor]) != 1:
        ctx.fail(line, "shape.reduce", "a reduction takes exactly one Tensor argument")
    return names


def parse_reduce_kernel(ctx, spec, line, attr_names: list[str]) -> ReduceKernel:
    if not isinstance(spec, LocMap):
        ctx.fail(line, "kernel.reduce", "expected {init, combine, map?, project?, acc?}")
    ctx.check_keys(spec, REDUCE_KEYS, "kernel.reduce")
    for key in ("init", "combine"):
        if key not in spec:
            ctx.fail(spec.line, f"kernel.reduce.{key}", "missing required field")
    init = spec["init"]
    if isinstance(init, bool) or not (isinstance(init, (int, float)) or init in ("inf", "-inf")):
        ctx.fail(spec.key_line("init"), "kernel.reduce.init", f"expected a number, inf or -inf, got {init!r}")
    attrs = {n: "attribute" for n in attr_names}
    combine = ex.parse(spec["combine"], ctx.file, "kernel.reduce.combine")
    ex.check_names(combine, {"a": "accumulator", "b": "accumulator"} | attrs, set(ex.SCALAR_FUNCTIONS))
    mapped = None
    if "map" in spec:  # applied to each element before combining (x * x for a norm)
        mapped = ex.parse(spec["map"], ctx.file, "kernel.reduce.map")
        ex.check_names(mapped, {"x": "element"} | attrs, set(ex.SCALAR_FUNCTIONS))
    project = None
    if "project" in spec:
        project = ex.parse(spec["project"], ctx.file, "kernel.reduce.project")
        ex.check_names(project, {"acc": "accumulator", "n": "number of reduced elements"} | attrs,
                       set(ex.SCALAR_FUNCTIONS))
    acc = spec.get("acc", "wide")
    if acc not in ("wide", "same"):
        ctx.fail(spec.key_line("acc"), "kernel.reduce.acc",
                 "expected 'wide' (accumulate in double / int64) or 'same' (in the input type)")
    # What a reduction over no elements gives: project(init), or a ValueError
    # (max, min: NumPy has no value for them).
    empty = spec.get("empty", "init")
    if empty not in ("init", "error"):
        ctx.fail(spec.key_line("empty"), "kernel.reduce.empty", "expected 'init' or 'error'")
    return ReduceKernel(init=str(init), combine=combine, project=project, acc=str(acc), map=mapped,
                        empty_is_error=empty == "error")
