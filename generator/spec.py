"""Turns one YAML document into an OpDef, checking every field.

Each mistake raises SpecError naming file:line, the field path and what was
expected. Keys this generator does not know are errors, never ignored; keys
that belong to the DSL but whose code generation is not built yet say so.
"""
from __future__ import annotations

import ast
import re

from generator import expr as ex
from generator import grad_codegen
from generator.checks import parse_checks
from generator.errors import SpecError
from generator.load import LocMap
from generator.reduce_spec import parse_reduce_kernel, parse_reduce_shape
from generator.generate_spec import parse_generate, parse_generate_tests
from generator.update_spec import parse_mutates, parse_update_kernel
from generator.model import (ALL_DTYPES, ATTR_TYPES, DTYPE_GROUPS, FLOATING, GENERATE_ONLY_TYPES, REQUIREMENTS,
                             Arg, Domain, ImplKernel, OpDef, Output, TestHints)

TOP_KEYS = {"op", "doc", "args", "outputs", "dtypes", "dtype_rule", "shape", "kernel", "variants",
            "grad", "nondiff", "tags", "python", "tests", "inplace", "checks", "mutates", "dtypes_cuda",
            "absorbs"}
# Part of the DSL (shared/OPDSL.md) but not generated yet: rejected with a
# message saying so, rather than silently ignored.
NOT_YET = {"forward_grad"}
VARIANTS = {"function", "out", "inplace", "method"}
TAGS = {"pointwise", "reduction", "random", "nondeterministic", "view", "inplace_view"}
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
# Names the expression language or the generated code already uses, plus
# C++ keywords: an argument with one of these names would fail to compile
# (or shadow numpy in the test reference) long after the spec was accepted.
RESERVED = {"grad", "out", "result", "mask", "T", "f", "call", "dtype", "np", "run", "kOp", "registered",
            "loom", "nb", "m", "grads", "input_grads", "node", "std"} | {
    "alignas", "alignof", "and", "asm", "auto", "bool", "break", "case", "catch", "char", "class", "const",
    "constexpr", "continue", "default", "delete", "do", "double", "else", "enum", "explicit", "export",
    "extern", "false", "float", "for", "friend", "goto", "if", "inline", "int", "long", "mutable",
    "namespace", "new", "noexcept", "not", "nullptr", "operator", "or", "private", "protected", "public",
    "register", "return", "short", "signed", "sizeof", "static", "struct", "switch", "template", "this",
    "throw", "true", "try", "typedef", "typename", "union", "unsigned", "using", "virtual", "void",
    "volatile", "while", "xor", "lambda", "None", "True", "False", "def", "in", "is", "pass", "yield"}
# Functions with float and double overloads only.
INTEGRAL_UNSAFE_FUNCTIONS = {"exp", "log", "sqrt", "rsqrt", "tanh", "sigmoid", "expm1", "log1p", "log2",
                             "sin", "cos", "tan", "erf", "floor", "ceil", "round", "fmod", "mod"}


class _Ctx:
    def __init__(self, file: str, doc: LocMap):
        self.file, self.doc = file, doc

    def fail(self, line: int, field: str, message: str):
        raise SpecError(self.file, line, field, message)

    def check_keys(self, mapping, allowed, field: str):
        for key in mapping:
            if key not in allowed:
                self.fail(mapping.key_line(key), f"{field}.{key}" if field else str(key),
                          f"unknown key (expected one of: {', '.join(sorted(allowed))})")

    def mapping(self, value, line: int, field: str) -> LocMap:
        if not isinstance(value, LocMap):
            self.fail(line, field, f"expected a mapping, got {type(value).__name__}")
        return value


