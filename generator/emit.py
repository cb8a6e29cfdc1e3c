"""View-models for the templates, and the list of files each op produces.

All decisions (C++ parameter lists, dtype switches, Python defaults, test
data) are made here; the templates under templates/ only substitute."""
from __future__ import annotations

import functools
import json
from pathlib import Path

import jinja2

from generator.expr import to_cpp_scalar
from generator.generate_spec import INDEX_NAMES
from generator.grad_codegen import composite_body, node_view
from generator.model import ATTR_TYPES, CPP_DTYPE, OpDef


# Per kernel kind: the templates of its dispatch, its kernel header (what
# the generator declares), its generated kernels, and its test suite.
#   pointwise/reduce/update: generated CPU and CUDA kernels;
#   impl: a header declaring the hand-written kernels, no generated ones;
#   view: a header declaring the function that makes the view;
#   composite: no kernels at all (the body calls other operators).
_KIND_TEMPLATES = {
    "pointwise": ("op_dispatch", "kernel_header", ("kernel_cpu", "kernel_cuda"), "test_op"),
    "reduce": ("reduce_op_dispatch", "reduce_kernel_header", ("reduce_kernel_cpu", "reduce_kernel_cuda"),
               "test_reduce"),
    "update": ("update_op_dispatch", "update_kernel_header", ("update_kernel_cpu", "update_kernel_cuda"),
               "test_update"),
    "impl": ("impl_op_dispatch", "impl_kernel_header", (), "test_impl"),
    "view": ("view_op_dispatch", "view_kernel_header", (), "test_impl"),
    "composite": ("composite_op_dispatch", None, (), "test_impl"),
    "generate": ("generate_op_dispatch", "generate_kernel_header", ("generate_kernel_cpu", "generate_kernel_cuda"),
                 "test_generate"),
}
_KERNEL_PATHS = {"cpu": "kernels/cpu/{}.cc", "cuda": "kernels/cuda/{}.cu"}


def op_outputs(name: str, kind: str = "pointwise") -> dict[str, str]:
    """Template -> output path (relative to generated/) for one operator."""
    dispatch, header, kernels, test = _KIND_TEMPLATES[kind]
    out = {"capi_header.h.j2": f"include/loom/c/{name}.h", "capi_op.cc.j2": f"capi/{name}.cc",
           "op_header.h.j2": f"include/loom/ops/{name}.h", f"{dispatch}.cc.j2": f"ops/{name}.cc"}
    if header:
        out[f"{header}.h.j2"] = f"kernels/{name}.h"
    for template in kernels:
        backend = "cuda" if template.endswith("cuda") else "cpu"
        out[f"{template}.{'cu' if backend == 'cuda' else 'cc'}.j2"] = _KERNEL_PATHS[backend].format(name)
    out["bind_op.cc.j2"] = f"python/bind_{name}.cc"
    out["graph_op.cc.j2"] = f"graph/{name}.cc"
    out[f"{test}.py.j2"] = f"tests/test_{name}.py"
    return out


INDEX_OUTPUTS = {
    "ops_umbrella.h.j2": "include/loom/ops.h",
    "capi_umbrella.h.j2": "include/loom/c/ops.h",
    "bind_all.cc.j2": "python/bind_all.cc",
    None: "ops_manifest.json",
}


