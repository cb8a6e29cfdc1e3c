"""Malformed specs stop the generator with `file:line: field: message`."""
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from generator import loader
from generator.errors import SpecError

ROOT = Path(__file__).resolve().parents[2]

GOOD = """\
op: scale_add
doc: x * 2 + y.
args:
  x: Tensor
  y: Tensor
  alpha: {type: float, default: 2.0}
outputs:
  out: Tensor
dtypes: floating
shape: {broadcast: [x, y]}
kernel:
  pointwise: x * alpha + y
grad:
  x: grad * alpha
  y: grad
tests:
  ref: x * alpha + y
"""


def load(tmp_path: Path, text: str):
    spec = tmp_path / "opdefs" / "test" / "op.yaml"
    spec.parent.mkdir(parents=True, exist_ok=True)
    spec.write_text(textwrap.dedent(text))
    return loader.load_file(tmp_path, spec)


def error(tmp_path, text) -> str:
    with pytest.raises(SpecError) as e:
        load(tmp_path, text)
    return str(e.value)


def test_good_spec_loads(tmp_path):
    (op,) = load(tmp_path, GOOD)
    assert op.name == "scale_add" and [a.name for a in op.attrs] == ["alpha"]
    # a pointwise op builds float16/bfloat16 kernels too (computed in float32)
    assert op.kernel_dtypes == ["float32", "float64", "float16", "bfloat16"] and op.pending_dtypes == []
    assert op.full_precision_dtypes == ["float32", "float64"] and op.half_dtypes == ["float16", "bfloat16"]


def test_every_kind_builds_half_dtypes():
    root = Path(__file__).resolve().parents[2]
    ops = {op.name: op for op in loader.load_all(root)}
    for name in ("matmul", "softmax", "linear", "transpose"):  # impl, composite, view: computed in float32
        assert ops[name].half_dtypes == ["float16", "bfloat16"] and ops[name].pending_dtypes == [], name
    # an update functor's statements run in float on half elements, each array stored back rounded once
    assert ops["sgd_update"].half_dtypes == ["float16", "bfloat16"] and ops["sgd_update"].pending_dtypes == []
    for name in ("relu", "sum"):
        assert ops[name].half_dtypes == ["float16", "bfloat16"], name


def test_unknown_top_level_key(tmp_path):
    assert error(tmp_path, GOOD + "colour: blue\n") == \
        "opdefs/test/op.yaml:18: colour: unknown key (expected one of: absorbs, args, checks, doc, dtype_rule, " \
        "dtypes, dtypes_cuda, grad, inplace, kernel, mutates, nondiff, op, outputs, python, shape, tags, tests, " \
        "variants)"


def test_unknown_nested_key(tmp_path):
    msg = error(tmp_path, GOOD.replace("  pointwise: x * alpha + y", "  pointwise: x * alpha + y\n  fast: true"))
    assert msg.startswith("opdefs/test/op.yaml:13: kernel.fast: unknown key")


def test_missing_gradient(tmp_path):
    msg = error(tmp_path, GOOD.replace("  y: grad\n", ""))
    assert msg.startswith("opdefs/test/op.yaml:13: grad.y: missing gradient")


def test_undefined_name_in_kernel_body(tmp_path):
    msg = error(tmp_path, GOOD.replace("pointwise: x * alpha + y", "pointwise: x * beta + y"))
    assert msg.startswith("opdefs/test/op.yaml:12: kernel.pointwise: undefined name 'beta'")


def test_undefined_name_in_grad_formula(tmp_path):
    msg = error(tmp_path, GOOD.replace("x: grad * alpha", "x: grad * gamma"))
    assert msg.startswith("opdefs/test/op.yaml:14: grad.x: undefined name 'gamma'")


def test_unknown_function(tmp_path):
    msg = error(tmp_path, GOOD.replace("pointwise: x * alpha + y", "pointwise: lgamma(x) + y"))
    assert "opdefs/test/op.yaml:12: kernel.pointwise: unknown function 'lgamma'" in msg


def test_syntax_error_in_expression(tmp_path):
    assert "kernel.pointwise: invalid expression" in error(tmp_path, GOOD.replace("x * alpha + y\ngrad", "x * + \ngrad"))


def test_bad_default_type(tmp_path):
    msg = error(tmp_path, GOOD.replace("default: 2.0", "default: two"))
    assert msg == "opdefs/test/op.yaml:6: args.alpha.default: 'two' is not a float"


def test_unknown_dtype(tmp_path):
    msg = error(tmp_path, GOOD.replace("dtypes: floating", "dtypes: [float32, float8]"))
    assert msg.startswith("opdefs/test/op.yaml:9: dtypes: unknown dtype 'float8'")


def test_missing_reference(tmp_path):
    msg = error(tmp_path, GOOD.replace("tests:\n  ref: x * alpha + y\n", ""))
    assert "tests.ref: missing" in msg


def test_not_yet_supported_field_says_so(tmp_path):
    msg = error(tmp_path, GOOD + "forward_grad: auto_elementwise\n")
    assert "forward_grad: is part of the op DSL but not supported by the generator yet" in msg


def test_mutates_belongs_to_update_and_impl_ops(tmp_path):
    assert "mutates: only kernel.update and kernel.impl ops mutate their arguments" in error(
        tmp_path, GOOD + "mutates: [x]\n")