def parse_op(doc, file: str) -> OpDef:
    ctx = _Ctx(file, doc)
    if not isinstance(doc, LocMap):
        raise SpecError(file, getattr(doc, "line", 1), "op", "an operator spec must be a YAML mapping")
    for key in doc:
        if key in NOT_YET:
            ctx.fail(doc.key_line(key), key, "is part of the op DSL but not supported by the generator yet")
    ctx.check_keys(doc, TOP_KEYS, "")
    line = doc.line
    composite = isinstance(doc.get("kernel"), LocMap) and "composite" in doc["kernel"]
    is_view = isinstance(doc.get("kernel"), LocMap) and "view" in doc["kernel"]
    is_update = isinstance(doc.get("kernel"), LocMap) and "update" in doc["kernel"]
    if isinstance(doc.get("kernel"), LocMap) and "generate" in doc["kernel"]:
        return _parse_generate_op(ctx, doc)
    if is_update:
        for key in ("shape", "dtype_rule", "grad", "nondiff", "inplace"):
            if key in doc:
                ctx.fail(doc.key_line(key), key, "an update op changes its 'mutates' arrays in place, element "
                         "by element, and is not differentiable; remove this field")
        if "mutates" not in doc:
            ctx.fail(doc.key_line("kernel"), "mutates", "missing: an update op lists the arrays it changes")
    elif "mutates" in doc and not (isinstance(doc.get("kernel"), LocMap) and "impl" in doc["kernel"]):
        ctx.fail(doc.key_line("mutates"), "mutates", "only kernel.update and kernel.impl ops mutate their arguments")
    for required in ("op", "args", "outputs", "dtypes", "kernel") + (() if composite or is_view or is_update
                                                                      else ("shape",)):
        if required not in doc:
            ctx.fail(line, required, "missing required field")
    if composite:
        for key in ("shape", "dtype_rule", "grad", "nondiff"):
            if key in doc:
                ctx.fail(doc.key_line(key), key, "a composite op takes its shape, dtype and gradient from "
                         "the operators its body calls; remove this field")
    if is_view:
        for key in ("shape", "dtype_rule"):
            if key in doc:
                ctx.fail(doc.key_line(key), key, "a view op's function gives the view's shape and keeps its "
                         "input's dtype; remove this field")

    name = doc["op"]
    if not isinstance(name, str) or not NAME_RE.match(name) or name in RESERVED:
        ctx.fail(doc.key_line("op"), "op", f"'{name}' is not a snake_case name or is reserved")

    args = _parse_args(ctx, doc)
    rule_spec = doc.get("dtype_rule")
    attr_rule = rule_spec.get("attr") if isinstance(rule_spec, LocMap) else None
    for a in args:
        if a.type == "dtype" and a.name == attr_rule:
            continue  # the result dtype of a conversion (cast): dtype_rule {attr: dtype}
        if a.type in GENERATE_ONLY_TYPES:
            ctx.fail(a.line, f"args.{a.name}.type", f"'{a.type}' attributes belong to kernel.generate ops and, "
                     "as dtype_rule: {attr: <name>}, to an impl op's result dtype (an op with array inputs "
                     "takes its dtype and device from them)")
    outputs = _parse_outputs(ctx, doc)
    is_impl = isinstance(doc.get("kernel"), LocMap) and "impl" in doc["kernel"]
    if len(outputs) != 1 and not is_impl:
        ctx.fail(doc.key_line("outputs"), "outputs", "only impl ops have several outputs (a pointwise, reduce, "
                 "view, update or composite op has exactly one)")
    list_output = outputs[0] if len(outputs) == 1 and outputs[0].count is not None else None
    if list_output is not None:
        field = f"outputs.{list_output.name}.count"
        counter = next((a for a in args if a.name == list_output.count_attr), None)
        if list_output.count_is_len:  # len(sizes): as many arrays as a required int[] attribute has entries
            if counter is None or counter.type != "int[]" or counter.has_default:
                ctx.fail(list_output.line, field, f"len({list_output.count_attr}) needs a required int[] attribute")
        elif counter is None or counter.type != "int":
            ctx.fail(list_output.line, field, f"'{list_output.count}' is not an int attribute of the op (or "
                     "len(<int[] attribute>))")
        if not is_view:
            # the outputs are views of the input: the only kind whose outputs
            # need no per-output kernel, shape rule or memory plan
            ctx.fail(doc.key_line("kernel"), "kernel", "an op with a Tensor[] output needs kernel.view (a "
                     "function returning one view per output)")
    dtypes = _parse_dtypes(ctx, doc)
    tensor_names = [a.name for a in args if a.is_tensor]
    list_names = [a.name for a in args if a.is_list]
    attr_names = [a.name for a in args if not a.is_tensor and not a.is_list]
    if not tensor_names and not list_names:
        ctx.fail(doc.key_line("args"), "args", "an operator needs at least one Tensor argument")
    if list_names:
        # A list op (concat, stack): the list is its only array argument, and
        # its kernels are hand-written (kernel.impl).
        if len(list_names) > 1 or tensor_names:
            ctx.fail(doc.key_line("args"), "args", "a Tensor[] argument must be the op's only array argument")
        if not (isinstance(doc.get("kernel"), LocMap) and "impl" in doc["kernel"]):
            ctx.fail(doc.key_line("kernel"), "kernel", "an op with a Tensor[] argument needs kernel.impl")
        tensor_names = list_names

    optional = [a for a in args if a.optional]
    if optional and not (composite or (isinstance(doc.get("kernel"), LocMap) and "impl" in doc["kernel"])):
        ctx.fail(optional[0].line, f"args.{optional[0].name}.type", "optional arrays (Tensor?) are supported by "
                 "impl and composite ops (a pointwise, reduce, view or update kernel reads every array)")
    if is_view and len(tensor_names) != 1:
        ctx.fail(doc.key_line("args"), "args", "a view op takes exactly one Tensor (the array it views)")
    dtype_rule = (_parse_dtype_rule(ctx, doc, tensor_names, args) if not is_view
                  else f"same_as:{tensor_names[0]}")
    int_promote = isinstance(rule_spec, LocMap) and "int_promote" in rule_spec
    if composite or is_view or is_update:  # no shape rule: the body, the view or the arguments give it
        shape_rule, shape_args = ("composite" if composite else "view" if is_view else "update"), []
    else:
        shape_rule, shape_args = _parse_shape(ctx, doc, tensor_names, args)
    mutates, update = [], None
    if is_update:
        kernel = ctx.mapping(doc["kernel"], doc.key_line("kernel"), "kernel")
        ctx.check_keys(kernel, {"update"}, "kernel")
        mutates = parse_mutates(ctx, doc, tensor_names)
        update = parse_update_kernel(ctx, kernel["update"], kernel.key_line("update"), tensor_names, attr_names,
                                     mutates, {a.name for a in args if a.type == "bool"})
        pointwise = reduce = impl = body = view = None
    else:
        pointwise, reduce, impl, body, view = _parse_kernel(ctx, doc, tensor_names, attr_names, args)
        if "mutates" in doc:  # an impl op's kernels also write these (not through autograd)
            mutates = parse_mutates(ctx, doc, tensor_names)
            line = doc.key_line("mutates")
            if tensor_names[0] in mutates:
                ctx.fail(line, "mutates", f"the first array ('{tensor_names[0]}') decides dtype and device; an impl "
                         "op mutates later arguments only")
    if (dtype_rule in ("int64", "float32") or dtype_rule.startswith("attr:")) and impl is None:
        ctx.fail(doc.key_line("dtype_rule"), "dtype_rule",
                 f"'{dtype_rule.replace('attr:', 'attr: ')}' results are supported for impl kernels only")
    if len(outputs) > 1 and shape_rule != "fn":
        ctx.fail(doc.key_line("shape"), "shape", "an op with several outputs gives their shapes with shape: {fn: ...}")
    if (impl is not None) != (shape_rule in ("fn", "matmul")):
        ctx.fail(doc.key_line("kernel"), "kernel", "an impl kernel goes with shape: {fn: <C++ function>} or "
                 "{matmul: [a, b]}, and only with them")
    if (reduce is not None) != (shape_rule == "reduce"):
        ctx.fail(doc.key_line("kernel"), "kernel", "a reduce kernel goes with shape: {reduce: ...} and only with it")
    if pointwise is not None:
        _check_integral_body(ctx, pointwise, dtypes, [a for a in args if not a.is_tensor])
    index_args = [a for a in args if a.index]
    if index_args and not (isinstance(doc.get("kernel"), LocMap) and ("impl" in doc["kernel"]
                                                                        or "composite" in doc["kernel"])):
        ctx.fail(index_args[0].line, f"args.{index_args[0].name}.index",
                 "index arguments need kernel.impl or kernel.composite")
    if index_args and len(index_args) == len(tensor_names) and dtype_rule not in ("float32",):
        ctx.fail(doc.key_line("dtype_rule") if "dtype_rule" in doc else doc.line, "dtype_rule",
                 "an op whose only arrays are indices needs dtype_rule: float32 (the result's dtype)")
    nondiff = _parse_name_list(ctx, doc, "nondiff", tensor_names)
    nondiff += [a.name for a in args if a.nondiff and a.name not in nondiff]  # args.<x>.nondiff: true
    nondiff += [a.name for a in index_args if a.name not in nondiff]  # indices have no gradient
    grads, joint = (_parse_grads(ctx, doc, args, outputs, dtypes, nondiff + mutates) if not (composite or is_update)
                    else ({}, []))
    # The method variant (x.exp(), x.sum(dims=1)) by default for ops whose
    # first argument is the array `x`; a spec listing variants says it itself.
    first = args[0] if args else None
    method = ["method"] if first is not None and first.name == "x" and first.type == "Tensor" else []
    several = len(outputs) > 1 or list_output is not None
    variants = _parse_variants(ctx, doc, (["function"] if is_update or several else ["function", "out"]) + method)
    if several and set(variants) - {"function", "method"}:
        ctx.fail(doc.key_line("variants"), "variants", "an op with several outputs has the function and method "
                 "variants only (out= names one array)")
    if "method" in variants and (first is None or first.type != "Tensor"):
        ctx.fail(doc.key_line("variants"), "variants", "the method variant needs a Tensor first argument "
                 "(the array the method is called on)")
    if is_update and set(variants) - {"function", "method"}:
        ctx.fail(doc.key_line("variants"), "variants", "an update op has the function variant only (it writes "
                 "into its 'mutates' arrays)")
    if list_names and "checks" in doc:
        ctx.fail(doc.key_line("checks"), "checks", "checks over a Tensor[] argument are not supported; "
                 "validate in the shape function")
    checks = parse_checks(ctx, doc, set(tensor_names), {a.name: a.type for a in args if not a.is_tensor},
                          optional={a.name for a in optional})
    inplace = _parse_inplace(ctx, doc, variants, tensor_names, outputs, shape_rule)
    tags = _parse_tags(ctx, doc)
    python_name, python_operators = _parse_python(ctx, doc, name, len(tensor_names))
    inplace_dunders = [o for o in python_operators if o.startswith("__i") and o != "__invert__"]
    if inplace_dunders and inplace is None:
        ctx.fail(doc.key_line("python"), "python.operators",
                 f"{', '.join(inplace_dunders)} need the inplace variant (variants: [..., inplace])")
    tests = _parse_tests(ctx, doc, tensor_names, [a for a in args if not a.is_tensor and not a.is_list], dtypes,
                         list_op=bool(list_names), update_op=is_update, optional={a.name for a in optional})

    dtypes_cuda = None
    if "dtypes_cuda" in doc:  # the CUDA kernels take fewer dtypes than the CPU ones
        value = doc["dtypes_cuda"]
        if not isinstance(value, list) or not value or any(d not in dtypes for d in value):
            ctx.fail(doc.key_line("dtypes_cuda"), "dtypes_cuda", f"expected a non-empty list from the op's dtypes "
                     f"({', '.join(dtypes)})")
        if is_view or composite:
            ctx.fail(doc.key_line("dtypes_cuda"), "dtypes_cuda", "a view or composite op has no CUDA kernels of "
                     "its own")
        dtypes_cuda = [str(d) for d in value]
    absorbs = _parse_absorbs(ctx, doc, args, outputs) if "absorbs" in doc else []
    doc_text = doc.get("doc", "")
    if not isinstance(doc_text, str):
        ctx.fail(doc.key_line("doc"), "doc", "expected a string")
    op = OpDef(name=str(name), file=file, line=line, doc=str(doc_text).strip(), args=args,
                 outputs=outputs, dtypes=dtypes, dtype_rule=dtype_rule, shape_rule=shape_rule,
                 shape_args=shape_args, pointwise=pointwise, reduce=reduce, int_promote=int_promote,
                 python_operators=python_operators, grads=grads, joint_grads=joint, nondiff=nondiff, impl=impl, composite=body,
                 view=view, update=update, mutates=mutates, inplace=inplace, checks=checks,
                 variants=variants, tags=tags, python_name=python_name, tests=tests, dtypes_cuda=dtypes_cuda,
                 absorbs=absorbs)
    grad_codegen.node_spec(op)  # compiles every formula now, so mistakes point at the YAML
    if op.composite is not None:
        grad_codegen.composite_body(op)
    if op.kind in ("impl", "composite", "view", "update") and not op.tests.shapes:
        what = {"impl": "an op with a shape function", "composite": "a composite op", "view": "a view op",
                "update": "an update op"}[op.kind]
        ctx.fail(doc.key_line("tests"), "tests.shapes", f"missing: {what} needs explicit test shapes")
    return op