@functools.lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    """One environment per process: it keeps each template compiled (a
    fresh one per op compiled every template again, 90% of the run)."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True)


def _cpp_literal(value, type_name: str) -> str:
    if type_name == "dtype":
        return f"::loom::DType::{CPP_DTYPE[value][0]}"
    if type_name == "device":  # null: the CPU
        return "::loom::Device::cpu()"
    if type_name == "int[]":
        if value is None:
            return "std::nullopt"
        return "::loom::ReduceDims(std::vector<std::int64_t>{" + ", ".join(str(int(v)) for v in value) + "})"
    if type_name == "bool":
        return "true" if value else "false"
    if type_name == "float":
        return repr(float(value))
    return str(int(value))


def _cpp_string(text: str) -> str:
    return "R\"doc(" + text + ")doc\""


def op_view(op: OpDef) -> dict:
    tensors, attrs = op.tensor_args, op.attrs
    grad = node_view(op)
    params, params_with_defaults, py_args, bind_params, bind_call_args = [], [], [], [], []
    for a in op.args:
        cpp = ("const NDArray&" if a.is_tensor else "const std::vector<NDArray>&" if a.is_list
               else ATTR_TYPES[a.type][0])
        params.append(f"{cpp} {a.name}")
        if a.is_list:  # the binding collects *args (see bind_op.cc.j2)
            bind_params.append(f"nb::args {a.name}")
            bind_call_args.append(a.name)
        elif a.type == "int[]":  # Python None, an int or a list of ints
            bind_params.append(f"const ::loom::python::DimsArg& {a.name}")
            bind_call_args.append(f"::loom::python::to_reduce_dims({a.name})")
        elif a.type == "dtype":  # a dtype name ("float32") or a NumPy dtype
            bind_params.append(f"const ::loom::python::DTypeArg& {a.name}")
            bind_call_args.append(f'::loom::python::to_dtype("{op.python_name}", {a.name})')
        elif a.type == "device":  # None: the CPU
            bind_params.append(f"const loom::Device* {a.name}")
            bind_call_args.append(f"({a.name} != nullptr ? *{a.name} : loom::Device::cpu())")
        elif a.optional:  # None: not given (an undefined NDArray for C++)
            bind_params.append(f"const loom::NDArray* {a.name}")
            bind_call_args.append(f"({a.name} != nullptr ? *{a.name} : loom::NDArray())")
        else:
            bind_params.append(f"{cpp} {a.name}")
            bind_call_args.append(a.name)
        default = f" = {_cpp_literal(a.default, a.type)}" if a.has_default else " = NDArray()" if a.optional else ""
        params_with_defaults.append(f"{cpp} {a.name}{default}")
        py = f'"{a.name}"_a'
        if a.kwarg_only and not any(b.kwarg_only for b in op.args[:op.args.index(a)]) and op.tensor_list is None:
            py_args.append("nb::kw_only()")  # as * in a Python signature (a list op's *arrays is one already)
        if a.type == "dtype":  # Python sees the dtype's name
            py_args.append(py + f' = "{a.default}"')
        elif a.type == "device":
            py_args.append(py + ".none() = nb::none()")
        else:
            py_args.append(py + (f" = {_cpp_literal(a.default, a.type)}" if a.has_default else
                                 ".none() = nb::none()" if a.optional else ""))
    # index arrays and the arrays an impl op mutates take no part in promotion
    values = [t for t in tensors if not t.index and t.name not in op.mutates]
    if op.tensor_list is not None:
        dtype_expr = f'promote_list(kOp, "{op.tensor_list.name}", {op.tensor_list.name})'
    elif op.generate is not None:
        dtype_expr = op.generate.dtype_arg
    elif op.dtype_rule == "float32" and not values:
        dtype_expr = "DType::kFloat32"
    elif op.dtype_rule.startswith("attr:"):  # cast: the input's dtype; the result's is the attribute
        dtype_expr = f"{values[0].name}.dtype()"
    elif op.dtype_rule in ("promote", "bool", "int64", "float32"):
        dtype_expr = f"{values[0].name}.dtype()"
        for t in values[1:]:
            dtype_expr = (f"promote_if_given({dtype_expr}, {t.name})" if t.optional
                          else f"promote_types({dtype_expr}, {t.name}.dtype())")
    else:
        dtype_expr = op.dtype_rule.split(":", 1)[1] + ".dtype()"
    kernel_dtypes = [{"enum": CPP_DTYPE[d][0], "cpp": CPP_DTYPE[d][1],
                      "out_cpp": "bool" if op.dtype_rule == "bool" else CPP_DTYPE[d][1]}
                     for d in op.kernel_dtypes]
    source = f"{op.file}:{op.line}"
    # nanobind prepends the Python signature itself.
    docstring = (f"{op.doc}\n\n"
                 f"dtypes: {', '.join(op.dtypes)}\n(generated from {source})")
    return {
        "name": op.name, "python_name": op.python_name, "source": source, "file": op.file,
        "doc_line": op.doc.splitlines()[0] if op.doc else op.name,
        "dtypes": ", ".join(op.dtypes), "functor": op.functor,
        "params": params,
        "params_with_defaults": ", ".join(params_with_defaults),
        "call_args": [a.name for a in op.args],
        "bind_params": bind_params,
        "is_reduce": op.kind == "reduce",
        "bind_call_args": bind_call_args,
        "py_args": py_args,
        "py_has_kw_only": "nb::kw_only()" in py_args,
        "has_out": "out" in op.variants,
        "checks": [{"cpp": c.cpp, "msg": c.msg, "shown": c.shown, "text": c.expr.text} for c in op.checks],
        **_inplace_view(op),
        "dtype_rule_py": repr(op.dtype_rule),
        "diff_inputs": repr([t.name for t in (tensors or [a for a in [op.tensor_list] if a is not None])
                             if t.name in op.grads or (op.kind == "composite" and not t.index)]),
        "gradcheck": repr(dict(op.tests.gradcheck)),
        "case_attrs": repr(op.tests.case_attrs),
        "mutated_py": repr(tuple(op.mutates)) if op.kind == "impl" else "()",
        "test_shapes": repr([tuple(case) for case in op.tests.shapes] if op.kind == "update" else
                            [[None if shp is None else tuple(shp) for shp in case] for case in op.tests.shapes]),
        "attrs": [{"name": a.name, "cpp_type": ATTR_TYPES[a.type][0]} for a in attrs],
        "attr_names": ", ".join(a.name for a in attrs),
        **_bool_dispatch(op),
        # graph fusion passes a node's attributes as doubles, in declared order:
        # how each becomes its functor field, and its one-letter type for the registry
        "tile_attr_init": ", ".join(_FUSABLE_ATTRS.get(a.type, ("", ""))[0].format(i=i)
                                    for i, a in enumerate(op.attrs)),
        "fusion_attr_types": "".join(_FUSABLE_ATTRS.get(a.type, ("", "?"))[1] for a in op.attrs),
        **_capi_view(op),
        "scalar_params": ", ".join(f"T {t.name}" for t in tensors),
        "body": (to_cpp_scalar(op.pointwise, {t.name for t in tensors}, {a.name for a in attrs},
                               result_bool=op.dtype_rule == "bool",
                               bool_attrs={a.name for a in attrs if a.type == "bool"}) if op.pointwise else ""),
        # Comparisons and logical ops compute in the inputs' dtype but yield bool.
        "result_type": "bool" if op.dtype_rule == "bool" else "T",
        "out_dtype_expr": _FIXED_DTYPES.get(op.dtype_rule, "dtype"),
        # an impl op's kernels write float32 for a float16/bfloat16 result
        "out_compute_expr": _FIXED_DTYPES.get(op.dtype_rule, "compute"),
        **_impl_dtypes_view(op),
        "body_line": op.pointwise.line if op.pointwise else 0,
        **(_reduce_view(op) if op.reduce else {}),
        **(_impl_view(op) if op.impl else {}),
        **({"view_fn": op.view, "view_params": ", ".join(
            [f"const NDArray& {t.name}" for t in tensors] + [f"{ATTR_TYPES[a.type][0]} {a.name}" for a in attrs]),
            "tensor_names": [t.name for t in tensors]} if op.view else {}),
        "is_view": op.kind == "view",
        "is_composite": op.kind == "composite",
        **(_update_view(op) if op.update is not None else {}),
        **(_generate_view(op) if op.generate is not None else {}),
        "list_arg": op.tensor_list.name if op.tensor_list else None,
        "list_input": repr(op.tensor_list is not None),
        "has_dims_attr": any(a.type == "int[]" for a in attrs),
        **({"composite": composite_body(op), "tensor_names": [t.name for t in op.tensor_args]}
           if op.composite is not None else {}),
        "grad": grad,
        **_outputs_view(op),
        **_graph_view(op),
        # a tile function for graph fusion (runtime/kernels/cpu/tile_kernels.h): pointwise,
        # scalar attributes only (a fused node passes their values), the result in the
        # inputs' dtype, float32 and float64 built
        "tile_fusable": (op.kind == "pointwise" and all(a.type in _FUSABLE_ATTRS for a in op.attrs)
                         and (op.dtype_rule == "promote" or op.dtype_rule.startswith("same_as:"))
                         and not op.int_promote and {"float32", "float64"} <= set(op.kernel_dtypes)
                         and all(not t.index and not t.optional for t in op.tensor_args)),
        **_tile_grads_view(op, grad),
        # the in-place variant copies its target first when the backward reads its old values
        # (as itself, or as another operand that is the same array: x *= x)
        "inplace_saved": any(s["name"] == op.inplace and s["output_nr"] < 0 for s in grad.get("saved", [])),
        "inplace_keep": _inplace_keep(op, grad),
        "arity": len(tensors),
        "kernel_dtypes": kernel_dtypes,
        "kernel_dtype_list": ", ".join(op.kernel_dtypes),
        # fused first-order gradient kernels (pointwise ops whose grad formulas are pointwise)
        "grad_dtypes": [{"enum": CPP_DTYPE[d][0], "cpp": CPP_DTYPE[d][1], "out_cpp": CPP_DTYPE[d][1]}
                        for d in ("float32", "float64") if d in op.kernel_dtypes],
        "grad_dtype_list": ", ".join(d for d in ("float32", "float64") if d in op.kernel_dtypes),
        # A view computes nothing, so every declared dtype works already.
        "kernel_dtype_enums": ", ".join(f"DType::{CPP_DTYPE[d][0]}"
                                        for d in (op.dtypes if op.kind == "view" else op.kernel_dtypes)),
        "pending_dtype_enums": ", ".join(f"DType::{CPP_DTYPE[d][0]}"
                                         for d in ([] if op.kind == "view" else op.pending_dtypes)),
        "dtype_expr": dtype_expr,
        "named_inputs": ", ".join(_named_input(t) for t in tensors if t.name not in op.mutates or op.kind == "update"),
        # impl ops: arrays the kernels write in place, handed over unconverted
        "mutated_names": [t.name for t in tensors if t.name in op.mutates] if op.kind == "impl" else [],
        "required_tensor_names": [t.name for t in tensors if not t.optional],
        "optional_names": [t.name for t in tensors if t.optional],
        "arg_names": ", ".join(f'"{a.name}"' for a in op.args),
        "dtype_names": ", ".join(f'"{d}"' for d in op.dtypes),
        "tag_names": ", ".join(f'"{t}"' for t in op.tags),
        "python_operator_names": ", ".join(f'"{o}"' for o in op.python_operators),
        "variant_names": ", ".join(f'"{v}"' for v in op.variants),
        # impl ops check dtypes_cuda before calling their CUDA kernel
        "cuda_dtype_enums": (", ".join(f"DType::{CPP_DTYPE[d][0]}" for d in op.cuda_kernel_dtypes)
                             if op.dtypes_cuda is not None else None),
        "docstring": _cpp_string(docstring),
        # tests
        "inputs": repr([t.name for t in tensors] or [op.tensor_list.name for _ in [0] if op.tensor_list]),
        "index_inputs": repr([t.name for t in tensors if t.index]),
        "attrs_py": dict(op.tests.attrs),
        "shape_rule": op.shape_rule,
        "dtype_rule": op.dtype_rule,
        "declared_dtypes": repr(op.dtypes),
        "ref_params": ", ".join(a.name for a in op.args),
        "ref": op.tests.ref.text if op.tests.ref is not None else "None",
        "domain": repr({k: vars(v) for k, v in op.tests.domain.items()}),
        "tol": repr(op.tests.tol),
    }


_FIXED_DTYPES = {"int64": "DType::kInt64", "bool": "DType::kBool", "float32": "DType::kFloat32"}


def _outputs_view(op: OpDef) -> dict:
    """What an op returns: one array, or a struct of its visible outputs
    (C++), a tuple (Python), one out-parameter per output (C)."""
    visible = op.visible_outputs
    if op.list_output is not None:  # std::vector<NDArray> (C++), a list (Python), an array of handles (C)
        return {
            "output_names": [op.list_output.name], "output_dtypes": ["dtype"], "visible_indices": [0],
            "visible_names": [op.list_output.name], "visible_count": 1, "result_struct": None,
            "return_type": "std::vector<NDArray>", "bind_return": "std::vector<loom::NDArray>",
            "bind_result": "r", "visible_py": repr([(op.list_output.name, None, True)]),
            "list_output": op.list_output.name, "output_count": op.list_output.count,
            "output_count_cpp": op.list_output.count_cpp,
            "output_count_given_cpp": op.list_output.count_given_cpp, "output_count_attr": op.list_output.count_attr,
        }
    struct = op.result_struct if len(visible) > 1 else None
    return {
        "list_output": None, "output_count": None,
        "output_names": [o.name for o in op.outputs],
        "output_dtypes": [_FIXED_DTYPES.get(o.dtype, "dtype") for o in op.outputs],
        "visible_indices": [op.outputs.index(o) for o in visible],
        "visible_names": [o.name for o in visible],
        "visible_count": len(visible),
        "result_struct": struct,
        "return_type": struct or "NDArray",
        "bind_return": ("std::tuple<" + ", ".join(["loom::NDArray"] * len(visible)) + ">") if struct else "loom::NDArray",
        "bind_result": ("std::make_tuple(" + ", ".join(f"r.{o.name}" for o in visible) + ")") if struct else "r",
        # tests: (name, fixed dtype or None, differentiable) per visible output
        "visible_py": repr([(o.name, o.dtype, o.differentiable) for o in visible]),
    }


_GRAPH_ATTR = {"int": ("kInt", "int_attr"), "float": ("kFloat", "float_attr"), "bool": ("kBool", "bool_attr"),
               "int[]": ("kIntList", "dims_attr"),
               # a DType's enum value; a device as [type, id]
               "dtype": ("kInt", "dtype_attr"), "device": ("kIntList", "device_attr")}


def _attr_value_literal(value, type_name: str) -> str:
    """A graph::AttrValue initialiser for an attribute default."""
    if type_name == "dtype":
        return f"AttrValue(static_cast<std::int64_t>(DType::{CPP_DTYPE[value][0]}))"
    if value is None:
        return "AttrValue()"
    if type_name == "int[]":
        return "AttrValue(std::vector<std::int64_t>{" + ", ".join(str(int(v)) for v in value) + "})"
    if type_name == "bool":
        return "AttrValue(" + ("true" if value else "false") + ")"
    if type_name == "float":
        return f"AttrValue({float(value)!r})"
    return f"AttrValue(std::int64_t{{{int(value)}}})"


def _impl_dtypes_view(op: OpDef) -> dict:
    """An impl op's dtypes (impl_op_dispatch.cc.j2, whose local for the
    inputs' dtype is `in_dtype`, free of any attribute named dtype): the
    dtype its kernels see the inputs in, and the result's, computed and final."""
    if op.dtype_rule.startswith("attr:"):
        # a conversion reads its input as it is and writes the result dtype
        # directly: no float32 detour for the half types (no double rounding)
        attr = op.dtype_rule.split(":", 1)[1]
        return {"impl_compute_expr": "in_dtype", "impl_out_compute_expr": attr, "impl_out_dtype_expr": attr,
                "impl_writable_input": -1}
    return {"impl_compute_expr": "impl_compute_dtype(in_dtype)",
            "impl_out_compute_expr": _FIXED_DTYPES.get(op.dtype_rule, "compute"),
            "impl_out_dtype_expr": _FIXED_DTYPES.get(op.dtype_rule, "in_dtype"),
            # the input an `inplace` kernel may write over (ImplCall::allocate)
            "impl_writable_input": [t.name for t in op.tensor_args].index(op.inplace) if op.inplace else -1}