IMPL = GOOD.replace("kernel:\n  pointwise: x * alpha + y", "kernel:\n  impl: {cpu: f_cpu}").replace(
    "shape: {broadcast: [x, y]}", "shape: {fn: infer_f}").replace("  ref: x * alpha + y",
                                                                   "  shapes: [[[3], [3]]]\n  ref: x * alpha + y")


def test_an_impl_op_mutates_later_arrays_only_and_they_take_no_gradient(tmp_path):
    (op,) = load(tmp_path, IMPL.replace("  y: grad\n", "") + "mutates: [y]\n")
    assert op.mutates == ["y"] and "y" not in op.grads
    assert "mutates: the first array ('x') decides dtype and device" in error(tmp_path, IMPL + "mutates: [x]\n")
    assert "grad.y: 'y' is listed in nondiff (or mutates)" in error(tmp_path, IMPL + "mutates: [y]\n")


def test_a_joint_gradient_is_one_call_of_a_joint_function(tmp_path):
    text = IMPL.replace("  x: grad * alpha\n  y: grad\n", '  "x, y": grad * alpha\n')
    assert "the gradient of several inputs is one call of a joint gradient function" in error(tmp_path, text)
    text = IMPL.replace("  y: grad\n", '  "x, y": grad * alpha\n')
    assert "'x' has a gradient formula already" in error(tmp_path, text)


def test_invalid_yaml_reports_line(tmp_path):
    msg = error(tmp_path, "op: x\nargs: [unclosed\n")
    assert msg.startswith("opdefs/test/op.yaml:") and ": yaml: " in msg


def test_duplicate_op_names_across_files(tmp_path):
    load(tmp_path, GOOD)
    (tmp_path / "opdefs" / "test" / "again.yaml").write_text(GOOD)
    with pytest.raises(SpecError, match="'scale_add' is already defined at opdefs/test/"):
        loader.load_all(tmp_path)


UNARY = """\
op: twice
doc: 2 x.
args:
  x: Tensor
outputs:
  out: Tensor
dtypes: floating
shape: {same_as: x}
kernel:
  pointwise: x * 2
grad:
  x: grad * 2
tests:
  ref: x * 2
"""


@pytest.mark.parametrize("absorbs, message", [
    ("absorbs: {twice: {alpha: 4.0}}\n", None),
    ("absorbs: {twice: {beta: 1.0}}\n", "absorbs.twice.beta: not an attribute of this op (attributes: alpha)"),
    ("absorbs: {twice: {alpha: yes}}\n", "absorbs.twice.alpha: expected a float value for a float attribute"),
    ("absorbs: {twice: {}}\n", "absorbs.twice: name the attributes the fold sets"),
    ("absorbs: {thrice: {alpha: 4.0}}\n", "absorbs.thrice: no operator named 'thrice'"),
    ("absorbs: {scale_add: {alpha: 4.0}}\n", "absorbs.scale_add: 'scale_add' must take exactly one array"),
])
def test_absorbs_names_a_one_array_op_and_this_ops_attributes(tmp_path, absorbs, message):
    load(tmp_path, GOOD)
    (tmp_path / "opdefs" / "test" / "twice.yaml").write_text(UNARY)
    (tmp_path / "opdefs" / "test" / "op.yaml").write_text(GOOD + absorbs)
    if message is None:
        ops = {op.name: op for op in loader.load_all(tmp_path)}
        assert [(c, v) for c, v, _ in ops["scale_add"].absorbs] == [("twice", {"alpha": 4.0})]
        return
    with pytest.raises(SpecError) as e:
        loader.load_all(tmp_path)
    assert message in str(e.value) and str(e.value).startswith("opdefs/test/op.yaml:18: ")