def _parse_absorbs(ctx: _Ctx, doc, args: list[Arg], outputs: list[Output]) -> list:
    """absorbs: {<op>: {<attr>: <value>, ...}}: a node of <op> that alone
    reads this op's first output folds into this op with those attributes
    set (a graph pass, runtime/graph/simplify.h). The attributes must be
    this op's bool, int or float attributes, and the absorbed op must exist
    (checked once every spec is loaded)."""
    line = doc.key_line("absorbs")
    table = ctx.mapping(doc["absorbs"], line, "absorbs")
    attrs = {a.name: a for a in args if a.type in ATTR_TYPES}
    if not [o for o in outputs if not o.hidden]:
        ctx.fail(line, "absorbs", "an op without a visible output has nothing to absorb into")
    result = []
    for consumer, settings in table.items():
        field = f"absorbs.{consumer}"
        if not isinstance(consumer, str) or not NAME_RE.match(consumer):
            ctx.fail(table.key_line(consumer), field, "expected an operator name")
        settings = ctx.mapping(settings, table.key_line(consumer), field)
        if not settings:
            ctx.fail(table.key_line(consumer), field, "name the attributes the fold sets")
        values = {}
        for attr, value in settings.items():
            where = f"{field}.{attr}"
            arg = attrs.get(attr)
            if arg is None:
                ctx.fail(settings.key_line(attr), where, f"not an attribute of this op (attributes: "
                         f"{', '.join(sorted(attrs)) or 'none'})")
            expected = {"bool": bool, "int": int, "float": (int, float)}.get(arg.type)
            if expected is None or isinstance(value, bool) != (arg.type == "bool") or not isinstance(value, expected):
                ctx.fail(settings.key_line(attr), where, f"expected a {arg.type} value for a {arg.type} attribute "
                         f"(only bool, int and float attributes can be set by a fold), got {value!r}")
            values[str(attr)] = value
        result.append((str(consumer), values, table.key_line(consumer)))
    return result


def _parse_args(ctx: _Ctx, doc) -> list[Arg]:
    args_map = ctx.mapping(doc["args"], doc.key_line("args"), "args")
    args = []
    for arg_name, spec in args_map.items():
        line, field = args_map.key_line(arg_name), f"args.{arg_name}"
        if not isinstance(arg_name, str) or not NAME_RE.match(arg_name):
            ctx.fail(line, field, "argument names are snake_case identifiers")
        if isinstance(spec, str):  # shorthand: `x: Tensor`
            arg = Arg(arg_name, str(spec), line)
        else:
            spec = ctx.mapping(spec, line, field)
            ctx.check_keys(spec, {"type", "default", "doc", "index", "kwarg_only", "nondiff"}, field)
            if "type" not in spec:
                ctx.fail(line, f"{field}.type", "missing required field")
            for key in ("kwarg_only", "nondiff"):
                if key in spec and not isinstance(spec[key], bool):
                    ctx.fail(spec.key_line(key), f"{field}.{key}", "expected true or false")
            arg = Arg(arg_name, str(spec["type"]), line, spec.get("default"), "default" in spec,
                      str(spec.get("doc", "")), index=spec.get("index", False) is True,
                      kwarg_only=spec.get("kwarg_only", False) is True, nondiff=spec.get("nondiff", False) is True)
            if arg.kwarg_only and str(spec["type"]) in ("Tensor", "Tensor?", "Tensor[]"):
                ctx.fail(spec.key_line("kwarg_only"), f"{field}.kwarg_only", "arrays are positional; kwarg_only "
                         "is for attributes")
            if arg.nondiff and str(spec["type"]) not in ("Tensor", "Tensor?", "Tensor[]"):
                ctx.fail(spec.key_line("nondiff"), f"{field}.nondiff", "only arrays have gradients; nondiff is "
                         "for Tensor arguments")
            if "index" in spec and (spec["type"] not in ("Tensor", "Tensor?") or not isinstance(spec["index"], bool)):
                ctx.fail(spec.key_line("index"), f"{field}.index", "index: true marks a Tensor argument "
                         "holding integer indices")
        # `dtype` names a generate op's result dtype; otherwise the generated code uses it
        if arg_name in RESERVED and not (arg_name == "dtype" and arg.type == "dtype"):
            ctx.fail(line, field, f"'{arg_name}' is reserved (used by the expression language, the "
                     "generated code or C++)")
        if arg.type not in ("Tensor", "Tensor?", "Tensor[]") and arg.type not in ATTR_TYPES:
            ctx.fail(line, f"{field}.type", f"unknown type '{arg.type}' (supported: Tensor, Tensor?, Tensor[], "
                     f"{', '.join(ATTR_TYPES)})")
        if (arg.is_tensor or arg.is_list) and arg.has_default:
            ctx.fail(line, f"{field}.default", "Tensor arguments take no default (a Tensor? defaults to None)")
        if arg.has_default and not _default_fits(arg.type, arg.default):
            ctx.fail(line, f"{field}.default", f"{arg.default!r} is not a {arg.type}")
        if args and args[-1].kwarg_only and not arg.kwarg_only:
            ctx.fail(line, f"{field}.kwarg_only", f"follows the keyword-only '{args[-1].name}', so it must be "
                     "keyword-only too (as after * in a Python signature)")
        args.append(arg)
    _check_optional_order(ctx, args)
    return args