def _dtype_rule_view(op: OpDef) -> tuple[list[int], list[str]]:
    """(the array slots whose dtypes promote to the result's, each output's
    dtype as a C++ initialiser: fixed, or std::nullopt for the promoted
    one) for OpSchema. The same rule as the op's dispatch (dtype_expr in
    _op_view): index arrays and mutated arrays take no part."""
    slots = [i for i, t in enumerate(op.tensor_args)]
    values = [i for i, t in zip(slots, op.tensor_args) if not t.index and t.name not in op.mutates]
    if op.tensor_list is not None:
        dtype_slots = [-1]
    elif op.dtype_rule.startswith("same_as:"):
        name = op.dtype_rule.split(":", 1)[1]
        dtype_slots = [i for i, t in zip(slots, op.tensor_args) if t.name == name]
    else:
        dtype_slots = values
    rule = _FIXED_DTYPES.get(op.dtype_rule, "std::nullopt")
    outs = [_FIXED_DTYPES.get(o.dtype, rule) for o in op.outputs]
    return dtype_slots, outs


def _graph_view(op: OpDef) -> dict:
    """The op's graph schema (generated/graph/<op>.cc): one ArgSchema per
    argument, and the call of the C++ op from an OpCall."""
    args, call, slot = [], [], 0
    for a in op.args:
        if a.is_list:
            kind, attr_type, expr = "kTensorList", "kInt", "c.tensor_list()"
        elif a.is_tensor:
            kind, attr_type, expr = ("kOptionalTensor" if a.optional else "kTensor"), "kInt", f"c.tensor({slot})"
            slot += 1
        else:
            attr_type, getter = _GRAPH_ATTR[a.type]
            kind, expr = "kAttr", f'c.{getter}("{a.name}")'
        args.append({"name": a.name, "kind": kind, "attr_type": attr_type, "kwarg_only": a.kwarg_only,
                     "has_default": "true" if a.has_default else "false",
                     "default": _attr_value_literal(a.default, a.type) if a.has_default else "AttrValue()",
                     "mutated": "true" if a.name in op.mutates else "false",
                     "doc": json.dumps(a.doc or "", ensure_ascii=False)})
        call.append(expr)
    trace_inputs = "{" + ", ".join(f"&{t.name}" for t in op.tensor_args) + "}"
    trace_attrs = "graph::AttrMap{" + ", ".join(f'{{"{a.name}", graph::attr({a.name})}}' for a in op.attrs) + "}"
    tensor_names = [t.name for t in op.tensor_args]
    # A pointwise op reads each input element exactly where it writes the
    # output one; an impl kernel with `inplace` promises it tolerates out
    # being that input (scatter_add). Either may be planned over the input.
    writable = op.kind == "pointwise" or (op.kind == "impl" and not op.dtype_rule.startswith("attr:"))
    inplace_slot = tensor_names.index(op.inplace) if op.inplace in tensor_names and writable else -1
    dtype_slots, output_dtypes = _dtype_rule_view(op)
    types = {a.name: a.type for a in op.attrs}
    absorbs = [(consumer, [(attr, _attr_value_literal(value, types[attr])) for attr, value in values.items()])
               for consumer, values, _ in op.absorbs]
    return {"graph_args": args, "graph_call_args": call, "graph_doc": json.dumps(op.doc or "", ensure_ascii=False),
            "graph_inplace_slot": inplace_slot, "is_pointwise_kind": op.kind == "pointwise",
            "graph_absorbs": absorbs, "graph_dtype_slots": dtype_slots, "graph_output_dtypes": output_dtypes,
            # out= for one output; <op>_into for several (impl ops only)
            "graph_has_into": ("out" in op.variants and len(op.outputs) == 1) or len(op.outputs) > 1,
            # a Tensor[] output: the int attribute giving how many arrays a node has
            "graph_output_count": op.list_output.count_attr if op.list_output is not None else "",
            "graph_int_to_int64": "true" if op.reduce is not None and op.int_promote else "false",
            # a generate op's result dtype is its `dtype` attribute
            "graph_dtype_attr": (op.generate.dtype_arg if op.generate is not None else
                                 op.dtype_rule.split(":", 1)[1] if op.dtype_rule.startswith("attr:") else ""),
            "trace_inputs": trace_inputs, "trace_attrs": trace_attrs}


