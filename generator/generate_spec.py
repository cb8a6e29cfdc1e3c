"""`kernel.generate`: an op with no array inputs whose every element is a
scalar expression of its position (creation and random ops).

    args:
      start: {type: float}
      step: {type: float, default: 1.0}
      num: int
      dtype: {type: dtype, default: float32}
      ctx: {type: device, default: null}
    shape: {fn: arange_shape}        # or {attr: shape} for an int[] attribute
    kernel:
      generate: start + i * step

Names in the body: the op's float, int and bool attributes; `i`, the
element's flat index; `cols`, the size of the result's last dim; `row` and
`col`, the element's row and column (`i // cols` and `i % cols`, which the
CPU loop gets without dividing: it walks rows, so a body of `row` and `col`
vectorises along the row). `//` and `%` take integers (`i`, `cols`, `row`,
`col`, int attributes and literals). An op tagged `random`
also calls `uniform()` (in [0, 1)), `normal()` (standard normal) and
`randint(low, high)` (an integer in [low, high)): each element's values come
from its own Philox block, element `offset + i` of the stream `seed`, which
the op reserves from the process's generator (runtime/random/generator.h),
so the same seed gives the same array on any device and thread count.

The body is computed in the result's "opmath" type (float for float32 and
the half types, double otherwise) and converted once to the result's dtype.
The generator emits a functor, a CPU loop and a CUDA kernel, exactly as for
pointwise ops; the tests check the result against a NumPy reference
(`tests.ref`) or, for random ops, reproducibility, bounds and moments."""
from __future__ import annotations

from dataclasses import dataclass

from generator import expr as ex
from generator.load import LocMap

# The names every generate body may read besides the attributes.
INDEX_NAMES = {"i": "the element's flat index", "cols": "the size of the result's last dim",
               "row": "the element's row, i // cols", "col": "the element's column, i % cols"}
# Functions a random op's body may call (the `random` tag), and their arity.
RANDOM_FUNCTIONS = {"uniform": 0, "normal": 0, "randint": 2}


@dataclass
class GenerateKernel:
    body: ex.Expr
    shape_attr: str | None     # shape: {attr: <int[] attribute>}
    shape_fn: str | None       # shape: {fn: <C++ function of the attributes>}
    dtype_arg: str             # the `dtype` attribute
    device_arg: str            # the `device` attribute
    random: bool               # tagged random: reserves (seed, offset) per call


def parse_generate(ctx, doc, args, tags: list[str]) -> GenerateKernel:
    """Validates a kernel.generate op's signature, shape rule and body."""
    for key in ("dtype_rule", "grad", "nondiff", "inplace", "mutates", "dtypes_cuda"):
        if key in doc:
            ctx.fail(doc.key_line(key), key, "a generate op has no array inputs: its dtype is its `dtype` "
                     "attribute and it has no gradient; remove this field")
    arrays = [a for a in args if a.is_tensor or a.is_list]
    if arrays:
        ctx.fail(arrays[0].line, f"args.{arrays[0].name}", "a generate op takes attributes only (its elements "
                 "are computed from their positions)")
    dtype_args = [a for a in args if a.type == "dtype"]
    device_args = [a for a in args if a.type == "device"]
    for kind, found in (("dtype", dtype_args), ("device", device_args)):
        if len(found) != 1:
            ctx.fail(doc.key_line("args"), "args", f"a generate op takes exactly one '{kind}' attribute (the "
                     f"result's {kind}), found {len(found)}")
    if dtype_args[0].name != "dtype":
        ctx.fail(dtype_args[0].line, f"args.{dtype_args[0].name}", "the dtype attribute is named 'dtype'")
    if not dtype_args[0].has_default:
        ctx.fail(dtype_args[0].line, "args.dtype.default", "missing: the dtype a call without one gets")
    if not device_args[0].has_default or device_args[0].default is not None:
        ctx.fail(device_args[0].line, f"args.{device_args[0].name}.default", "expected null (the CPU by default)")
    shape_attr, shape_fn = _parse_shape(ctx, doc, args)
    kernel = ctx.mapping(doc["kernel"], doc.key_line("kernel"), "kernel")
    ctx.check_keys(kernel, {"generate"}, "kernel")
    body = ex.parse(kernel["generate"], ctx.file, "kernel.generate")
    random = "random" in tags
    scalars = [a for a in args if a.type in ("float", "int", "bool")]
    known = {a.name: "attribute" for a in scalars} | dict(INDEX_NAMES)
    for name in INDEX_NAMES:
        if any(a.name == name for a in args):
            ctx.fail(doc.key_line("args"), f"args.{name}", f"'{name}' is a name of the generate body ({INDEX_NAMES[name]})")
    functions = set(ex.SCALAR_FUNCTIONS) | (set(RANDOM_FUNCTIONS) if random else set())
    ex.check_names(body, known, functions)
    ints = {a.name for a in scalars if a.type == "int"} | set(INDEX_NAMES)
    ex.to_cpp_scalar(body, set(), {a.name for a in scalars}, scalar_type="C", int_names=ints,
                     random_calls=random)  # surfaces emit errors now
    return GenerateKernel(body, shape_attr, shape_fn, dtype_args[0].name, device_args[0].name, random)