def _check_optional_order(ctx: _Ctx, args: list[Arg]) -> None:
    """A Tensor? defaults to None, so (as in a Python signature) every
    argument after it needs a default too; the first array fixes the op's
    device and cannot be optional."""
    tensors = [a for a in args if a.is_tensor or a.is_list]
    if tensors and tensors[0].optional:
        ctx.fail(tensors[0].line, f"args.{tensors[0].name}.type", "the first array argument cannot be optional "
                 "(its device is the op's device); put the Tensor? arguments after it")
    first_optional = next((i for i, a in enumerate(args) if a.optional), None)
    if first_optional is None:
        return
    for a in args[first_optional + 1:]:
        if not a.optional and not a.has_default:
            ctx.fail(a.line, f"args.{a.name}", f"follows the optional '{args[first_optional].name}' (None by "
                     "default), so it needs a default too (or move it before)")


def _default_fits(type_name: str, value) -> bool:
    if type_name == "dtype":
        return value in ALL_DTYPES
    if type_name == "device":  # null: the CPU
        return value is None
    if type_name == "int[]":  # None: every dim
        return value is None or (isinstance(value, list) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value))
    if type_name == "bool":
        return isinstance(value, bool)
    if type_name == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _parse_outputs(ctx: _Ctx, doc) -> list[Output]:
    outs = ctx.mapping(doc["outputs"], doc.key_line("outputs"), "outputs")
    result = []
    for out_name, spec in outs.items():
        line, field = outs.key_line(out_name), f"outputs.{out_name}"
        if not isinstance(out_name, str) or not NAME_RE.match(out_name) or out_name in RESERVED - {"out"}:
            ctx.fail(line, field, "output names are snake_case identifiers, not reserved words")
        if isinstance(spec, str):
            if spec != "Tensor":
                ctx.fail(line, field, "expected 'Tensor' or {type: Tensor, hidden?, differentiable?, dtype?}")
            result.append(Output(str(out_name), line))
            continue
        spec = ctx.mapping(spec, line, field)
        ctx.check_keys(spec, {"type", "hidden", "differentiable", "dtype", "doc", "count"}, field)
        if spec.get("type") == "Tensor[]":  # a list of arrays, as many as an int attribute says
            extra = sorted(set(spec) - {"type", "count", "doc"})
            if extra:
                ctx.fail(spec.key_line(extra[0]), f"{field}.{extra[0]}", "a Tensor[] output takes type, count "
                         "and doc only")
            count = spec.get("count")
            if not isinstance(count, str):
                ctx.fail(spec.key_line("count") if "count" in spec else line, f"{field}.count",
                         "a Tensor[] output needs count: <int attribute> (how many arrays it returns)")
            result.append(Output(str(out_name), line, count=str(count)))
            continue
        if "count" in spec:
            ctx.fail(spec.key_line("count"), f"{field}.count", "count is for a Tensor[] output")
        if spec.get("type") != "Tensor":
            ctx.fail(line, f"{field}.type", "expected 'Tensor' or 'Tensor[]'")
        for key in ("hidden", "differentiable"):
            if key in spec and not isinstance(spec[key], bool):
                ctx.fail(spec.key_line(key), f"{field}.{key}", "expected true or false")
        dtype = spec.get("dtype")
        if dtype is not None and dtype not in ("int64", "bool", "float32"):
            ctx.fail(spec.key_line("dtype"), f"{field}.dtype", "expected int64, bool or float32 (a fixed dtype; "
                     "leave it out for the op's result dtype)")
        differentiable = spec.get("differentiable", dtype not in ("int64", "bool"))
        if differentiable and dtype in ("int64", "bool"):
            ctx.fail(spec.key_line("differentiable"), f"{field}.differentiable", f"a {dtype} output has no gradient")
        result.append(Output(str(out_name), line, hidden=spec.get("hidden", False) is True,
                             differentiable=differentiable is True, dtype=dtype))
    lists = [o for o in result if o.count is not None]
    if lists and len(result) > 1:
        ctx.fail(lists[0].line, f"outputs.{lists[0].name}", "a Tensor[] output must be the op's only output")
    if result and all(o.hidden for o in result):
        ctx.fail(outs.line, "outputs", "every output is hidden: an op returns at least one")
    if len(result) == 1 and (result[0].hidden or result[0].dtype or not result[0].differentiable):
        ctx.fail(result[0].line, f"outputs.{result[0].name}", "hidden, differentiable and dtype are for ops "
                 "with several outputs (one output takes the op's dtype_rule)")
    return result


def _parse_dtypes(ctx: _Ctx, doc) -> list[str]:
    value, line = doc["dtypes"], doc.key_line("dtypes")
    if isinstance(value, str):
        if value not in DTYPE_GROUPS:
            ctx.fail(line, "dtypes", f"unknown dtype group '{value}' (groups: {', '.join(DTYPE_GROUPS)})")
        return list(DTYPE_GROUPS[value])
    if not isinstance(value, list) or not value:
        ctx.fail(line, "dtypes", "expected a dtype group name or a non-empty list of dtypes")
    for d in value:
        if d not in ALL_DTYPES:
            ctx.fail(line, "dtypes", f"unknown dtype '{d}' (dtypes: {', '.join(ALL_DTYPES)})")
    if len(set(value)) != len(value):
        ctx.fail(line, "dtypes", "a dtype is listed twice")
    return [str(d) for d in value]


def _parse_dtype_rule(ctx: _Ctx, doc, tensor_names, args) -> str:
    rule, line = doc.get("dtype_rule", "promote"), doc.key_line("dtype_rule")
    if isinstance(rule, LocMap) and set(rule) == {"attr"}:
        # the result dtype is an attribute (cast): computed from the first
        # array as it is, converted once into the result
        dtype_attrs = [a.name for a in args if a.type == "dtype"]
        if rule["attr"] not in dtype_attrs:
            ctx.fail(rule.key_line("attr"), "dtype_rule.attr", f"'{rule['attr']}' is not an argument of type dtype")
        return f"attr:{rule['attr']}"
    if rule == "promote":
        return "promote"
    if rule == "bool":  # computed in the promoted input dtype, result is bool
        return "bool"
    if rule == "int64":  # indices (argmax): computed in the input dtype, result int64
        return "int64"
    if rule == "float32":  # from indices alone (one_hot): a float32 result
        return "float32"
    if isinstance(rule, LocMap) and set(rule) in ({"same_as"}, {"same_as", "int_promote"}):
        if rule["same_as"] not in tensor_names:
            ctx.fail(line, "dtype_rule.same_as", f"'{rule['same_as']}' is not a Tensor argument")
        if rule.get("int_promote", "int64") != "int64":
            ctx.fail(rule.key_line("int_promote"), "dtype_rule.int_promote", "only int64 is supported")
        return f"same_as:{rule['same_as']}"
    ctx.fail(line, "dtype_rule", "expected 'promote', 'bool', 'int64', {same_as: <tensor arg>, int_promote?: int64} "
             "or {attr: <dtype arg>}")