def _named_input(t) -> str:
    """A NamedInput initialiser: {name, &array, index, optional}."""
    if t.optional:
        return f'{{"{t.name}", &{t.name}, {"true" if t.index else "false"}, true}}'
    return f'{{"{t.name}", &{t.name}{", true" if t.index else ""}}}'


def _inplace_keep(op: OpDef, grad: dict) -> str:
    """C++ condition under which op_ must copy its target before writing."""
    saved = [s["name"] for s in grad.get("saved", []) if s["output_nr"] < 0]
    if op.inplace is None or not saved:
        return "false"
    if op.inplace in saved:
        return "true"
    tensors = {t.name for t in op.tensor_args}
    return " || ".join(f"&{n} == &{op.inplace}" for n in saved if n in tensors) or "false"


def _inplace_view(op: OpDef) -> dict:
    """Signatures of op_: the overwritten input by non-const reference."""
    if op.inplace is None:
        return {"inplace": None}

    def param(a, with_default):
        if a.is_tensor:
            return f"NDArray& {a.name}" if a.name == op.inplace else f"const NDArray& {a.name}"
        default = f" = {_cpp_literal(a.default, a.type)}" if with_default and a.has_default else ""
        return f"{ATTR_TYPES[a.type][0]} {a.name}{default}"

    bind = []
    for a in op.args:
        if a.type == "int[]":
            bind.append(f"const ::loom::python::DimsArg& {a.name}")
        else:
            bind.append(param(a, False))
    return {"inplace": op.inplace,
            "inplace_params": ", ".join(param(a, True) for a in op.args),
            "inplace_params_plain": ", ".join(param(a, False) for a in op.args),
            "inplace_bind_params": bind,
            "tensor_arg_names": [t.name for t in op.tensor_args]}