def test_cli_exits_2_with_located_message(tmp_path):
    spec = tmp_path / "opdefs" / "op.yaml"
    spec.parent.mkdir()
    spec.write_text(GOOD.replace("  y: grad\n", ""))
    proc = subprocess.run([sys.executable, "-m", "generator", "--root", str(tmp_path), "--all"],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2
    assert "opdefs/op.yaml:13: grad.y: missing gradient" in proc.stderr


INT_OP = GOOD.replace("dtypes: floating", "dtypes: [float32, int32]")


@pytest.mark.parametrize("body, complaint", [
    ("x / y", "'/' is not allowed: the op declares integer dtypes (int32)"),
    ("x * 0.5 + y", "fractional literal 0.5 is not allowed"),
    ("x * alpha + y", "float attribute 'alpha' is not allowed"),
    ("exp(x) + y", "'exp' is not allowed"),
])
def test_bodies_that_change_meaning_on_integers_are_rejected(tmp_path, body, complaint):
    msg = error(tmp_path, INT_OP.replace("pointwise: x * alpha + y", f"pointwise: {body}"))
    assert "kernel.pointwise: " + complaint in msg


def test_unknown_variants_are_rejected(tmp_path):
    msg = error(tmp_path, GOOD + "variants: [function, functional]\n")
    assert "variants: expected a list from ['function', 'inplace', 'method', 'out']" in msg


@pytest.mark.parametrize("name", ["dtype", "f", "np", "int", "class"])
def test_reserved_argument_names_are_rejected(tmp_path, name):
    msg = error(tmp_path, GOOD.replace("  y: Tensor\n", f"  y: Tensor\n  {name}: int\n"))
    assert f"args.{name}: '{name}' is reserved" in msg


def test_tolerance_for_an_undeclared_dtype_is_rejected(tmp_path):
    msg = error(tmp_path, GOOD + "  tol: {flaot32: {atol: 1e-3}}\n")
    assert "tests.tol.flaot32: is not one of the op's dtypes" in msg


def test_python_name_must_be_an_identifier(tmp_path):
    msg = error(tmp_path, GOOD + 'python: {name: "bad\\"name"}\n')
    assert "python.name: " in msg and "is not a snake_case name" in msg


def test_membership_comparison_is_a_spec_error(tmp_path):
    msg = error(tmp_path, GOOD.replace("pointwise: x * alpha + y", "pointwise: where(x in y, x, y)"))
    assert "kernel.pointwise: comparison In is not supported" in msg


def test_reference_may_only_call_numpy(tmp_path):
    msg = error(tmp_path, GOOD.replace("  ref: x * alpha + y", "  ref: foo(x) + y"))
    assert "tests.ref: a reference may call only NumPy functions" in msg


def test_index_removes_files_of_ops_that_no_longer_exist(tmp_path):
    stale = tmp_path / "generated" / "tests" / "test_gone.py"
    kept = tmp_path / "generated" / "tests" / "test_relu.py"
    for p in (stale, kept):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("")
    (tmp_path / "opdefs").mkdir()
    proc = subprocess.run([sys.executable, "-m", "generator", "--root", str(tmp_path), "--index", "relu"],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert kept.exists() and not stale.exists()
    assert (tmp_path / "generated" / "python" / "bind_all.cc").exists()


def test_attribute_without_default_needs_a_test_value(tmp_path):
    msg = error(tmp_path, GOOD.replace("alpha: {type: float, default: 2.0}", "alpha: {type: float}"))
    assert "opdefs/test/op.yaml:17: tests.attrs.alpha: the attribute has no default" in msg


def test_test_attrs_must_name_attributes_with_fitting_values(tmp_path):
    msg = error(tmp_path, GOOD.replace("  ref: x * alpha + y", "  attrs: {beta: 1.0}\n  ref: x * alpha + y"))
    assert "opdefs/test/op.yaml:17: tests.attrs.beta: is not an attribute of the op (attributes: alpha)" in msg
    msg = error(tmp_path, GOOD.replace("  ref: x * alpha + y", "  attrs: {alpha: yes}\n  ref: x * alpha + y"))
    assert "tests.attrs.alpha: True is not a float" in msg


def test_attribute_test_values_reach_the_generated_test(tmp_path):
    (op,) = load(tmp_path, GOOD.replace("  ref: x * alpha + y", "  attrs: {alpha: 0.5}\n  ref: x * alpha + y"))
    assert op.tests.attrs == {"alpha": 0.5}


REDUCE = """\
op: total
doc: Sum.
args:
  x: Tensor
  dims: {type: "int[]", default: null}
  keepdim: {type: bool, default: false}
outputs:
  out: Tensor
dtypes: floating
shape: {reduce: {in: x, dims: dims, keepdim: keepdim}}
kernel:
  reduce: {init: 0, combine: a + b}
grad:
  x: grad
tests:
  ref: np.sum(x, axis=refs.axis(dims), keepdims=keepdim)
"""


def test_a_well_formed_reduction_loads(tmp_path):
    (op,) = load(tmp_path, REDUCE)
    assert op.kind == "reduce" and op.reduce.has_identity and op.shape_args == ["x", "dims", "keepdim"]


def test_reduce_shape_names_attributes_of_the_right_type(tmp_path):
    msg = error(tmp_path, REDUCE.replace("dims: dims, keepdim", "dims: keepdim, keepdim"))
    assert "opdefs/test/op.yaml:10: shape.reduce.dims: 'keepdim' is not a int[] argument" in msg


def test_reduce_kernel_needs_reduce_shape_and_known_names(tmp_path):
    msg = error(tmp_path, REDUCE.replace("shape: {reduce: {in: x, dims: dims, keepdim: keepdim}}",
                                         "shape: {same_as: x}"))
    assert "kernel: a reduce kernel goes with shape: {reduce: ...}" in msg
    msg = error(tmp_path, REDUCE.replace("combine: a + b", "combine: a + c"))
    assert "opdefs/test/op.yaml:12: kernel.reduce.combine: undefined name 'c'" in msg
    msg = error(tmp_path, REDUCE.replace("combine: a + b", "combine: a + b, empty: never"))
    assert "kernel.reduce.empty: expected 'init' or 'error'" in msg
    msg = error(tmp_path, REDUCE.replace("init: 0", "init: zero"))
    assert "kernel.reduce.init: expected a number, inf or -inf, got 'zero'" in msg


def test_python_operators_fit_the_number_of_tensor_inputs(tmp_path):
    (op,) = load(tmp_path, GOOD.replace("tests:", "python: {operators: [__add__, __radd__]}\ntests:"))
    assert op.python_operators == ["__add__", "__radd__"]
    msg = error(tmp_path, GOOD.replace("tests:", "python: {operators: [__neg__]}\ntests:"))
    assert "python.operators: expected a list from" in msg and "2 Tensor input(s)" in msg


def test_an_operator_belongs_to_one_op(tmp_path):
    spec = tmp_path / "opdefs" / "test" / "op.yaml"
    spec.parent.mkdir(parents=True, exist_ok=True)
    first = GOOD.replace("tests:", "python: {operators: [__add__]}\ntests:")
    spec.write_text(first + "---\n" + first.replace("op: scale_add", "op: other_add"))
    with pytest.raises(SpecError) as e:
        loader.load_all(tmp_path)
    assert "python.operators: '__add__' is already implemented by 'scale_add'" in str(e.value)


def test_reduce_map_names_only_the_element(tmp_path):
    (op,) = load(tmp_path, REDUCE.replace("combine: a + b", "map: x * x, combine: a + b"))
    assert op.reduce.map.text == "x * x"
    msg = error(tmp_path, REDUCE.replace("combine: a + b", "map: y * y, combine: a + b"))
    assert "kernel.reduce.map: undefined name 'y'" in msg


def test_grad_formula_with_unknown_function(tmp_path):
    text = GOOD.replace("x: grad * alpha", "x: grad * cosh(x)")
    assert error(tmp_path, text).startswith("opdefs/test/op.yaml:14: grad.x: unknown function 'cosh'")


def test_reduction_helpers_only_in_reductions(tmp_path):
    text = GOOD.replace("x: grad * alpha", "x: unreduce(grad)")
    assert "grad.x: 'unreduce' exists only in the gradient formulas of reductions" in error(tmp_path, text)


def test_grad_formula_must_give_an_array(tmp_path):
    text = GOOD.replace("x: grad * alpha", "x: alpha * 2")
    assert "grad.x: a gradient formula must give an array" in error(tmp_path, text)


def test_grad_shape_helpers_take_shapes(tmp_path):
    text = GOOD.replace("x: grad * alpha", "x: expand(grad, y)")
    assert "grad.x: argument 2 of 'expand' is a shape, e.g. x.shape" in error(tmp_path, text)


def test_grad_calls_of_missing_operators_are_reported(tmp_path):
    # Every function a formula may call must exist as an operator of the library.
    ops = loader.load_all(ROOT)
    names = {op.name for op in ops}
    from generator import grad_codegen as gc
    called = {callee for callee, _, kind in gc.GRAD_CALLS.values() if kind == "op"}
    called |= {name for name, _ in [*gc._BINARY_OPS.values(), *gc._COMPARE_OPS.values()]}
    called |= {"neg", "logical_not", "logical_and", "logical_or"}
    assert called - names == set()


COMPOSITE = """\
op: double_exp
doc: 2 exp(x).
args:
  x: Tensor
outputs:
  out: Tensor
dtypes: floating
kernel:
  composite: 2 * exp(x)
tests:
  shapes: [[[3]]]
  ref: 2 * np.exp(x)
"""


def test_composite_spec_loads(tmp_path):
    (op,) = load(tmp_path, COMPOSITE)
    assert op.kind == "composite" and op.grads == {}


def test_composite_takes_no_gradient(tmp_path):
    text = COMPOSITE + "grad:\n  x: grad\n"
    assert "grad: a composite op takes its shape, dtype and gradient from the operators" in error(tmp_path, text)


def test_composite_needs_test_shapes(tmp_path):
    text = COMPOSITE.replace("  shapes: [[[3]]]\n", "")
    assert "tests.shapes: missing: a composite op needs explicit test shapes" in error(tmp_path, text)


def test_reduction_keywords_are_checked(tmp_path):
    text = COMPOSITE.replace("2 * exp(x)", "sum(x, axis=0)")
    assert "kernel.composite: 'sum' takes the keywords dims= and keepdim= only" in error(tmp_path, text)


def test_impl_requirements_are_checked(tmp_path):
    text = GOOD.replace("kernel:\n  pointwise: x * alpha + y",
                        "kernel:\n  impl: {cpu: f_cpu}\n  requires: {cpu: [mkl]}").replace(
        "shape: {broadcast: [x, y]}", "shape: {fn: infer_f}")
    assert "kernel.requires.cpu: expected a list from ['blas']" in error(tmp_path, text)


def test_inplace_variant_and_field_go_together(tmp_path):
    text = GOOD.replace("tests:", "variants: [function, out, inplace]\ntests:")
    assert "inplace: the inplace variant and the inplace: {<input>: <output>} field go together" in error(tmp_path, text)


def test_inplace_target_must_be_an_input(tmp_path):
    text = GOOD.replace("tests:", "variants: [function, out, inplace]\ninplace: {z: out}\ntests:")
    assert "inplace.z: is not a Tensor argument" in error(tmp_path, text)


def test_an_impl_kernel_may_declare_an_input_it_writes_over(tmp_path):
    (op,) = load(tmp_path, IMPL.replace("tests:", "variants: [function, out, inplace]\ninplace: {x: out}\ntests:"))
    assert op.inplace == "x" and "inplace" in op.variants


def test_inplace_is_refused_where_out_does_not_match_an_input_element_for_element(tmp_path):
    text = REDUCE.replace("tests:", "variants: [function, out, inplace]\ninplace: {x: out}\ntests:")
    assert "inplace: in-place variants exist for pointwise ops and impl kernels" in error(tmp_path, text)


def test_inplace_dunders_need_the_variant(tmp_path):
    text = GOOD.replace("tests:", "python: {operators: [__iadd__]}\ntests:")
    assert "python.operators: __iadd__ need the inplace variant" in error(tmp_path, text)


def test_checks_compile_and_report(tmp_path):
    text = GOOD.replace("tests:", 'checks:\n  - {expr: "alpha >= 0 and x.ndim == y.ndim", msg: "bad"}\ntests:')
    (op,) = load(tmp_path, text)
    assert op.checks[0].cpp == "((alpha >= 0) && (static_cast<std::int64_t>(x.ndim()) == static_cast<std::int64_t>(y.ndim())))"
    bad = GOOD.replace("tests:", 'checks:\n  - {expr: "x.shape == 2", msg: "bad"}\ntests:')
    assert "checks[0].expr: unknown attribute '.shape'" in error(tmp_path, bad)
    missing = GOOD.replace("tests:", 'checks:\n  - {expr: "alpha > 0"}\ntests:')
    assert "checks[0].msg: missing (a string)" in error(tmp_path, missing)


VIEW = """\
op: flip2
doc: A view.
args:
  x: Tensor
  dims: {type: "int[]", default: null}
outputs:
  out: Tensor
dtypes: floating
kernel:
  view: flip_view
grad:
  x: flip(grad, dims)
tests:
  shapes: [[[2, 3]]]
  ref: np.flip(x, dims)
"""


def test_view_spec_loads(tmp_path):
    (op,) = load(tmp_path, VIEW)
    assert op.kind == "view" and op.view == "flip_view" and op.dtype_rule == "same_as:x"


def test_view_takes_no_shape_or_dtype_rule(tmp_path):
    text = VIEW.replace("kernel:\n", "shape: {same_as: x}\nkernel:\n")
    assert "shape: a view op's function gives the view's shape" in error(tmp_path, text)


def test_view_takes_one_tensor(tmp_path):
    text = VIEW.replace("  x: Tensor\n", "  x: Tensor\n  y: Tensor\n")
    assert "args: a view op takes exactly one Tensor" in error(tmp_path, text)


def test_view_names_a_cpp_function(tmp_path):
    assert "kernel.view: expected the name of a C++ function" in error(tmp_path, VIEW.replace(
        "view: flip_view", "view: 'flip view'"))


def test_grad_helper_argument_kinds_are_checked(tmp_path):
    assert "grad.x: argument 2 of 'flip' is dims" in error(tmp_path, VIEW.replace(
        "x: flip(grad, dims)", "x: flip(grad, grad)"))
    assert "argument 2 of 'swapaxes' is an int" in error(tmp_path, VIEW.replace(
        "x: flip(grad, dims)", "x: swapaxes(grad, dims, 0)"))


UPDATE = """\
op: step
doc: An update.
args:
  weight: Tensor
  gradient: Tensor
  lr: float
outputs:
  out: Tensor
dtypes: [float32, float64]
mutates: [weight]
kernel:
  update:
    - g: gradient * 2
    - weight: weight - lr * g
tests:
  shapes: [[3]]
  attrs: {lr: 0.1}
"""


def test_update_spec_loads(tmp_path):
    (op,) = load(tmp_path, UPDATE)
    assert op.kind == "update" and op.mutates == ["weight"] and op.update.temporaries == ["g"]
    assert op.variants == ["function"] and op.grads == {}


def test_update_errors(tmp_path):
    assert "kernel.update.gradient: assigns the argument 'gradient', which 'mutates' does not list" in error(
        tmp_path, UPDATE.replace("    - g: gradient * 2", "    - gradient: gradient * 2"))
    assert "kernel.update.lr: is an attribute" in error(tmp_path, UPDATE.replace("    - g: gradient * 2", "    - lr: 2"))
    assert "'weight' is listed in mutates but never assigned" in error(
        tmp_path, UPDATE.replace("    - weight: weight - lr * g\n", ""))
    assert "undefined name 'h'" in error(tmp_path, UPDATE.replace("weight - lr * g", "weight - lr * h"))
    assert "mutates: expected a list of Tensor arguments" in error(tmp_path, UPDATE.replace(
        "mutates: [weight]", "mutates: [lr]"))
    assert "missing: an update op lists the arrays it changes" in error(tmp_path, UPDATE.replace(
        "mutates: [weight]\n", ""))
    assert "grad: an update op changes its 'mutates' arrays in place" in error(tmp_path, UPDATE + "grad:\n  weight: grad\n")
    assert "tests.ref: an update op's reference is its own statements" in error(
        tmp_path, UPDATE.replace("  attrs: {lr: 0.1}", "  attrs: {lr: 0.1}\n  ref: weight"))


OPTIONAL = """\
op: shift_exp
doc: exp(x) + b, or exp(x) without b.
args:
  x: Tensor
  b: Tensor?
  scale: {type: float, default: 1.0}
outputs:
  out: Tensor
dtypes: floating
checks:
  - {expr: "b.ndim <= x.ndim", msg: "b must not have more dims than x"}
kernel:
  composite: exp(x) * scale if b is None else exp(x) * scale + b
tests:
  shapes: [[[3], [3]], [[3], null]]
  ref: np.exp(x) * scale + (0 if b is None else b)
"""


def test_optional_tensor_spec_loads_and_guards_its_checks(tmp_path):
    (op,) = load(tmp_path, OPTIONAL)
    b = op.args[1]
    assert b.optional and b.is_tensor and op.optional_names == {"b"}
    # a check reading b applies only when b is given
    assert op.checks[0].cpp.startswith("(!b.defined() || ")
    assert op.tests.shapes == [[[3], [3]], [[3], None]]


def test_optional_tensor_cannot_come_first(tmp_path):
    text = OPTIONAL.replace("  x: Tensor\n  b: Tensor?\n", "  b: Tensor?\n  x: Tensor\n")
    assert "args.b.type: the first array argument cannot be optional" in error(tmp_path, text)


def test_arguments_after_an_optional_tensor_need_defaults(tmp_path):
    text = OPTIONAL.replace("scale: {type: float, default: 1.0}", "scale: float")
    assert "args.scale: follows the optional 'b' (None by default), so it needs a default too" in error(tmp_path, text)


def test_optional_tensors_need_an_impl_or_composite_kernel(tmp_path):
    text = GOOD.replace("  y: Tensor\n", "  y: Tensor?\n")
    assert "args.y.type: optional arrays (Tensor?) are supported by impl and composite ops" in error(tmp_path, text)


def test_optional_tensor_takes_no_default(tmp_path):
    text = OPTIONAL.replace("  b: Tensor?\n", "  b: {type: \"Tensor?\", default: 0}\n")
    assert "args.b.default: Tensor arguments take no default (a Tensor? defaults to None)" in error(tmp_path, text)


def test_is_none_tests_only_optional_tensors(tmp_path):
    text = OPTIONAL.replace("if b is None", "if x is None")
    assert "kernel.composite: 'is None' / 'is not None' test an optional array" in error(tmp_path, text)


def test_conditional_needs_a_bool_condition(tmp_path):
    text = OPTIONAL.replace("if b is None", "if x")
    assert "kernel.composite: the condition of 'a if cond else b' is a bool" in error(tmp_path, text)


def test_null_test_shape_only_for_optional_tensors(tmp_path):
    text = OPTIONAL.replace("[[3], null]]", "[null, [3]]]")
    assert "tests.shapes: expected a list of cases" in error(tmp_path, text)


def test_pointwise_body_refuses_a_conditional(tmp_path):
    text = GOOD.replace("pointwise: x * alpha + y", "pointwise: x if alpha > 0 else y")
    assert "kernel.pointwise: IfExp is not allowed in a pointwise body" in error(tmp_path, text)


def test_unquoted_optional_type_in_a_flow_mapping_gets_a_hint(tmp_path):
    text = OPTIONAL.replace("  b: Tensor?\n", "  b: {type: Tensor?}\n")
    assert 'yaml: expected \',\' or \'}\', but got \'?\' (inside {...} write "Tensor?" in quotes' in error(tmp_path, text)


MULTI = """\
op: minmax
doc: The min and max along a dim, and a hidden spread.
args:
  x: Tensor
  dim: {type: int, default: -1}
outputs:
  low: Tensor
  high: Tensor
  where_high: {type: Tensor, dtype: int64}
  spread: {type: Tensor, hidden: true}
dtypes: floating
shape: {fn: infer_minmax}
kernel:
  impl: {cpu: minmax_cpu}
grad:
  x: grad.low + grad.high + grad.spread
tests:
  shapes: [[[3, 4]]]
  ref: (np.min(x, axis=dim), np.max(x, axis=dim), np.argmax(x, axis=dim))
"""


def test_multi_output_spec_loads(tmp_path):
    (op,) = load(tmp_path, MULTI)
    assert [o.name for o in op.visible_outputs] == ["low", "high", "where_high"]
    assert [o.name for o in op.diff_outputs] == ["low", "high", "spread"]  # an int64 output has no gradient
    assert op.outputs[2].dtype == "int64" and op.outputs[3].hidden and op.variants == ["function", "method"]


MULTI_MISTAKES = [
    ("x: grad.low + grad.high + grad.spread", "x: grad",
     "grad.x: 'grad' is ambiguous for an op with several outputs: name one (grad.low, grad.high, grad.spread)"),
    ("x: grad.low + grad.high + grad.spread", "x: grad.where_high", "grad.x: unknown attribute '.where_high'"),
    ("{type: Tensor, dtype: int64}", "{type: Tensor, dtype: int64, differentiable: true}",
     "outputs.where_high.differentiable: a int64 output has no gradient"),
    ("dtype: int64", "dtype: int16", "outputs.where_high.dtype: expected int64, bool or float32"),
    ("np.argmax(x, axis=dim))\n", "np.argmax(x, axis=dim))\nvariants: [function, out]\n",
     "variants: an op with several outputs has the function and method variants only"),
]


@pytest.mark.parametrize("old, new, message", MULTI_MISTAKES, ids=range(len(MULTI_MISTAKES)))
def test_multi_output_mistakes(tmp_path, old, new, message):
    assert message in error(tmp_path, MULTI.replace(old, new, 1))


def test_several_outputs_need_an_impl_kernel(tmp_path):
    text = GOOD.replace("outputs:\n  out: Tensor\n", "outputs:\n  out: Tensor\n  other: Tensor\n")
    assert "outputs: only impl ops have several outputs" in error(tmp_path, text)
    text = GOOD.replace("outputs:\n  out: Tensor\n", "outputs:\n  out: {type: Tensor, hidden: true}\n")
    assert "outputs: every output is hidden" in error(tmp_path, text)


def test_method_variant_defaults_to_ops_on_x(tmp_path):
    (op,) = load(tmp_path, GOOD)  # scale_add(x, y): x.scale_add(y)
    assert op.variants == ["function", "out", "method"]
    (op,) = load(tmp_path, GOOD + "variants: [function, out]\n")  # listed: only those
    assert op.variants == ["function", "out"]
    renamed = GOOD.replace("  x: Tensor\n", "  a: Tensor\n").replace("x * alpha + y", "a * alpha + y").replace(
        "  x: grad * alpha", "  a: grad * alpha").replace("[x, y]", "[a, y]")
    (op,) = load(tmp_path, renamed)
    assert "method" not in op.variants


def test_method_variant_needs_an_array_first(tmp_path):
    text = OPTIONAL.replace("  x: Tensor\n  b: Tensor?\n", "  k: {type: int, default: 1}\n  x: Tensor\n  b: Tensor?\n")
    text += "variants: [function, method]\n"
    assert "variants: the method variant needs a Tensor first argument" in error(tmp_path, text)


MATMUL_LIKE = GOOD.replace("shape: {broadcast: [x, y]}", "shape: {matmul: [x, y]}").replace(
    "kernel:\n  pointwise: x * alpha + y", "kernel:\n  impl: {cpu: f_cpu}").replace("  ref: x * alpha + y", "  ref: x @ y\n  shapes: [[[2, 3], [3, 4]]]")


def test_matmul_shape_rule_goes_with_impl_kernels(tmp_path):
    (op,) = load(tmp_path, MATMUL_LIKE)
    assert op.shape_rule == "matmul" and op.shape_args == ["x", "y"]
    bad = MATMUL_LIKE.replace("{matmul: [x, y]}", "{matmul: [x]}")
    assert "shape.matmul: expected two Tensor arguments from ['x', 'y']" in error(tmp_path, bad)


def test_dtypes_cuda_cuts_the_cuda_kernels(tmp_path):
    from generator import emit
    (op,) = load(tmp_path, GOOD + "dtypes_cuda: [float32]\n")
    assert op.cuda_kernel_dtypes == ["float32"] and "float64" in op.kernel_dtypes
    files = emit.render_op(op)
    cuda, cpu = files["kernels/cuda/scale_add.cu"], files["kernels/cpu/scale_add.cc"]
    assert "kFloat32" in cuda and "kFloat64" not in cuda and '"float32 on a GPU"' in cuda
    assert "kFloat64" in cpu
    assert "dtypes_cuda: expected a non-empty list from the op's dtypes" in error(tmp_path, GOOD + "dtypes_cuda: [int8]\n")


SCALED = COMPOSITE.replace("  x: Tensor\n", "  x: Tensor\n  k: {type: float, default: 2.0}\n").replace(
    "2 * exp(x)", "k * exp(x)").replace("2 * np.exp(x)", "k * np.exp(x)")


def test_a_test_case_may_carry_its_own_attributes(tmp_path):
    text = SCALED.replace("  shapes: [[[3]]]", "  shapes: [[[3]], {shapes: [[2, 2]], attrs: {k: 0.5}}]")
    (op,) = load(tmp_path, text)
    assert op.tests.shapes == [[[3]], [[2, 2]]]
    assert op.tests.case_attrs == [{}, {"k": 0.5}]


def test_a_test_case_attribute_is_checked(tmp_path):
    text = SCALED.replace("  shapes: [[[3]]]", "  shapes: [{shapes: [[3]], attrs: {kk: 1.0}}]")
    assert "tests.shapes[].attrs.kk: is not an attribute of the op (attributes: k)" in error(tmp_path, text)
    text = SCALED.replace("  shapes: [[[3]]]", "  shapes: [{shapes: [[3]], attrs: {k: true}}]")
    assert "tests.shapes[].attrs.k: True is not a float" in error(tmp_path, text)
    text = SCALED.replace("  shapes: [[[3]]]", "  shapes: [{attrs: {k: 1.0}}]")
    assert "tests.shapes[].shapes: missing" in error(tmp_path, text)


CAST = """\
op: convert
doc: x in another dtype.
args:
  x: Tensor
  dtype: {type: dtype}
outputs:
  out: Tensor
dtypes: numeric
dtype_rule: {attr: dtype}
shape: {fn: infer_convert}
kernel:
  impl: {cpu: convert_into}
grad:
  x: astype(grad, x.dtype)
tests:
  shapes: [[[2, 3]]]
  attrs: {dtype: float64}
  ref: refs.cast(x, dtype)
"""


def test_a_dtype_attribute_can_name_an_impl_ops_result_dtype(tmp_path):
    (op,) = load(tmp_path, CAST)
    assert op.dtype_rule == "attr:dtype" and op.kind == "impl"


@pytest.mark.parametrize("edits, message", [
    # the rule must name a dtype-typed argument
    ([("  dtype: {type: dtype}\n", "  scale: {type: int, default: 1}\n"),
      ("dtype_rule: {attr: dtype}", "dtype_rule: {attr: scale}")],
     "op.yaml:9: dtype_rule.attr: 'scale' is not an argument of type dtype"),
    # a dtype attribute the rule does not name is a generate op's
    ([("dtype_rule: {attr: dtype}\n", "")],
     "op.yaml:5: args.dtype.type: 'dtype' attributes belong to kernel.generate ops"),
    # the rule needs an impl kernel
    ([("shape: {fn: infer_convert}\n", "shape: {same_as: x}\n"), ("  impl: {cpu: convert_into}", "  pointwise: x")],
     "dtype_rule: 'attr: dtype' results are supported for impl kernels only"),
    # a gradient formula reads an input's dtype as x.dtype
    ([("x: astype(grad, x.dtype)", "x: astype(grad, x.shape)")],
     "grad.x: argument 2 of 'astype' is a dtype, e.g. x.dtype"),
])
def test_dtype_rule_attr_mistakes(tmp_path, edits, message):
    text = CAST
    for old, new in edits:
        assert old in text
        text = text.replace(old, new)
    assert message in error(tmp_path, text)


PARTS = """\
op: parts
doc: x cut into n views.
args:
  x: Tensor
  n: {type: int}
  sizes: {type: "int[]"}
outputs:
  out: {type: "Tensor[]", count: n}
dtypes: floating
kernel:
  view: parts_views
grad:
  x: unsplit(grad, 0, False)
tests:
  shapes: [[[4, 2]]]
  attrs: {n: 2, sizes: [1, 3]}
  ref: np.split(x, n)
"""


def test_a_tensor_list_output_is_counted_by_an_attribute(tmp_path):
    (op,) = load(tmp_path, PARTS)
    assert op.list_output.count == "n" and op.variants == ["function", "method"]
    (op,) = load(tmp_path, PARTS.replace("count: n", "count: len(sizes)"))
    assert op.list_output.count_attr == "sizes" and op.list_output.count_is_len


@pytest.mark.parametrize("edits, message", [
    ([("count: n", "count: 2")], "op.yaml:8: outputs.out.count: a Tensor[] output needs count: <int attribute>"),
    ([(", count: n}", "}")], "outputs.out.count: a Tensor[] output needs count: <int attribute>"),
    ([("count: n", "count: sizes")], "outputs.out.count: 'sizes' is not an int attribute of the op"),
    ([("count: n", "count: len(n)")], "outputs.out.count: len(n) needs a required int[] attribute"),
    ([("count: n}", "count: n, hidden: true}")], "outputs.out.hidden: a Tensor[] output takes type, count and doc"),
    ([("  out: {type: \"Tensor[]\", count: n}\n", "  out: {type: \"Tensor[]\", count: n}\n  extra: Tensor\n")],
     "outputs.out: a Tensor[] output must be the op's only output"),
    ([("  out: {type: \"Tensor[]\", count: n}", "  out: {type: Tensor, count: n}")],
     "outputs.out.count: count is for a Tensor[] output"),
    ([("  view: parts_views", "  impl: {cpu: parts_cpu}"), ("kernel:\n", "shape: {fn: infer_parts}\nkernel:\n")],
     "kernel: an op with a Tensor[] output needs kernel.view"),
    ([("x: unsplit(grad, 0, False)", "x: grad * 2")], "grad.x: 'grad' is a list of arrays here"),
    ([("x: unsplit(grad, 0, False)", "x: unsplit(x, 0, False)")],
     "grad.x: argument 1 of 'unsplit' is the list of incoming gradients"),
    ([("x: unsplit(grad, 0, False)", "x: unsplit(grad, 0, False) + out")], "'out'"),
    ([("dtypes: floating", "dtypes: floating\nvariants: [function, out]")],
     "variants: an op with several outputs has the function and method variants only"),
])
def test_tensor_list_output_mistakes(tmp_path, edits, message):
    text = PARTS
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    assert message in error(tmp_path, text)


def test_kwarg_only_and_per_argument_nondiff(tmp_path):
    text = GOOD.replace("  alpha: {type: float, default: 2.0}", "  alpha: {type: float, default: 2.0, kwarg_only: true}")
    (op,) = load(tmp_path, text)
    assert op.attrs[0].kwarg_only
    text = GOOD.replace("  y: Tensor\n", "  y: {type: Tensor, nondiff: true}\n").replace("  y: grad\n", "")
    (op,) = load(tmp_path, text)
    assert op.nondiff == ["y"] and "y" not in op.grads


@pytest.mark.parametrize("old, new, message", [
    ("  x: Tensor\n", "  x: {type: Tensor, kwarg_only: true}\n", "args.x.kwarg_only: arrays are positional"),
    ("  alpha: {type: float, default: 2.0}", "  alpha: {type: float, default: 2.0, nondiff: true}",
     "args.alpha.nondiff: only arrays have gradients"),
    ("  alpha: {type: float, default: 2.0}", "  alpha: {type: float, default: 2.0, kwarg_only: yes please}",
     "args.alpha.kwarg_only: expected true or false"),
])
def test_kwarg_only_and_nondiff_mistakes(tmp_path, old, new, message):
    assert old in GOOD
    assert message in error(tmp_path, GOOD.replace(old, new))


def test_a_positional_argument_cannot_follow_a_keyword_only_one(tmp_path):
    text = GOOD.replace("  alpha: {type: float, default: 2.0}",
                        "  alpha: {type: float, default: 2.0, kwarg_only: true}\n  beta: {type: float, default: 1.0}")
    assert "args.beta.kwarg_only: follows the keyword-only 'alpha'" in error(tmp_path, text)


def test_domain_positive_and_exclude_are_opdsl_shorthands(tmp_path):
    text = GOOD.replace("  ref: x * alpha + y", "  ref: x * alpha + y\n  domain: {x: {positive: true, high: 2.0}, "
                        "y: {exclude: [0], away_from: [1.5]}}")
    (op,) = load(tmp_path, text)
    assert op.tests.domain["x"].low > 0 and op.tests.domain["x"].high == 2.0
    assert sorted(op.tests.domain["y"].away_from) == [0, 1.5]
    text = GOOD.replace("  ref: x * alpha + y", "  ref: x * alpha + y\n  domain: {x: {positive: true, low: -1}}")
    assert "tests.domain.x.positive: positive: true (and no low)" in error(tmp_path, text)