def _parse_shape(ctx: _Ctx, doc, tensor_names, args):
    shape, line = doc["shape"], doc.key_line("shape")
    shape = ctx.mapping(shape, line, "shape")
    if len(shape) != 1:
        ctx.fail(line, "shape", "expected exactly one rule: same_as, broadcast, reduce, matmul or fn")
    (rule, value), = shape.items()
    if rule == "reduce":
        return "reduce", parse_reduce_shape(ctx, value, shape.key_line("reduce"), args)
    if rule == "same_as":
        if value not in tensor_names:
            ctx.fail(line, "shape.same_as", f"'{value}' is not a Tensor argument")
        if len(tensor_names) != 1:
            ctx.fail(line, "shape.same_as", "with several Tensor arguments use 'broadcast'")
        return "same_as", [str(value)]
    if rule == "broadcast":
        if not isinstance(value, list) or sorted(value) != sorted(tensor_names):
            ctx.fail(line, "shape.broadcast", f"expected the list of Tensor arguments {tensor_names}")
        return "broadcast", [str(v) for v in value]
    if rule == "fn":  # a hand-written C++ shape function, declared by the generator
        if not isinstance(value, str) or not NAME_RE.match(value):
            ctx.fail(line, "shape.fn", "expected the name of a C++ function (snake_case)")
        return "fn", [str(value)]
    if rule == "matmul":  # NumPy's matmul rule over two Tensor arguments (runtime/dispatch/shape_rules.h)
        if not (isinstance(value, list) and len(value) == 2 and all(v in tensor_names for v in value)):
            ctx.fail(line, "shape.matmul", f"expected two Tensor arguments from {tensor_names}, e.g. [a, b]")
        return "matmul", [str(v) for v in value]
    ctx.fail(line, f"shape.{rule}", "unknown shape rule (expected same_as, broadcast, reduce, matmul or fn)")


def _parse_kernel(ctx: _Ctx, doc, tensor_names, attr_names, args):
    """-> (pointwise body, ReduceKernel, ImplKernel, composite body, view
    function), exactly one not None."""
    kernel = ctx.mapping(doc["kernel"], doc.key_line("kernel"), "kernel")
    ctx.check_keys(kernel, {"pointwise", "reduce", "impl", "requires", "composite", "view"}, "kernel")
    kinds = [k for k in kernel if k != "requires"]
    if len(kinds) != 1:
        ctx.fail(kernel.line, "kernel",
                 "expected exactly one kernel kind (pointwise, reduce, impl, composite or view)")
    if "requires" in kernel and "impl" not in kernel:
        ctx.fail(kernel.key_line("requires"), "kernel.requires", "only impl kernels have build requirements")
    if "impl" in kernel:
        return None, None, _parse_impl(ctx, kernel), None, None
    if "view" in kernel:
        fn = kernel["view"]
        if not isinstance(fn, str) or not re.fullmatch(r"[A-Za-z_]\w*", fn):
            ctx.fail(kernel.key_line("view"), "kernel.view", "expected the name of a C++ function")
        return None, None, None, None, str(fn)
    if "reduce" in kernel:
        return None, parse_reduce_kernel(ctx, kernel["reduce"], kernel.key_line("reduce"), attr_names), None, None, None
    if "composite" in kernel:
        body = ex.parse(kernel["composite"], ctx.file, "kernel.composite")
        known = {n: "tensor" for n in tensor_names} | {n: "attribute" for n in attr_names}
        ex.check_names(body, known, set(grad_codegen.GRAD_CALLS), grad_codegen.GRAD_ATTRIBUTES,
                       grad_codegen.REDUCTIONS)
        return None, None, None, body, None
    body = ex.parse(kernel["pointwise"], ctx.file, "kernel.pointwise")
    known = {n: "tensor" for n in tensor_names} | {n: "attribute" for n in attr_names}
    ex.check_names(body, known, set(ex.SCALAR_FUNCTIONS))
    ex.to_cpp_scalar(body, set(tensor_names), set(attr_names))  # surfaces emit errors now
    return body, None, None, None, None


def _parse_impl(ctx: _Ctx, kernel) -> ImplKernel:
    impl = ctx.mapping(kernel["impl"], kernel.key_line("impl"), "kernel.impl")
    ctx.check_keys(impl, {"cpu", "cuda"}, "kernel.impl")
    if "cpu" not in impl:
        ctx.fail(impl.line, "kernel.impl.cpu", "missing: every operator needs a CPU kernel")
    for backend, fn in impl.items():
        if not isinstance(fn, str) or not NAME_RE.match(fn):
            ctx.fail(impl.key_line(backend), f"kernel.impl.{backend}", "expected the name of a C++ function")
    requires = {"cpu": [], "cuda": []}
    if "requires" in kernel:
        req = ctx.mapping(kernel["requires"], kernel.key_line("requires"), "kernel.requires")
        ctx.check_keys(req, set(REQUIREMENTS), "kernel.requires")
        for backend, names in req.items():
            field = f"kernel.requires.{backend}"
            if backend not in impl:
                ctx.fail(req.key_line(backend), field, f"there is no kernel.impl.{backend} to require anything")
            if not isinstance(names, list) or any(n not in REQUIREMENTS[backend] for n in names):
                ctx.fail(req.key_line(backend), field,
                         f"expected a list from {sorted(REQUIREMENTS[backend])} (build options of {backend} kernels)")
            requires[str(backend)] = [str(n) for n in names]
    return ImplKernel(cpu=str(impl["cpu"]), cuda=str(impl["cuda"]) if "cuda" in impl else None, requires=requires)


def _check_integral_body(ctx: _Ctx, body: ex.Expr, dtypes, attrs) -> None:
    """A body that also runs on integers must mean the same there: no true
    division (it would truncate, or trap on a zero divisor), no fractional
    literals or float attributes (cast to T they would become integers), no
    transcendentals (no integer overloads)."""
    integral = [d for d in dtypes if d not in FLOATING]
    if not integral:
        return
    why = f"the op declares integer dtypes ({', '.join(integral)})"
    float_attrs = {a.name for a in attrs if a.type == "float"}
    for node in ast.walk(body.tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Div, ast.Pow)):
            raise body.error(f"'{'/' if isinstance(node.op, ast.Div) else '**'}' is not allowed: {why}")
        if isinstance(node, ast.Constant) and isinstance(node.value, float) and not node.value.is_integer():
            raise body.error(f"fractional literal {node.value!r} is not allowed: {why}")
        if isinstance(node, ast.Name) and node.id in float_attrs:
            raise body.error(f"float attribute '{node.id}' is not allowed: {why}")
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) in INTEGRAL_UNSAFE_FUNCTIONS:
            raise body.error(f"'{node.func.id}' is not allowed: {why}")