def _capi_view(op: OpDef) -> dict:
    """C parameters: handles for arrays, double/int64_t/int for attributes,
    (const int64_t* dims, int num_dims) for int[] (num_dims < 0: None)."""
    params, prologue, call = [], [], []
    for a in op.args:
        if a.is_list:
            params += [f"const LoomArray* {a.name}", f"int num_{a.name}"]
            prologue += [f'LOOM_CHECK(num_{a.name} >= 0 && ({a.name} != nullptr || num_{a.name} == 0), '
                         f'"loom_{op.name}: {a.name} must point to num_{a.name} >= 0 arrays");',
                         f"std::vector<loom::NDArray> {a.name}_v;",
                         f"for (int i = 0; i < num_{a.name}; ++i) {a.name}_v.push_back(loom::capi::unwrap("
                         f'{a.name}[i], "{op.name}: {a.name}[i]"));']
            call.append(f"{a.name}_v")
        elif a.optional:  # NULL: not given
            params.append(f"LoomArray {a.name}")
            prologue.append(f'const loom::NDArray {a.name}_a = {a.name} == nullptr ? loom::NDArray() : '
                            f'loom::capi::unwrap({a.name}, "{op.name}: {a.name}");')
            call.append(f"{a.name}_a")
        elif a.is_tensor:
            params.append(f"LoomArray {a.name}")
            prologue.append(f'const loom::NDArray& {a.name}_a = loom::capi::unwrap({a.name}, "{op.name}: {a.name}");')
            call.append(f"{a.name}_a")
        elif a.type == "int[]":
            params += [f"const int64_t* {a.name}", f"int num_{a.name}"]
            prologue.append(f"const ::loom::ReduceDims {a.name}_v = num_{a.name} < 0 ? ::loom::ReduceDims() : "
                            f"::loom::ReduceDims(std::vector<std::int64_t>({a.name}, {a.name} + num_{a.name}));")
            call.append(f"{a.name}_v")
        elif a.type == "bool":
            params.append(f"int {a.name}")
            call.append(f"{a.name} != 0")
        elif a.type == "dtype":  # runtime/core/dtype.h's DType, as its enum value
            params.append(f"int {a.name}")
            prologue.append(f'const ::loom::DType {a.name}_v = ::loom::capi::dtype_arg("{op.name}", {a.name});')
            call.append(f"{a.name}_v")
        elif a.type == "device":  # LOOM_CPU / LOOM_GPU and the device number
            params += [f"int {a.name}_type", f"int {a.name}_id"]
            prologue.append(f'const ::loom::Device {a.name}_v = ::loom::capi::device_arg("{op.name}", '
                            f'{a.name}_type, {a.name}_id);')
            call.append(f"{a.name}_v")
        else:
            params.append(f"{'double' if a.type == 'float' else 'int64_t'} {a.name}")
            call.append(a.name)
    return {"c_params": ", ".join(params), "c_prologue": prologue, "c_call_args": ", ".join(call)}