def _parse_shape(ctx, doc, args) -> tuple[str | None, str | None]:
    if "shape" not in doc:
        ctx.fail(doc.line, "shape", "missing: a generate op's shape is {attr: <int[] attribute>} or "
                 "{fn: <C++ function>}")
    shape = ctx.mapping(doc["shape"], doc.key_line("shape"), "shape")
    if len(shape) != 1 or next(iter(shape)) not in ("attr", "fn"):
        ctx.fail(doc.key_line("shape"), "shape", "a generate op's shape is {attr: <int[] attribute>} or "
                 "{fn: <C++ function of its attributes>}")
    (rule, value), = shape.items()
    if rule == "attr":
        lists = [a.name for a in args if a.type == "int[]"]
        if value not in lists:
            ctx.fail(shape.key_line("attr"), "shape.attr", f"expected an int[] attribute ({', '.join(lists) or 'none'})")
        return str(value), None
    if not isinstance(value, str) or not value.isidentifier():
        ctx.fail(shape.key_line("fn"), "shape.fn", "expected the name of a C++ function")
    return None, str(value)


def parse_generate_tests(ctx, tests: LocMap, random: bool) -> dict:
    """tests.cases: attribute values per case (required); a random op also
    gives tests.moments {mean, std} and may give tests.range [low, high],
    NumPy expressions of the case's attributes."""
    if "cases" not in tests:
        ctx.fail(tests.line, "tests.cases", "missing: a generate op's tests list attribute values per case")
    cases = tests["cases"]
    if not isinstance(cases, list) or not cases or not all(isinstance(c, LocMap) for c in cases):
        ctx.fail(tests.key_line("cases"), "tests.cases", "expected a non-empty list of {attribute: value}")
    result = {"cases": [dict(c) for c in cases], "moments": None, "range": None}
    if random:
        if "moments" not in tests:
            ctx.fail(tests.line, "tests.moments", "missing: a random op's tests give {mean: ..., std: ...}")
        moments = ctx.mapping(tests["moments"], tests.key_line("moments"), "tests.moments")
        ctx.check_keys(moments, {"mean", "std"}, "tests.moments")
        result["moments"] = {k: ex.parse(v, ctx.file, f"tests.moments.{k}").text for k, v in moments.items()}
        if "range" in tests:
            bounds = tests["range"]
            if not isinstance(bounds, list) or len(bounds) != 2:
                ctx.fail(tests.key_line("range"), "tests.range", "expected [low, high] (inclusive bounds)")
            result["range"] = [ex.parse(str(b), ctx.file, "tests.range").text for b in bounds]
    return result