def _parse_name_list(ctx: _Ctx, doc, key: str, allowed) -> list[str]:
    value = doc.get(key, [])
    if not isinstance(value, list) or any(v not in allowed for v in value):
        ctx.fail(doc.key_line(key), key, f"expected a list of Tensor arguments from {list(allowed)}")
    return [str(v) for v in value]


def _parse_grads(ctx: _Ctx, doc, args, outputs, dtypes, nondiff) -> dict:
    tensors = [a for a in args if a.is_tensor or a.is_list]
    differentiable = any(d in FLOATING for d in dtypes)
    grads, joint = {}, []
    if "grad" in doc:
        grad_map = ctx.mapping(doc["grad"], doc.key_line("grad"), "grad")
        known = {a.name: "input" for a in args} | {o.name: "output" for o in outputs if o.count is None}
        known |= {f"{a.name}.shapes": "the shapes of a list's arrays" for a in args if a.is_list}
        if len(outputs) == 1 and outputs[0].count is not None:
            known |= {"grad": "the incoming gradients, one per output (zeros where none arrived)"}
        elif len(outputs) == 1:
            known |= {"grad": "incoming gradient", "result": "output"}
        else:  # grad.<output>: the gradient arriving at each differentiable output
            known |= {f"grad.{o.name}": "incoming gradient" for o in outputs if o.differentiable}
        for target, formula in grad_map.items():
            line = grad_map.key_line(target)
            # "x, weight, bias": one call gives all three (a joint gradient)
            names = [t.strip() for t in str(target).split(",")]
            for name in names:
                if name not in {a.name for a in tensors}:
                    ctx.fail(line, f"grad.{target}", f"'{name}' is not a Tensor argument")
                if name in nondiff:
                    ctx.fail(line, f"grad.{target}", f"'{name}' is listed in nondiff (or mutates)")
                if name in grads:
                    ctx.fail(line, f"grad.{target}", f"'{name}' has a gradient formula already")
            e = ex.parse(formula, ctx.file, f"grad.{target}")
            calls = set(grad_codegen.GRAD_CALLS) | (set(grad_codegen.LIST_GRADS) if any(
                a.is_list for a in args) else set())
            if len(names) > 1:
                import ast as _ast
                tree = e.tree
                if not (isinstance(tree, _ast.Call) and isinstance(tree.func, _ast.Name)
                        and tree.func.id in grad_codegen.JOINT_GRADS):
                    ctx.fail(line, f"grad.{target}", "the gradient of several inputs is one call of a joint "
                             f"gradient function ({', '.join(sorted(grad_codegen.JOINT_GRADS))})")
                calls |= set(grad_codegen.JOINT_GRADS)
                joint.append((names, e))
            ex.check_names(e, known, calls, grad_codegen.GRAD_ATTRIBUTES, grad_codegen.REDUCTIONS)
            for name in names:
                grads[name] = e
    if differentiable:
        for a in tensors:
            if a.name not in grads and a.name not in nondiff:
                ctx.fail(doc.key_line("grad") if "grad" in doc else doc.line, f"grad.{a.name}",
                         "missing gradient: every floating Tensor input needs a grad formula or a "
                         "place in nondiff")
    return grads, joint


def _parse_variants(ctx: _Ctx, doc, default: list[str]) -> list[str]:
    value = doc.get("variants", default)
    if not isinstance(value, list) or any(v not in VARIANTS for v in value):
        ctx.fail(doc.key_line("variants"), "variants", f"expected a list from {sorted(VARIANTS)}")
    if "function" not in value:
        ctx.fail(doc.key_line("variants"), "variants", "'function' is required")
    return [str(v) for v in value]


def _parse_inplace(ctx: _Ctx, doc, variants, tensor_names, outputs, shape_rule) -> str | None:
    """inplace: {x: out} -> "x", the input the in-place variant (op_) overwrites."""
    if ("inplace" in variants) != ("inplace" in doc):
        line = doc.key_line("inplace") if "inplace" in doc else doc.key_line("variants")
        ctx.fail(line, "inplace", "the inplace variant and the inplace: {<input>: <output>} field go together")
    if "inplace" not in doc:
        return None
    spec = ctx.mapping(doc["inplace"], doc.key_line("inplace"), "inplace")
    if len(spec) != 1:
        ctx.fail(spec.line, "inplace", "expected one entry, {<input>: <output>}")
    (target, output), = spec.items()
    if target not in tensor_names:
        ctx.fail(spec.key_line(target), f"inplace.{target}", "is not a Tensor argument")
    if output not in [o.name for o in outputs]:
        ctx.fail(spec.key_line(target), f"inplace.{target}", f"'{output}' is not an output")
    # A pointwise op reads each element where it writes it. An impl kernel
    # (shape: {fn: ...}) may declare it too: its author promises the kernel
    # tolerates out being that input (the dispatch checks out's shape at run
    # time), and the generated check_impl_inplace holds it to that.
    if shape_rule not in ("same_as", "broadcast", "fn"):
        ctx.fail(spec.key_line(target), "inplace", "in-place variants exist for pointwise ops and impl kernels "
                 "(shape: {fn: ...}) only")
    return str(target)


def _parse_tags(ctx: _Ctx, doc) -> list[str]:
    value = doc.get("tags", [])
    if not isinstance(value, list) or any(v not in TAGS for v in value):
        ctx.fail(doc.key_line("tags"), "tags", f"expected a list from {sorted(TAGS)}")
    return [str(v) for v in value]


# Python operators an op may implement on NDArray, by number of Tensor inputs.
# A reflected form (__radd__) calls the op with the operands swapped.
PYTHON_OPERATORS = {
    1: {"__neg__", "__abs__", "__invert__"},
    2: {"__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__truediv__",
        "__rtruediv__", "__pow__", "__rpow__", "__mod__", "__rmod__", "__lt__", "__le__", "__gt__",
        "__ge__", "__eq__", "__ne__", "__and__", "__or__", "__matmul__", "__rmatmul__",
        # in-place forms (x += y): need the inplace variant, with x overwritten
        "__iadd__", "__isub__", "__imul__", "__itruediv__"},
}


def _parse_python(ctx: _Ctx, doc, name, n_tensors: int) -> tuple[str, list[str]]:
    """-> (the lm.nd name, the NDArray operators the op implements)."""
    if "python" not in doc:
        return str(name), []
    py = ctx.mapping(doc["python"], doc.key_line("python"), "python")
    ctx.check_keys(py, {"name", "operators"}, "python")
    py_name = py.get("name", name)
    if not isinstance(py_name, str) or not NAME_RE.match(py_name) or py_name in RESERVED:
        ctx.fail(py.key_line("name"), "python.name", f"{py_name!r} is not a snake_case name or is reserved")
    operators = py.get("operators", [])
    allowed = PYTHON_OPERATORS.get(n_tensors, set())
    if not isinstance(operators, list) or any(o not in allowed for o in operators):
        ctx.fail(py.key_line("operators"), "python.operators",
                 f"expected a list from {sorted(allowed)} (operators for {n_tensors} Tensor input(s))")
    return str(py_name), [str(o) for o in operators]