# Attribute types a fused pointwise node can carry: how its functor field is
# built from the double the graph passes, and its letter in the fusion registry.
_FUSABLE_ATTRS = {"float": ("attrs[{i}]", "f"), "int": ("static_cast<std::int64_t>(attrs[{i}])", "i"),
                  "bool": ("attrs[{i}] != 0", "b")}


def _tile_grads_view(op: OpDef, grad: dict) -> dict:
    """The tile functions of a fusable op's gradient formulas, for the
    backward of fused groups (runtime/kernels/cpu/tile_kernels.h): one per
    input whose formula compiled to a scalar functor, each mapping the
    functor's operands ("grad", inputs, the output) onto the tile's
    pointers. `tile_backward` is true when every differentiable input has
    one (none for floor, whose input takes no gradient), so a fused group's
    backward may hold the op."""
    tensors = [t.name for t in op.tensor_args]
    outputs = {o.name for o in op.outputs} | {"result"}
    tile_grads = []
    for b in grad.get("blocks", []):
        if b.get("joint") or not b.get("fused"):
            continue
        f = b["fused"]
        ptrs, mask, codes = [], [], ""
        for k, name in enumerate(f["operands"]):
            if name == "grad":
                ptrs.append("grad")
                codes += "g"
            elif name in outputs:
                ptrs.append("out")
                codes += "o"
            else:
                i = tensors.index(name)
                ptrs.append(f"in[{i}]")
                mask.append(f"(((scalars >> {i}) & 1U) << {k})" if i != k else f"(scalars & {1 << i}U)")
                codes += str(i)
        tile_grads.append({"index": b["index"], "functor": f["functor"], "kernel": f["kernel"],
                           "arity": len(f["operands"]), "ptrs": ", ".join(ptrs),
                           "mask": " | ".join(mask) if mask else "0U",
                           # for the fused GPU backward's source (fusion_source.h): the functor's
                           # operands as g (gradient), o (output) or the input's index
                           "codes": codes, "params": ", ".join(f"T {n}" for n in f["operands"]),
                           "body": f["body"], "line": f["line"]})
    diff = [i for i, t in enumerate(op.tensor_args) if t.name in op.grads]
    return {"tile_grads": tile_grads,
            "tile_backward": sorted(g["index"] for g in tile_grads) == diff}


def _bool_dispatch(op: OpDef) -> dict:
    """Pointwise ops with bool attributes get functors with those fixed at
    compile time; the CPU entry picks one per call (every combination)."""
    bools = [a.name for a in op.attrs if a.type == "bool"] if op.kind == "pointwise" else []
    combos = []
    for i in range(2 ** len(bools) if bools else 0):
        values = [bool(i >> k & 1) for k in range(len(bools))]
        combos.append({"cond": " && ".join(f"{'' if v else '!'}f.{b}" for b, v in zip(bools, values)),
                       "args": ", ".join("true" if v else "false" for v in values)})
    return {"bool_attrs": bools, "bool_combos": combos,
            "fixed_init": ", ".join(f"f.{a.name}" for a in op.attrs if a.type != "bool")}


def _reduce_view(op: OpDef) -> dict:
    """The monoid of a reduction as C++ (Acc is the accumulator type)."""
    r = op.reduce
    attr_names = {a.name for a in op.attrs}
    init = {"inf": "::loom::pw::highest<Acc>()", "-inf": "::loom::pw::lowest<Acc>()"}.get(
        r.init, f"Acc({r.init})")
    x, dims, keepdim = op.shape_args
    types = []
    for d in op.kernel_dtypes:
        cpp = CPP_DTYPE[d][1]
        integral = d not in ("float32", "float64", "float16", "bfloat16")
        if d in ("float16", "bfloat16"):
            acc = "float"  # opmath: half elements accumulate in float32, whatever r.acc says
        else:
            acc = cpp if r.acc == "same" else ("std::int64_t" if integral else "double")
        out = "std::int64_t" if op.int_promote and integral else cpp
        types.append({"enum": CPP_DTYPE[d][0], "cpp": cpp, "acc": acc, "out_cpp": out})
    # dims and keepdim shape the iteration; the monoid sees only other attributes
    # (it is passed to the CUDA kernel by value, so it must stay trivially copyable).
    monoid_attrs = [a for a in op.attrs if a.name not in (dims, keepdim)]
    return {
        "attrs": [{"name": a.name, "cpp_type": ATTR_TYPES[a.type][0]} for a in monoid_attrs],
        "attr_names": ", ".join(a.name for a in monoid_attrs),
        "reduce_init": init,
        "reduce_combine": to_cpp_scalar(r.combine, {"a", "b"}, attr_names, scalar_type="Acc"),
        "reduce_map": to_cpp_scalar(r.map, {"x"}, attr_names, scalar_type="Acc") if r.map else "x",
        "reduce_project": (to_cpp_scalar(r.project, {"acc"}, attr_names | {"n"}, scalar_type="Acc")
                           if r.project else "acc"),
        "reduce_has_identity": "true" if r.has_identity else "false",
        "reduce_types": types,
        "reduce_in": x, "reduce_dims": dims, "reduce_keepdim": keepdim,
        "result_dtype_expr": (f"(is_floating({x}.dtype()) ? {x}.dtype() : DType::kInt64)"
                              if op.int_promote else f"{x}.dtype()"),
    }