def _parse_tests(ctx: _Ctx, doc, tensor_names, attr_args, declared_dtypes, list_op: bool = False,
                 update_op: bool = False, optional: set[str] = frozenset()) -> TestHints:
    attr_names = [a.name for a in attr_args]
    tests = doc.get("tests")
    if tests is None:
        ctx.fail(doc.line, "tests.ref", "missing: every operator needs a NumPy reference")
    tests = ctx.mapping(tests, doc.key_line("tests"), "tests")
    ctx.check_keys(tests, {"ref", "domain", "tol", "attrs", "gradcheck", "shapes"}, "tests")
    if update_op and "ref" in tests:
        ctx.fail(tests.key_line("ref"), "tests.ref", "an update op's reference is its own statements, run by "
                 "NumPy; remove this field")
    if "ref" not in tests and not update_op:
        ctx.fail(tests.line, "tests.ref", "missing: every operator needs a NumPy reference")
    ref = ex.parse(tests["ref"] if not update_op else "None", ctx.file, "tests.ref")
    # `refs` (tests/python/refs.py) holds the few references NumPy lacks, e.g. erf.
    known = ({n: "tensor" for n in tensor_names} | {n: "attribute" for n in attr_names}
             | {"np": "numpy", "refs": "tests/python/refs.py"})
    for node in ast.walk(ref.tree):
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Attribute)
                                               and isinstance(node.func.value, ast.Name)
                                               and node.func.value.id in ("np", "refs")):
            raise ref.error("a reference may call only NumPy functions (np.<name>) and "
                            "refs.<name> (tests/python/refs.py)")
    for name in ref.names():
        if name not in known:
            raise ref.error(f"undefined name '{name}' (known here: {', '.join(sorted(known))})")
    domains = {}
    if "domain" in tests:
        dmap = ctx.mapping(tests["domain"], tests.key_line("domain"), "tests.domain")
        for arg_name, spec in dmap.items():
            field, line = f"tests.domain.{arg_name}", dmap.key_line(arg_name)
            if arg_name not in tensor_names:
                ctx.fail(line, field, "is not a Tensor argument")
            spec = ctx.mapping(spec, line, field)
            ctx.check_keys(spec, {"low", "high", "away_from", "margin", "exclude", "positive"}, field)
            values = {}
            for k, v in spec.items():
                if k == "positive":  # OPDSL.md's shorthand: values in (0, high]
                    if v is not True or "low" in spec:
                        ctx.fail(spec.key_line(k), f"{field}.{k}", "positive: true (and no low) draws values "
                                 "above 0")
                    continue
                items = v if k in ("away_from", "exclude") else [v]
                if not isinstance(items, list):
                    ctx.fail(spec.key_line(k), f"{field}.{k}", "expected a list of numbers")
                nums = [_number(ctx, spec.key_line(k), f"{field}.{k}", i) for i in items]
                if k == "exclude":  # OPDSL.md's name: kept `margin` away from each value, as away_from
                    values["away_from"] = values.get("away_from", []) + nums
                elif k == "away_from":
                    values[k] = values.get(k, []) + nums
                else:
                    values[k] = nums[0]
            if spec.get("positive") is True:
                values["low"] = values.get("margin", Domain.margin) * 10  # clear of 0 by more than a finite step
            d = Domain(**values)
            if not d.low < d.high:
                ctx.fail(line, field, f"needs low < high, got low={d.low}, high={d.high}")
            domains[str(arg_name)] = d
    tol = {}
    if "tol" in tests:
        tmap = ctx.mapping(tests["tol"], tests.key_line("tol"), "tests.tol")
        for dtype, spec in tmap.items():
            if dtype not in declared_dtypes:
                ctx.fail(tmap.key_line(dtype), f"tests.tol.{dtype}",
                         f"is not one of the op's dtypes ({', '.join(declared_dtypes)})")
            spec = ctx.mapping(spec, tmap.key_line(dtype), f"tests.tol.{dtype}")
            ctx.check_keys(spec, {"atol", "rtol"}, f"tests.tol.{dtype}")
            tol[str(dtype)] = {k: _number(ctx, spec.key_line(k), f"tests.tol.{dtype}.{k}", v)
                               for k, v in spec.items()}
    # Attribute values for the tests: defaults, overridden by tests.attrs; an
    # attribute without a default must be given one here.
    attrs = {a.name: a.default for a in attr_args if a.has_default}
    if "attrs" in tests:
        amap = ctx.mapping(tests["attrs"], tests.key_line("attrs"), "tests.attrs")
        by_name = {a.name: a for a in attr_args}
        for name, value in amap.items():
            if name not in by_name:
                ctx.fail(amap.key_line(name), f"tests.attrs.{name}",
                         f"is not an attribute of the op (attributes: {', '.join(by_name) or 'none'})")
            if not _default_fits(by_name[name].type, value):
                ctx.fail(amap.key_line(name), f"tests.attrs.{name}", f"{value!r} is not a {by_name[name].type}")
            attrs[str(name)] = value
    for a in attr_args:
        if a.name not in attrs:
            ctx.fail(tests.line, f"tests.attrs.{a.name}",
                     "the attribute has no default, so the tests need a value for it")
    gradcheck = {}
    if "gradcheck" in tests:
        gmap = ctx.mapping(tests["gradcheck"], tests.key_line("gradcheck"), "tests.gradcheck")
        ctx.check_keys(gmap, {"eps", "atol", "rtol", "gradgrad"}, "tests.gradcheck")
        for k, v in gmap.items():
            field = f"tests.gradcheck.{k}"
            if k == "gradgrad":
                if not isinstance(v, bool):
                    ctx.fail(gmap.key_line(k), field, f"expected true or false, got {v!r}")
                gradcheck[k] = v
            else:
                gradcheck[str(k)] = _number(ctx, gmap.key_line(k), field, v)
    shapes, case_attrs = [], []
    by_name = {a.name: a for a in attr_args}
    if "shapes" in tests and update_op:  # one shape per case: every array of an update has it
        value, line = tests["shapes"], tests.key_line("shapes")
        if not (isinstance(value, list) and value and all(isinstance(shp, list) and all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shp) for shp in value)):
            ctx.fail(line, "tests.shapes", "expected a list of shapes (lists of sizes), one per case")
        shapes = [list(shp) for shp in value]
    elif "shapes" in tests:
        value, line = tests["shapes"], tests.key_line("shapes")
        # A case may be {shapes: [...], attrs: {...}}: shapes with attribute
        # values of its own (over tests.attrs), e.g. a strided, grouped
        # convolution beside a plain one.
        if isinstance(value, list):
            value = [_case_with_attrs(ctx, case, line, by_name, attrs, case_attrs) for case in value]
        # null in place of a shape: an optional (Tensor?) argument not given
        ok = isinstance(value, list) and value and all(
            isinstance(case, list) and (len(case) >= 1 if list_op else len(case) == len(tensor_names)) and all(
                (shp is None and not list_op and tensor_names[k] in optional) or (isinstance(shp, list) and all(
                    isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shp))
                for k, shp in enumerate(case)) for case in value)
        if not ok and list_op:
            ctx.fail(line, "tests.shapes", f"expected a list of cases, each a list of the shapes of the arrays "
                     f"in '{tensor_names[0]}' (at least one)")
        if not ok:
            ctx.fail(line, "tests.shapes", f"expected a list of cases, each a list of {len(tensor_names)} "
                     f"shape(s) (lists of sizes, or null for a Tensor? not given), one per Tensor argument "
                 f"{tensor_names}")
        shapes = [[None if shp is None else list(shp) for shp in case] for case in value]
    return TestHints(ref=ref, domain=domains, tol=tol, attrs=attrs, gradcheck=gradcheck, shapes=shapes,
                     case_attrs=case_attrs if any(case_attrs) else [])