def _generate_view(op: OpDef) -> dict:
    """kernel.generate as a functor of the flat index (computed in the
    compute type C), the shape expression, and the test data."""
    g = op.generate
    scalars = [a for a in op.attrs if a.type in ("float", "int", "bool")]
    ints = {a.name for a in scalars if a.type == "int"} | set(INDEX_NAMES)
    body = to_cpp_scalar(g.body, set(), {a.name for a in scalars}, scalar_type="C", int_names=ints,
                         random_calls=g.random, bool_attrs={a.name for a in scalars if a.type == "bool"})
    if g.shape_attr is not None:
        shape_expr = f'::loom::generate_shape(kOp, "{g.shape_attr}", {g.shape_attr})'
    else:
        shape_expr = f"{g.shape_fn}({', '.join(a.name for a in scalars)})"
    # compute types: float for float32 and the half types, double otherwise
    compute = {d: ("float" if d in ("float32", "float16", "bfloat16") else "double") for d in op.kernel_dtypes}
    return {
        "generate_body": body, "generate_line": g.body.line, "generate_random": g.random,
        "generate_attrs": [{"name": a.name, "cpp_type": ATTR_TYPES[a.type][0]} for a in scalars],
        "generate_attr_names": [a.name for a in scalars],
        "generate_shape_expr": shape_expr, "generate_shape_fn": g.shape_fn,
        "generate_shape_fn_params": ", ".join(f"{ATTR_TYPES[a.type][0]} {a.name}" for a in scalars),
        "generate_dtype": g.dtype_arg, "generate_device": g.device_arg,
        "generate_dtypes": [{"enum": CPP_DTYPE[d][0], "cpp": CPP_DTYPE[d][1], "compute": compute[d]}
                            for d in op.kernel_dtypes],
        "generate_cuda_dtypes": [{"enum": CPP_DTYPE[d][0], "cpp": CPP_DTYPE[d][1], "compute": compute[d]}
                                 for d in op.cuda_kernel_dtypes],
        "generate_cases": repr(op.tests.attrs["cases"]),
        "generate_moments": repr(op.tests.attrs["moments"]),
        "generate_range": repr(op.tests.attrs["range"]),
        "generate_ref_py": repr(op.tests.ref.text) if op.tests.ref is not None else "None",
        "generate_kernel_dtypes_py": repr(op.kernel_dtypes),
        "generate_arg_names": repr([a.name for a in op.args]),
        "generate_defaults": repr({a.name: a.default for a in op.args if a.has_default}),
    }


def _update_view(op: OpDef) -> dict:
    """The statements of kernel.update as C++ (in a functor taking the
    updated arrays' elements by reference) and as text for the NumPy
    evaluation in the tests."""
    u = op.update
    tensors = [t.name for t in op.tensor_args]
    attrs = {a.name for a in op.attrs}
    bool_attrs = {a.name for a in op.attrs if a.type == "bool"}
    lines, defined, declared = [], set(tensors), set()
    for name, e in u.statements:
        code = to_cpp_scalar(e, defined, attrs, bool_attrs=bool_attrs)
        if name in u.temporaries and name not in declared:
            lines.append(f"T {name} = {code};")
            declared.add(name)
        else:
            lines.append(f"{name} = {code};")
        defined.add(name)
    params = [f"T& {t}" if t in op.mutates else f"T {t}" for t in tensors]
    return {
        "update_lines": lines, "update_params": ", ".join(params),
        "update_line": u.statements[0][1].line,
        "mutates": op.mutates,
        "mutated_positions": ", ".join(str(tensors.index(m)) for m in op.mutates),
        "statements_py": repr([(n, e.text) for n, e in u.statements]),
        "mutates_py": repr(op.mutates),
    }


def _impl_view(op: OpDef) -> dict:
    """How the generated dispatch calls the hand-written kernels."""
    from generator.model import REQUIREMENTS
    tensors = op.tensor_args
    arrays = [f"const std::vector<NDArray>& {op.tensor_list.name}"] if op.tensor_list else \
        [f"const NDArray& {t.name}" for t in tensors]
    outs = [f"NDArray& {o.name}" for o in op.outputs] if op.multi_output else ["NDArray& out"]
    kernel_params = outs + arrays + [f"{ATTR_TYPES[a.type][0]} {a.name}" for a in op.attrs]
    shape_params = arrays + [f"{ATTR_TYPES[a.type][0]} {a.name}" for a in op.attrs]

    def guard(backend):
        macros = [REQUIREMENTS[backend][r][0] for r in op.impl.requires[backend]]
        return " && ".join(macros) if macros else "1", ", ".join(
            REQUIREMENTS[backend][r][1] for r in op.impl.requires[backend])

    cpu_guard, cpu_missing = guard("cpu")
    cuda_guard, cuda_missing = guard("cuda")
    return {
        "impl_cpu": op.impl.cpu, "impl_cuda": op.impl.cuda,
        "shape_type": "std::vector<Shape>" if op.multi_output else "Shape",
        "shape_fn": op.shape_args[0] if op.shape_rule == "fn" else None,
        # the call giving the result's shape: the op's own function, or a named rule
        "shape_call": (f"kernels::{op.shape_args[0]}(" + ", ".join(
            (["call.inputs"] if op.tensor_list else [t.name if t.name in op.mutates else f"{t.name}_c"
                                                     for t in tensors]) + [a.name for a in op.attrs]) + ")"
            if op.shape_rule == "fn" else
            f"::loom::matmul_shape(kOp, {op.shape_args[0]}_c, {op.shape_args[1]}_c)"),
        "kernel_params": ", ".join(kernel_params), "shape_params": ", ".join(shape_params),
        "cpu_guard": cpu_guard, "cpu_missing": cpu_missing,
        "cuda_guard": cuda_guard, "cuda_missing": cuda_missing,
        "converted_args": ", ".join((["call.inputs"] if op.tensor_list else
                                     [t.name if t.name in op.mutates else f"{t.name}_c" for t in tensors])
                                    + [a.name for a in op.attrs]),
        # the arrays prepare_impl converted (call.inputs, in order)
        "tensor_names": [t.name for t in tensors if t.name not in op.mutates],
    }