def _case_with_attrs(ctx: _Ctx, case, line: int, by_name: dict, attrs: dict, case_attrs: list):
    """One tests.shapes case: its shapes, recording its own attribute values
    (tests.attrs overridden by the case's `attrs:`) in case_attrs."""
    if not isinstance(case, dict):
        case_attrs.append({})
        return case
    field = "tests.shapes[]"
    line = getattr(case, "line", line)
    ctx.check_keys(case, {"shapes", "attrs"}, field)
    if "shapes" not in case:
        ctx.fail(line, f"{field}.shapes", "missing: a case given as a mapping needs shapes: [...]")
    own = {}
    amap = ctx.mapping(case["attrs"], case.key_line("attrs"), f"{field}.attrs") if "attrs" in case else {}
    for name, value in amap.items():
        at = amap.key_line(name)
        if name not in by_name:
            ctx.fail(at, f"{field}.attrs.{name}",
                     f"is not an attribute of the op (attributes: {', '.join(by_name) or 'none'})")
        if not _default_fits(by_name[name].type, value):
            ctx.fail(at, f"{field}.attrs.{name}", f"{value!r} is not a {by_name[name].type}")
        own[str(name)] = value
    case_attrs.append(own)
    return case["shapes"]


def _number(ctx: _Ctx, line: int, field: str, value) -> float:
    # YAML 1.1 reads `1e-3` (no dot) as a string; accept it as the number it means.
    if isinstance(value, bool):
        ctx.fail(line, field, f"expected a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        ctx.fail(line, field, f"expected a number, got {value!r}")


def _parse_generate_op(ctx: _Ctx, doc) -> OpDef:
    """An op whose kernel is kernel.generate (generator/generate_spec.py):
    attributes only, a shape from an attribute or a C++ function, its dtype
    from its `dtype` attribute, no gradient."""
    for required in ("op", "args", "outputs", "dtypes", "kernel", "shape"):
        if required not in doc:
            ctx.fail(doc.line, required, "missing required field")
    name = doc["op"]
    if not isinstance(name, str) or not NAME_RE.match(name) or name in RESERVED:
        ctx.fail(doc.key_line("op"), "op", f"'{name}' is not a snake_case name or is reserved")
    args = _parse_args(ctx, doc)
    outputs = _parse_outputs(ctx, doc)
    if len(outputs) != 1:
        ctx.fail(doc.key_line("outputs"), "outputs", "a generate op has exactly one output")
    dtypes = _parse_dtypes(ctx, doc)
    tags = _parse_tags(ctx, doc)
    kernel = parse_generate(ctx, doc, args, tags)
    dtype_arg = next(a for a in args if a.type == "dtype")
    if dtype_arg.default not in dtypes:
        ctx.fail(dtype_arg.line, "args.dtype.default", f"{dtype_arg.default!r} is not one of the op's dtypes "
                 f"({', '.join(dtypes)})")
    scalar_types = {a.name: a.type for a in args if a.type in ("float", "int", "bool")}
    checks = parse_checks(ctx, doc, set(), scalar_types)
    variants = _parse_variants(ctx, doc, ["function", "out"])
    if set(variants) - {"function", "out"}:
        ctx.fail(doc.key_line("variants"), "variants", "a generate op has the function and out= variants only")
    python_name, _ = _parse_python(ctx, doc, name, 0)
    tests = _parse_generate_test_hints(ctx, doc, args, dtypes, kernel.random)
    doc_text = doc.get("doc", "")
    if not isinstance(doc_text, str):
        ctx.fail(doc.key_line("doc"), "doc", "expected a string")
    return OpDef(name=str(name), file=ctx.file, line=doc.line, doc=str(doc_text).strip(), args=args,
                 outputs=outputs, dtypes=dtypes, dtype_rule="from_attr:dtype", shape_rule="generate",
                 shape_args=[], pointwise=None, grads={}, nondiff=[], variants=variants, tags=tags,
                 python_name=python_name, tests=tests, checks=checks, generate=kernel)


def _parse_generate_test_hints(ctx: _Ctx, doc, args, dtypes, random: bool) -> TestHints:
    """tests.cases (attribute values per case), and tests.ref (NumPy, over
    the attributes) for a deterministic op or tests.moments / tests.range
    for a random one; tests.tol per dtype."""
    tests = doc.get("tests")
    if tests is None:
        ctx.fail(doc.line, "tests", "missing: a generate op's tests give cases and a reference")
    tests = ctx.mapping(tests, doc.key_line("tests"), "tests")
    ctx.check_keys(tests, {"cases", "ref", "tol", "moments", "range"}, "tests")
    hints = parse_generate_tests(ctx, tests, random)
    by_name = {a.name: a for a in args}
    for k, case in enumerate(hints["cases"]):
        line = tests["cases"][k].line
        for attr, value in case.items():
            if attr not in by_name:
                ctx.fail(line, f"tests.cases[{k}].{attr}", f"is not an attribute (attributes: {', '.join(by_name)})")
            if not _default_fits(by_name[attr].type, value):
                ctx.fail(line, f"tests.cases[{k}].{attr}", f"{value!r} is not a {by_name[attr].type}")
        for a in args:
            if not a.has_default and a.name not in case:
                ctx.fail(line, f"tests.cases[{k}].{a.name}", "the attribute has no default: give it a value")
    known = {a.name: "attribute" for a in args} | {"np": "numpy"}
    ref = None
    if "ref" in tests:
        if random:
            ctx.fail(tests.key_line("ref"), "tests.ref", "a random op is checked by tests.moments and tests.range")
        ref = ex.parse(tests["ref"], ctx.file, "tests.ref")
        for n in ref.names():
            if n not in known:
                raise ref.error(f"undefined name '{n}' (known here: {', '.join(sorted(known))})")
    elif not random:
        ctx.fail(tests.line, "tests.ref", "missing: a deterministic generate op needs a NumPy reference")
    tol = {}
    if "tol" in tests:
        tmap = ctx.mapping(tests["tol"], tests.key_line("tol"), "tests.tol")
        for dtype, spec in tmap.items():
            if dtype not in dtypes:
                ctx.fail(tmap.key_line(dtype), f"tests.tol.{dtype}", f"is not one of the op's dtypes ({', '.join(dtypes)})")
            spec = ctx.mapping(spec, tmap.key_line(dtype), f"tests.tol.{dtype}")
            ctx.check_keys(spec, {"atol", "rtol"}, f"tests.tol.{dtype}")
            tol[str(dtype)] = {k: _number(ctx, spec.key_line(k), f"tests.tol.{dtype}.{k}", v) for k, v in spec.items()}
    return TestHints(ref=ref, domain={}, tol=tol, attrs={"cases": hints["cases"], "moments": hints["moments"],
                                                          "range": hints["range"]})