def _cuda_view(op: OpDef, view: dict) -> dict:
    """The view the CUDA kernel templates see: dtype lists cut to dtypes_cuda."""
    if op.dtypes_cuda is None:
        return view
    keep = {CPP_DTYPE[d][0] for d in op.cuda_kernel_dtypes}
    listing = ", ".join(op.cuda_kernel_dtypes) + " on a GPU"
    v = dict(view, kernel_dtypes=[d for d in view["kernel_dtypes"] if d["enum"] in keep],
             kernel_dtype_list=listing,
             grad_dtypes=[d for d in view["grad_dtypes"] if d["enum"] in keep], grad_dtype_list=listing)
    if "reduce_types" in view:
        v["reduce_types"] = [t for t in view["reduce_types"] if t["enum"] in keep]
    return v


_MULTI_TEMPLATES = {"impl_op_dispatch.cc.j2": "impl_multi_op_dispatch.cc.j2", "test_impl.py.j2": "test_multi.py.j2"}
# A Tensor[] output (split): a view op returning one view per output.
_LIST_OUTPUT_TEMPLATES = {"view_op_dispatch.cc.j2": "view_list_op_dispatch.cc.j2",
                          "view_kernel_header.h.j2": "view_list_kernel_header.h.j2",
                          "test_impl.py.j2": "test_list_output.py.j2"}


def render_op(op: OpDef) -> dict[str, str]:
    """Output path (relative to generated/) -> content, for one operator."""
    env, view = _env(), op_view(op)
    test_view = dict(view, attrs=repr(view["attrs_py"]), kernel_dtypes=repr(op.full_precision_dtypes),
                     half_dtypes=repr(op.half_dtypes),
                     inplace_py=repr(op.inplace),
                     int_promote=repr(op.int_promote),
                     has_identity=repr(op.reduce.has_identity if op.reduce else True))
    out = {}
    cuda_view = _cuda_view(op, view)
    for template, path in op_outputs(op.name, op.kind).items():
        v = test_view if template.startswith("test_") else cuda_view if "_cuda." in template else view
        if op.multi_output:  # same files, written by the templates for several outputs
            template = _MULTI_TEMPLATES.get(template, template)
        elif op.list_output is not None:
            template = _LIST_OUTPUT_TEMPLATES.get(template, template)
        out[path] = env.get_template(template).render(v)
    return out


def manifest(ops: list[OpDef]) -> dict:
    return {"version": 1, "ops": [{
        "name": op.name, "source": f"{op.file}:{op.line}", "python_name": op.python_name,
        "args": [{"name": a.name, "type": a.type, **({"default": a.default} if a.has_default else {})}
                 for a in op.args],
        "outputs": [o.name for o in op.outputs],
        **({"output_count": op.list_output.count} if op.list_output is not None else {}),
        "hidden_outputs": [o.name for o in op.outputs if o.hidden],
        "dtypes": op.dtypes, "kernel_dtypes": op.kernel_dtypes,
        **({"dtypes_cuda": op.dtypes_cuda} if op.dtypes_cuda is not None else {}),
        "kernel": ({"pointwise": op.pointwise.text} if op.pointwise else
                   {"impl": {"cpu": op.impl.cpu, "cuda": op.impl.cuda, "requires": op.impl.requires}} if op.impl else
                   {"composite": op.composite.text} if op.composite is not None else
                   {"view": op.view} if op.view is not None else
                   {"update": [[n, e.text] for n, e in op.update.statements], "mutates": op.mutates}
                   if op.update is not None else
                   {"generate": op.generate.body.text, "random": op.generate.random}
                   if op.generate is not None else
                   {"reduce": {"init": op.reduce.init, "combine": op.reduce.combine.text,
                               "project": op.reduce.project.text if op.reduce.project else None,
                               "map": op.reduce.map.text if op.reduce.map else None,
                               "acc": op.reduce.acc}}),
        "grad": {k: v.text for k, v in op.grads.items()},
        "variants": op.variants, "tags": op.tags, "shape": op.shape_rule, "inplace": op.inplace,
        "python_operators": op.python_operators,
    } for op in ops]}


def render_index(names: list[str], ops: list[OpDef] | None) -> dict[str, str]:
    """The few files that list every operator. They depend only on the op names
    (and the manifest on the full specs), so editing one op's body leaves the
    C++ index files untouched."""
    env = _env()
    out = {}
    for template, path in INDEX_OUTPUTS.items():
        if template is None:
            if ops is not None:
                out[path] = json.dumps(manifest(ops), indent=1, default=str) + "\n"
        else:
            out[path] = env.get_template(template).render(names=names)
    return out
