"""Gradient formulas (`grad:` in an opdef) -> a C++ autograd Node.

A formula is an expression over loom operators, so the backward pass of an
op is made of differentiable calls and gradients of gradients come for free.
Compiling it here decides three things the templates only substitute:

  * the C++ statements of each input's gradient (one temporary per operator
    call, so no subexpression is evaluated twice);
  * what the node saves: only the inputs/outputs a formula reads as values,
    only the metadata (shape) of those it reads through `.shape`/`.numel`,
    each guarded by whether the inputs whose formulas need it want a
    gradient (a mask-guarded save);
  * which operator headers the generated file includes (exact dependencies).

Value kinds while compiling: "tensor" (an NDArray), "scalar" (a C++
double), "bool" (a C++ bool), "shape" (a loom::Shape), "dims" (ReduceDims).
A Python number meeting an array becomes a "weak" 0-d array of the array's
floating dtype (or the incoming gradient's, for bool/int arrays), so
`grad * 0.5` stays float64 in float64 and float32 in float32.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field

from generator.expr import SCALAR_FUNCTIONS, Expr, to_cpp_scalar
from generator.model import OpDef

# Functions a formula may call: name -> (C++ callee, arity, kind).
#   op:     a loom operator on tensors (scalars made weak);
#   helper: a differentiable function of runtime/autograd/functions.h;
#   reduce: a helper that exists only in a reduction's formulas.
UNARY_OPS = ["exp", "log", "sqrt", "rsqrt", "tanh", "sigmoid", "expm1", "log1p", "log2", "sin", "cos",
             "tan", "erf", "floor", "ceil", "round", "sign", "abs", "square", "neg"]
GRAD_CALLS = {name: (name, 1, "op") for name in UNARY_OPS}
GRAD_CALLS |= {
    "max": ("maximum", 2, "op"), "min": ("minimum", 2, "op"), "mod": ("mod", 2, "op"),
    "where": ("where", 3, "op"),
    "sum": ("sum", 1, "op"),                  # of every element; sum(t, dims=d, keepdim=k)
    "mean": ("mean", 1, "op"), "prod": ("prod", 1, "op"), "norm": ("norm", 1, "op"),
    "logsumexp": ("logsumexp", 1, "op"),
    "matmul": ("matmul", 2, "op"),
    "zeros_like": ("zeros_like", 1, "helper"),
    "ones_like": ("ones_like", 1, "helper"),
    "unreduce": ("unreduce", 1, "reduce"),         # reduced result -> broadcastable against the input
    "sum_reduced": ("sum_reduced", 1, "reduce"),   # sum over the op's dims, keepdim
}
# Differentiable helpers of runtime/autograd/ (functions.h, linalg_grad.h),
# and operators that take attributes: name -> (callee, argument kinds), the
# kinds t: array, s: shape such as x.shape, y: a dtype such as x.dtype, d: dims (an int[] attribute, a
# list of ints or None), i: an int (an int attribute or a number), b: a bool
# (a bool attribute, True or False), L: the list of incoming gradients of an
# op with a Tensor[] output (`grad` there). An
# "op:" callee is a loom operator (loom::op::<name>).
HELPERS = {
    "expand": ("broadcast_to", "ts"),         # expand(t, x.shape)
    "sum_to": ("sum_to", "ts"),               # sum_to(t, x.shape)
    "reshape": ("reshape", "ts"),
    "astype": ("astype", "ty"),               # astype(grad, x.dtype): a conversion's gradient
    "swap_last_dims": ("swap_last_dims", "t"),
    "matmul_grad_a": ("matmul_grad_a", "tst"),   # (grad, a.shape, b)
    "matmul_grad_b": ("matmul_grad_b", "tts"),   # (grad, a, b.shape)
    "unpermute": ("unpermute", "td"),         # undoes transpose(t, dims)
    "unshuffle": ("unshuffle", "tii"),
    "unslice": ("unslice", "tsddd"),          # (grad, x.shape, begin, end, step): slice's gradient
    "unsplit": ("unsplit", "Lib"),            # (grad, axis, squeeze_axis): split's gradient, grad the list
    "transpose": ("op:transpose", "td"),
    "swapaxes": ("op:swapaxes", "tii"),
    "flip": ("op:flip", "td"),
    "squeeze": ("op:squeeze", "td"),
    "expand_dims": ("op:expand_dims", "ti"),
    "take": ("op:take", "tti"),               # take(t, indices, dim)
    "gather": ("op:gather", "tti"),           # gather(t, index, dim)
    "scatter_add": ("op:scatter_add", "ttti"),  # scatter_add(x, index, src, dim)
    "cumsum": ("op:cumsum", "ti"),
    "softmax": ("op:softmax", "ti"),          # softmax(t, dim)
    "log_softmax": ("op:log_softmax", "ti"),  # log_softmax(t, dim)
    "untile": ("untile", "tsd"),              # (grad, x.shape, reps)
    "unrepeat": ("unrepeat", "tsii"),         # (grad, x.shape, repeats, dim)
    "unpad": ("unpad", "tsd"),                # (grad, x.shape, pad_width)
    "take_backward": ("take_backward", "ttsi"),   # (grad, indices, x.shape, dim)
    # runtime/autograd/nn_grad.h: (grad, weight, x.shape, stride, padding, dilation, groups)
    "conv_data_grad": ("conv_data_grad", "ttsdddi"),
    "conv_weight_grad": ("conv_weight_grad", "ttsdddi"),   # (x, grad_out, weight.shape, ...)
    "convolution_nobias": ("convolution_nobias", "ttdddi"),  # (x, weight, stride, padding, dilation, groups)
    "channel_sum": ("channel_sum", "t"),      # sum over every dim but 1
    "pool_scatter": ("pool_scatter", "tts"),  # (grad, indices, x.shape): max_pool's gradient
    # (grad, x.shape, kernel, stride, padding, ceil_mode, count_include_pad)
    "avg_pool_data_grad": ("avg_pool_data_grad", "tsdddbb"),
    "avg_pool": ("op:avg_pool", "tdddbb"),    # (x, kernel, stride, padding, ceil_mode, count_include_pad)
    "group_norm_body": ("group_norm_body", "tttif"),  # (x, weight, bias, num_groups, eps)
    "instance_norm_body": ("instance_norm_body", "tttf"),  # (x, weight, bias, eps)
    "adaptive_avg_pool_data_grad": ("adaptive_avg_pool_data_grad", "ts"),  # (grad, x.shape)
    "adaptive_avg_pool_like": ("adaptive_avg_pool_like", "ts"),            # (t, grad_out.shape)
    "upsample_nearest_data_grad": ("upsample_nearest_data_grad", "ts"),    # (grad, x.shape)
    "upsample_nearest_like": ("upsample_nearest_like", "ts"),              # (t, grad_out.shape)
    "upsample_bilinear_data_grad": ("upsample_bilinear_data_grad", "tsb"),  # (grad, x.shape, align_corners)
    "upsample_bilinear_like": ("upsample_bilinear_like", "tsb"),           # (t, grad_out.shape, align_corners)
    # (grad.loss, grad.prob, prob, label, dim, ignore_index, label_smoothing)
    "softmax_cross_entropy_grad": ("softmax_cross_entropy_grad", "ttttiif"),
    # (grad, log_probs, targets, input_lengths, target_lengths, loss, blank)
    "ctc_loss_grad": ("ctc_loss_grad", "tttttti"),
}
GRAD_CALLS |= {name: (callee, len(kinds), "helper") for name, (callee, kinds) in HELPERS.items()}
# Joint gradients: one call of runtime/autograd/ giving several inputs'
# gradients (grad key "x, weight, bias"), as a std::vector<NDArray> in the
# key's order; the call gets which of them are wanted as a last argument
# (std::vector<bool>). Argument kinds as in HELPERS, plus f: a float.
JOINT_GRADS = {
    # (grad.out, x, weight, bias, mean, invstd, out, training, eps, relu)
    "batch_norm_backward": ("batch_norm_backward", "tttttttbfb"),
    # (grad.out, x, weight, mean, invstd, axis, eps)
    "layer_norm_backward": ("layer_norm_backward", "tttttif"),
    # (grad.out, q, k, v, out, lse, valid_length, causal, scale)
    "attention_backward": ("attention_backward", "tttttttbf"),
    # (grad.y, grad.h_n, grad.c_n, x, h0, c0, w_ih, w_hh, y, gates, cells, reverse)
    "lstm_backward": ("lstm_backward", "tttttttttttb"),
    # (grad.y, grad.h_n, x, h0, w_ih, w_hh, y, gates, reverse)
    "gru_backward": ("gru_backward", "ttttttttb"),
    # (grad.y, grad.h_n, x, h0, w_ih, w_hh, y, reverse, relu)
    "rnn_backward": ("rnn_backward", "tttttttbb"),
}
GRAD_ATTRIBUTES = {"shape", "numel", "dtype"}
_BINARY_OPS = {ast.Add: ("add", "+"), ast.Sub: ("sub", "-"), ast.Mult: ("mul", "*"),
               ast.Div: ("div", "/"), ast.Pow: ("pow", None)}
_COMPARE_OPS = {ast.Lt: ("lt", "<"), ast.Gt: ("gt", ">"), ast.LtE: ("le", "<="), ast.GtE: ("ge", ">="),
                ast.Eq: ("eq", "=="), ast.NotEq: ("ne", "!=")}


@dataclass
class FusedKernel:
    """A pointwise op's gradient formula that is itself pointwise, compiled
    to one scalar functor: the first-order backward then runs one kernel
    instead of a chain of operator calls (each a full pass over memory).
    With create_graph the operator-call version runs, which is recorded."""
    functor: str          # MulGradXFunctor
    kernel: str           # mul_grad_x (-> mul_grad_x_cpu / _cuda)
    operands: list[str]   # functor parameters, in order: "grad", then saved names
    locals: list[str]     # the C++ local bound to each operand in apply()
    body: str             # C++ scalar expression over the operands and attributes
    line: int


@dataclass
class GradBlock:
    index: int            # which forward input
    name: str
    unpack: list[str]     # statements binding saved tensors to locals
    lines: list[str]      # the formula's statements
    result: str           # the local holding the gradient
    fused: FusedKernel | None = None
    # a joint gradient: [{"index", "name"}] of every input the one call
    # gives (result is then a std::vector<NDArray> in this order)
    joint: list = field(default_factory=list)


@dataclass
class Saved:
    name: str             # input or output name
    output_nr: int        # -1 for an input
    users: list[int]      # inputs whose formulas read it (the save guard)


@dataclass
class NodeSpec:
    node: str
    inputs: list[dict]    # {"name", "index", "diff"}
    blocks: list[GradBlock]
    saved: list[Saved]
    metas: list[str]      # names whose TensorMeta is kept
    attrs: list[dict]     # {"name", "cpp_type"}
    ops: set[str] = field(default_factory=set)  # operators the formulas call


# Reductions called with keywords, e.g. sum(t, dims=dim, keepdim=True); a
# plain sum(t) sums everything, and max(a, b) / min(a, b) are elementwise.
REDUCTIONS = {"sum", "mean", "max", "min", "prod", "norm", "logsumexp"}


class _Compiler:
    """Compiles one expression over loom operators to C++ statements.

    Two modes: a gradient formula (`grad` is the incoming gradient, names
    of inputs/outputs are saved tensors, attributes are node members `a_`),
    and a composite op's body (`composite=True`: names are the function's
    own parameters; no grad, no outputs)."""

    def __init__(self, op: OpDef, expr: Expr, composite: bool = False):
        self.op, self.expr, self.composite = op, expr, composite
        # The array whose floating dtype a Python number takes when its
        # partner is a bool mask: the incoming gradient, or a composite's first input.
        several = op.multi_output or op.list_output is not None
        self.fallback = op.tensor_args[0].name if composite else ("grad" if not several else "grads.at(0)")
        self.attr_suffix = "" if composite else "_"
        self.list_allowed = False  # while emitting a helper's L argument (see helper_args)
        self.lines: list[str] = []
        self.values: set[str] = set()   # tensor names read as values
        self.metas: set[str] = set()    # names read through .shape/.numel
        self.ops: set[str] = set()
        self.count = 0
        # Common subexpressions: formulas are pure, so a repeated
        # subexpression (the tanh(...) of gelu's) reuses its temporary.
        self.cache: dict[str, tuple[str, str]] = {}
        self.tensors = {a.name for a in op.tensor_args}
        self.outputs = {o.name for o in op.outputs}
        self.attr_types = {a.name: a.type for a in op.attrs}

    def fail(self, message: str):
        raise self.expr.error(message)

    def temp(self, code: str) -> str:
        name = f"t{self.count}"
        self.count += 1
        self.lines.append(f"const NDArray {name} = {code};")
        return name

    def call(self, op_name: str, *args: str) -> str:
        self.ops.add(op_name)
        return self.temp(f"::loom::op::{op_name}({', '.join(args)})")

    def tensor(self, code: str, kind: str, like: str | None) -> str:
        """`code` of `kind` as an array; scalars become weak 0-d arrays."""
        if kind == "tensor":
            return code
        if kind in ("scalar", "bool", "int"):
            ref = like or self.fallback
            return self.temp(f"::loom::autograd::weak_scalar(static_cast<double>({code}), {ref}, {self.fallback})")
        self.fail(f"a {kind} cannot be used as an array")

    def compile(self) -> str:
        code, kind = self.emit(self.expr.tree)
        if kind != "tensor":
            self.fail("a gradient formula must give an array (use expand(...) to shape a constant)")
        return code

    def name(self, node: ast.Name):
        n = node.id
        if n == "grad" and not self.composite:
            if self.op.list_output is not None:  # one gradient per output of the list
                if not self.list_allowed:
                    self.fail("'grad' is a list of arrays here (one per output): pass it to a helper that takes "
                              "them all, e.g. unsplit(grad, axis, squeeze_axis)")
                return "grads", "tensor_list"
            if self.op.multi_output:
                diff = ", ".join(f"grad.{o.name}" for o in self.op.diff_outputs)
                self.fail(f"'grad' is ambiguous for an op with several outputs: name one ({diff})")
            return "grad", "tensor"
        if n == "result":
            if len(self.outputs) != 1:
                self.fail("'result' needs exactly one output; name the output instead")
            n = next(iter(self.outputs))
        if n in self.tensors or (n in self.outputs and not self.composite):
            self.values.add(n)
            return n, "tensor"
        if n in self.attr_types:
            t = self.attr_types[n]
            return f"{n}{self.attr_suffix}", {"float": "scalar", "int": "int", "bool": "bool", "int[]": "dims"}[t]
        self.fail(f"undefined name '{n}'")

    def emit(self, node) -> tuple[str, str]:
        key = ast.dump(node)
        if key not in self.cache:
            self.cache[key] = self.emit_new(node)
        return self.cache[key]

    def branch(self, node) -> tuple[list[str], str]:
        """Compiles `node` into its own statement list (for one arm of an
        if/else); temporaries made there stay private to the arm."""
        outer_lines, outer_cache = self.lines, dict(self.cache)
        self.lines = []
        code = self.tensor(*self.emit(node), None)
        lines, self.lines, self.cache = self.lines, outer_lines, outer_cache
        return lines, code

    def emit_new(self, node) -> tuple[str, str]:
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool):
                return ("true" if node.value else "false"), "bool"
            if isinstance(node.value, (int, float)):
                return repr(float(node.value)), "scalar"
            self.fail(f"unsupported constant {node.value!r}")
        if isinstance(node, ast.Attribute):
            return self.attribute(node)
        if isinstance(node, ast.UnaryOp):
            code, kind = self.emit(node.operand)
            if isinstance(node.op, ast.UAdd):
                return code, kind
            if isinstance(node.op, ast.USub):
                return (self.call("neg", code), "tensor") if kind == "tensor" else (f"(-{code})", "scalar")
            if isinstance(node.op, ast.Not):
                return (self.call("logical_not", code), "tensor") if kind == "tensor" else (f"(!{code})", "bool")
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY_OPS:
            op_name, cpp = _BINARY_OPS[type(node.op)]
            return self.binary(op_name, cpp, node.left, node.right, "scalar")
        if (isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], (ast.Is, ast.IsNot))
                and isinstance(node.comparators[0], ast.Constant) and node.comparators[0].value is None):
            return self.given(node.left, negate=isinstance(node.ops[0], ast.Is)), "bool"
        if isinstance(node, ast.IfExp):
            cond, kind = self.emit(node.test)
            if kind != "bool":
                self.fail("the condition of 'a if cond else b' is a bool: a bool attribute, a comparison of "
                          "numbers, or 'b is None' for an optional array (use where(...) to pick elementwise)")
            return self.choose(cond, node.body, node.orelse), "tensor"
        if isinstance(node, ast.Compare):
            if len(node.ops) != 1 or type(node.ops[0]) not in _COMPARE_OPS:
                self.fail("only single comparisons (<, >, <=, >=, ==, !=) are supported")
            op_name, cpp = _COMPARE_OPS[type(node.ops[0])]
            return self.binary(op_name, cpp, node.left, node.comparators[0], "bool")
        if isinstance(node, ast.BoolOp):
            op_name, cpp = ("logical_and", "&&") if isinstance(node.op, ast.And) else ("logical_or", "||")
            code, kind = self.emit(node.values[0])
            for v in node.values[1:]:
                code, kind = self.binary_values(op_name, cpp, (code, kind), self.emit(v), "bool")
            return code, kind
        if isinstance(node, ast.Call):
            return self.function(node)
        self.fail(f"{type(node).__name__} is not allowed in a gradient formula")

    def given(self, node, negate: bool) -> str:
        """`b is None` / `b is not None` for an optional array (Tensor?):
        the argument itself in a composite body, its recorded metadata in a
        gradient formula (so testing for it saves nothing)."""
        if not (isinstance(node, ast.Name) and node.id in self.op.optional_names):
            self.fail("'is None' / 'is not None' test an optional array (a Tensor? argument)")
        if self.composite:
            test = f"{node.id}.defined()"
        else:
            self.metas.add(node.id)
            test = f"{node.id}_meta_.given"
        return f"(!{test})" if negate else test

    def choose(self, cond: str, when_true, when_false) -> str:
        """An array that is one of two expressions, picked by a C++ bool;
        only the picked one is computed (the other may read an optional
        array that was not given)."""
        (a_lines, a), (b_lines, b) = self.branch(when_true), self.branch(when_false)
        name = f"t{self.count}"
        self.count += 1
        self.lines.append(f"NDArray {name};")
        self.lines.append(f"if ({cond}) {{")
        self.lines += ["  " + line for line in a_lines] + [f"  {name} = {a};", "} else {"]
        self.lines += ["  " + line for line in b_lines] + [f"  {name} = {b};", "}"]
        return name

    def attribute(self, node: ast.Attribute) -> tuple[str, str]:
        if not isinstance(node.value, ast.Name):
            self.fail("attributes are read from argument or output names only")
        base = node.value.id
        if base == "grad" and not self.composite and self.op.multi_output:
            diff = [o.name for o in self.op.diff_outputs]
            if node.attr not in diff:
                self.fail(f"'grad.{node.attr}': no differentiable output '{node.attr}' (they are: {', '.join(diff)})")
            return f"grads.at({diff.index(node.attr)})", "tensor"
        if base == "result" and len(self.outputs) == 1:
            base = next(iter(self.outputs))
        if base not in self.tensors and base not in self.outputs:
            self.fail(f"'.{node.attr}' needs an array argument or output, not '{base}'")
        self.metas.add(base)
        if node.attr == "shape":
            return f"{base}_meta_.shape", "shape"
        if node.attr == "numel":
            return f"static_cast<double>(::loom::shape_numel({base}_meta_.shape))", "scalar"
        if node.attr == "dtype":
            return f"{base}_meta_.dtype", "dtype"
        self.fail(f"unknown attribute '.{node.attr}' (known: {', '.join(sorted(GRAD_ATTRIBUTES))})")

    def binary(self, op_name, cpp, left, right, scalar_kind):
        return self.binary_values(op_name, cpp, self.emit(left), self.emit(right), scalar_kind)

    def binary_values(self, op_name, cpp, left, right, scalar_kind):
        (lc, lk), (rc, rk) = left, right
        lk, rk = ("scalar" if lk == "int" else lk), ("scalar" if rk == "int" else rk)
        if lk != "tensor" and rk != "tensor":
            if op_name == "pow":
                return f"std::pow({lc}, {rc})", "scalar"
            return f"({lc} {cpp} {rc})", scalar_kind
        a = self.tensor(lc, lk, rc if rk == "tensor" else None)
        b = self.tensor(rc, rk, lc if lk == "tensor" else None)
        return self.call(op_name, a, b), "tensor"

    def reduction(self, fname: str, node: ast.Call) -> tuple[str, str]:
        """sum(t, dims=d, keepdim=k): the reduction op; dims an int[] or int
        attribute, an int, a list of ints or None; keepdim a bool."""
        if len(node.args) != 1:
            self.fail(f"'{fname}' with keywords takes one array and dims=/keepdim=")
        t = self.tensor(*self.emit(node.args[0]), None)
        dims, keepdim = "std::nullopt", "false"
        for kw in node.keywords:
            if kw.arg == "dims":
                v = kw.value
                if isinstance(v, ast.Constant) and v.value is None:
                    dims = "std::nullopt"
                elif isinstance(v, (ast.List, ast.Tuple)) and all(
                        isinstance(e, ast.Constant) and isinstance(e.value, int) for e in v.elts):
                    dims = "::loom::ReduceDims(std::vector<std::int64_t>{" + ", ".join(
                        str(e.value) for e in v.elts) + "})"
                else:
                    code, kind = self.emit(v)
                    if kind == "dims":
                        dims = code
                    elif kind == "int" or (kind == "scalar" and isinstance(v, ast.Constant)):
                        dims = f"::loom::ReduceDims(std::vector<std::int64_t>{{static_cast<std::int64_t>({code})}})"
                    else:
                        self.fail(f"dims= of '{fname}' takes an int or int[] attribute, a list of ints or None")
            elif kw.arg == "keepdim":
                code, kind = self.emit(kw.value)
                if kind != "bool":
                    self.fail(f"keepdim= of '{fname}' takes True, False or a bool attribute")
                keepdim = code
            else:
                self.fail(f"'{fname}' takes the keywords dims= and keepdim= only")
        return self.call(fname, t, dims, keepdim), "tensor"

    def dims_argument(self, node, compiled, position: str) -> str:
        """A dims argument as a ReduceDims: an int[] attribute, an int
        attribute (one dim), a list of ints or None."""
        if isinstance(node, ast.Constant) and node.value is None:
            return "::loom::ReduceDims(std::nullopt)"
        if isinstance(node, (ast.List, ast.Tuple)) and all(
                isinstance(e, ast.Constant) and isinstance(e.value, int) for e in node.elts):
            return "::loom::ReduceDims(std::vector<std::int64_t>{" + ", ".join(str(e.value) for e in node.elts) + "})"
        code, kind = compiled
        if kind == "dims":
            return code
        if kind == "int":
            return f"::loom::ReduceDims(std::vector<std::int64_t>{{{code}}})"
        self.fail(f"{position} is dims: an int[] or int attribute, a list of ints or None")

    def function(self, node: ast.Call) -> tuple[str, str]:
        if not isinstance(node.func, ast.Name) or node.func.id not in GRAD_CALLS:
            self.fail(f"unknown function (allowed: {', '.join(sorted(GRAD_CALLS))})")
        fname = node.func.id
        callee, arity, kind = GRAD_CALLS[fname]
        if node.keywords and fname in REDUCTIONS:
            return self.reduction(fname, node)
        if node.keywords or len(node.args) != arity:
            self.fail(f"'{fname}' takes {arity} positional argument(s)")
        if fname == "where":
            cc, ck = self.emit(node.args[0])
            if ck == "bool":  # an attribute picks the branch: compute only that one
                return self.choose(cc, node.args[1], node.args[2]), "tensor"
            a, b = self.emit(node.args[1]), self.emit(node.args[2])
            like = a[0] if a[1] == "tensor" else (b[0] if b[1] == "tensor" else None)
            ta, tb = self.tensor(*a, like), self.tensor(*b, like)
            return self.call("where", self.tensor(cc, ck, None), ta, tb), "tensor"
        if kind == "helper" and fname in HELPERS:
            code = self.helper_args(fname, node, HELPERS[fname][1])
            if callee.startswith("op:"):
                return self.call(callee[3:], *code), "tensor"
            return self.temp(f"::loom::autograd::{callee}({', '.join(code)})"), "tensor"
        return self.plain_call(fname, callee, kind, node)

    def joint(self, node: ast.Call, wanted: str) -> str:
        """A joint gradient call: a std::vector<NDArray> temporary."""
        fname = node.func.id
        callee, kinds = JOINT_GRADS[fname]
        if node.keywords or len(node.args) != len(kinds):
            self.fail(f"'{fname}' takes {len(kinds)} positional argument(s)")
        code = self.helper_args(fname, node, kinds)
        name = f"t{self.count}"
        self.count += 1
        self.lines.append(f"const std::vector<NDArray> {name} = ::loom::autograd::{callee}("
                          f"{', '.join(code + [wanted])});")
        return name

    def helper_args(self, fname: str, node: ast.Call, kinds: str) -> list[str]:
        """The C++ arguments of a helper call, each checked against its kind."""
        code = []
        for node_arg, want in zip(node.args, kinds):
            position = f"argument {len(code) + 1} of '{fname}'"
            if want == "L":  # the list of incoming gradients, and only it
                if not (isinstance(node_arg, ast.Name) and node_arg.id == "grad" and self.op.list_output is not None):
                    self.fail(f"{position} is the list of incoming gradients, 'grad' (an op with a Tensor[] output)")
                self.list_allowed = True
                try:
                    code.append(self.emit(node_arg)[0])
                finally:
                    self.list_allowed = False
                continue
            if want == "d" and (isinstance(node_arg, (ast.List, ast.Tuple)) or (
                    isinstance(node_arg, ast.Constant) and node_arg.value is None)):
                code.append(self.dims_argument(node_arg, (None, None), position))
                continue
            c, k = self.emit(node_arg)
            if want == "s":
                if k != "shape":
                    self.fail(f"{position} is a shape, e.g. x.shape")
                code.append(c)
            elif want == "y":
                if k != "dtype":
                    self.fail(f"{position} is a dtype, e.g. x.dtype")
                code.append(c)
            elif want == "d":
                code.append(self.dims_argument(node_arg, (c, k), position))
            elif want == "f":
                if k not in ("scalar", "int"):
                    self.fail(f"{position} is a number (a float attribute or a literal)")
                code.append(f"static_cast<double>({c})")
            elif want == "b":
                if k != "bool":
                    self.fail(f"{position} is a bool (a bool attribute, True or False)")
                code.append(c)
            elif want == "i":
                if k not in ("int", "scalar") or (k == "scalar" and not isinstance(node_arg, ast.Constant)):
                    self.fail(f"{position} is an int (an int attribute or a number)")
                code.append(f"static_cast<std::int64_t>({c})")
            else:
                code.append(self.tensor(c, k, None))
        return code

    def plain_call(self, fname: str, callee: str, kind: str, node: ast.Call) -> tuple[str, str]:
        args = [self.emit(a) for a in node.args]
        if kind == "reduce":
            if self.op.kind != "reduce":
                self.fail(f"'{fname}' exists only in the gradient formulas of reductions")
            x, dims, keepdim = self.op.shape_args
            t = self.tensor(*args[0], None)
            if fname == "unreduce":
                self.metas.add(x)
                return self.temp(f"::loom::autograd::unreduce({t}, {x}_meta_.shape, {dims}_, {keepdim}_)"), "tensor"
            return self.call("sum", t, f"{dims}_", "true"), "tensor"
        if kind == "helper":  # zeros_like / ones_like
            t = self.tensor(*args[0], None)
            value = "0.0" if fname == "zeros_like" else "1.0"
            return self.temp(f"::loom::autograd::full({t}.shape(), {value}, {t}.dtype(), {t}.device())"), "tensor"
        if all(k != "tensor" for _, k in args):
            self.fail(f"'{fname}' needs an array argument here")
        like = next(c for c, k in args if k == "tensor")
        return self.call(callee, *[self.tensor(c, k, like) for c, k in args]), "tensor"


def composite_body(op: OpDef) -> dict:
    """A composite op's body (kernel.composite) as C++ statements over its
    parameters; autograd records the operators it calls, so it needs no
    backward of its own."""
    c = _Compiler(op, op.composite, composite=True)
    result = c.compile()
    return {"lines": c.lines, "result": result, "includes": sorted(c.ops)}


# Gradients of a list op (concat, stack): one call that cuts the incoming
# gradient into one array per list element, from the elements' shapes and
# an int attribute: name -> C++ callee in runtime/autograd/functions.h.
LIST_GRADS = {"unconcat": "unconcat", "unstack": "unstack"}


def list_grad_call(op: OpDef) -> str:
    """The C++ call computing a list op's input gradients, e.g.
    `::loom::autograd::unconcat(grad, arrays_shapes_, dim_)`; the formula
    must be `<fn>(grad, <list>.shapes, <int attribute or number>)`."""
    lst = op.tensor_list.name
    expr = op.grads[lst]
    tree = expr.tree
    allowed = ", ".join(f"{f}(grad, {lst}.shapes, <int attribute>)" for f in LIST_GRADS)
    if not (isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name) and tree.func.id in LIST_GRADS
            and len(tree.args) == 3 and not tree.keywords):
        raise expr.error(f"the gradient of a Tensor[] argument is one of: {allowed}")
    g, shapes, dim = tree.args
    if not (isinstance(g, ast.Name) and g.id == "grad"):
        raise expr.error("the first argument is the incoming gradient, 'grad'")
    if not (isinstance(shapes, ast.Attribute) and shapes.attr == "shapes" and isinstance(shapes.value, ast.Name)
            and shapes.value.id == lst):
        raise expr.error(f"the second argument is '{lst}.shapes'")
    ints = {a.name for a in op.attrs if a.type == "int"}
    if isinstance(dim, ast.Name) and dim.id in ints:
        dim_code = f"{dim.id}_"
    elif isinstance(dim, ast.Constant) and isinstance(dim.value, int) and not isinstance(dim.value, bool):
        dim_code = str(dim.value)
    else:
        raise expr.error("the third argument is an int attribute or an integer")
    return f"::loom::autograd::{LIST_GRADS[tree.func.id]}(grad, {lst}_shapes_, {dim_code})"


def node_spec(op: OpDef) -> NodeSpec | None:
    """The backward node of `op`, or None when it has no differentiable input."""
    if not op.grads:
        return None
    if op.tensor_list is not None:
        list_grad_call(op)  # validates the formula
        return None
    inputs = [{"name": a.name, "index": i, "diff": a.name in op.grads}
              for i, a in enumerate(op.tensor_args)]
    blocks, users, metas, ops = [], {}, set(), set()
    # a differentiable output is saved as output k of the node (so gradients
    # of gradients flow through it); any other output like an input
    output_nr = {o.name: i for i, o in enumerate(op.diff_outputs)}
    index_of = {i["name"]: i["index"] for i in inputs}
    joint_of = {n: (names, e) for names, e in op.joint_grads for n in names}
    for names, expr in op.joint_grads:
        targets = [{"index": index_of[n], "name": n} for n in names]
        c = _Compiler(op, expr)
        wanted = "std::vector<bool>{" + ", ".join(f"needs_input_grad({t['index']})" for t in targets) + "}"
        result = c.joint(expr.tree, wanted)
        for n in sorted(c.values):
            users.setdefault(n, []).extend(t["index"] for t in targets)
        metas |= c.metas
        ops |= c.ops
        unpack = [f'const NDArray {n} = {n}_.unpack(*this, "{_what(op, n)}");' for n in sorted(c.values)]
        blocks.append(GradBlock(targets[0]["index"], ", ".join(names), unpack, c.lines, result, joint=targets))
    for inp in inputs:
        if not inp["diff"] or inp["name"] in joint_of:
            continue
        c = _Compiler(op, op.grads[inp["name"]])
        result = c.compile()
        for n in sorted(c.values):
            users.setdefault(n, []).append(inp["index"])
        metas |= c.metas
        ops |= c.ops
        unpack = [f'const NDArray {n} = {n}_.unpack(*this, "{_what(op, n)}");' for n in sorted(c.values)]
        fused = _fused_kernel(op, inp["name"], op.grads[inp["name"]]) if op.kind == "pointwise" else None
        blocks.append(GradBlock(inp["index"], inp["name"], unpack, c.lines, result, fused))
    saved = [Saved(n, output_nr.get(n, -1), u) for n, u in sorted(users.items())]
    attrs = [{"name": a.name, "cpp_type": _attr_cpp(a.type)} for a in op.attrs]
    return NodeSpec(node="".join(p.capitalize() for p in op.name.split("_")) + "Backward",
                    inputs=inputs, blocks=blocks, saved=saved, metas=sorted(metas), attrs=attrs, ops=ops)


_FUSABLE_NODES = (ast.Name, ast.Constant, ast.BinOp, ast.UnaryOp, ast.Compare, ast.BoolOp, ast.Call,
                  ast.operator, ast.unaryop, ast.cmpop, ast.boolop, ast.expr_context)


def _fused_kernel(op: OpDef, target: str, expr: Expr) -> FusedKernel | None:
    """The formula as one scalar functor, or None when it needs more than
    elementwise arithmetic (shapes, reductions, helpers)."""
    for node in ast.walk(expr.tree):
        if not isinstance(node, _FUSABLE_NODES):
            return None
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) not in SCALAR_FUNCTIONS:
            return None
    outputs = [o.name for o in op.outputs]
    names = expr.names()
    operands = ["grad"] + sorted(n for n in names if n in {a.name for a in op.tensor_args} | set(outputs)
                                 | {"result"} and n != "grad")
    scalar_attrs = {a.name for a in op.attrs if a.type in ("float", "int", "bool")}
    body = to_cpp_scalar(expr, set(operands), scalar_attrs,
                         bool_attrs={a.name for a in op.attrs if a.type == "bool"})
    stem = "".join(p.capitalize() for p in op.name.split("_"))
    part = "".join(p.capitalize() for p in target.split("_"))
    return FusedKernel(functor=f"{stem}Grad{part}Functor", kernel=f"{op.name}_grad_{target}",
                       operands=operands,
                       locals=[outputs[0] if n == "result" else n for n in operands],
                       body=body, line=expr.line)


def _what(op: OpDef, name: str) -> str:
    kind = "output" if name in {o.name for o in op.outputs} else "input"
    return f"{kind} '{name}' of {op.name}"


def _attr_cpp(type_name: str) -> str:
    from generator.model import ATTR_TYPES
    return ATTR_TYPES[type_name][0]


def node_view(op: OpDef) -> dict:
    if op.tensor_list is not None and op.grads:
        lst = op.tensor_list.name
        return {"record": True, "list": lst, "fused": [], "includes": [],
                "node": "".join(p.capitalize() for p in op.name.split("_")) + "Backward",
                "call": list_grad_call(op),
                "attrs": [{"name": a.name, "cpp_type": _attr_cpp(a.type)} for a in op.attrs]}
    spec = node_spec(op)
    if spec is None:
        return {"record": False, "list": None, "includes": [], "fused": []}
    diff_inputs = [i for i in spec.inputs if i["diff"]]
    fused = [b.fused for b in spec.blocks if b.fused is not None]
    # How record() reaches the outputs: `result`, or `outs[i]` for an op
    # with several (hidden ones included, in the YAML's order).
    if op.list_output is not None:  # every array of the list is an output of the node
        output_cpp = {op.list_output.name: "outs.at(0)"}
        record_param = "std::vector<NDArray>& outs"
    elif op.multi_output:
        output_cpp = {o.name: f"outs[{i}]" for i, o in enumerate(op.outputs)}
        record_param = "std::vector<NDArray>& outs"
    else:
        output_cpp = {op.outputs[0].name: "result"}
        record_param = "NDArray& result"
    return {
        "multi_output": op.multi_output or op.list_output is not None,
        "record_param": record_param,
        "output_cpp": output_cpp,
        "first_output": output_cpp[op.diff_outputs[0].name],
        "set_outputs": ("outs" if op.list_output is not None else
                        "{" + ", ".join(f"&{output_cpp[o.name]}" for o in op.diff_outputs) + "}"),
        "record": True,
        "list": None,
        "fused": [dict(vars(f), params=", ".join(f"T {n}" for n in f.operands), arity=len(f.operands))
                  for f in fused],
        "node": spec.node,
        "n_inputs": len(spec.inputs),
        "blocks": [dict(vars(b), fused=dict(vars(b.fused), named=", ".join(
            f'{{"{n}", &{loc}}}' for n, loc in zip(b.fused.operands, b.fused.locals))) if b.fused else None)
            for b in spec.blocks],
        "inputs": spec.inputs,
        "diff_input_ptrs": ", ".join(f"&{i['name']}" for i in diff_inputs),
        "saved": [{"name": s.name, "output_nr": s.output_nr,
                   "guard": " || ".join(f"node->needs_input_grad({u})" for u in s.users)} for s in spec.saved],
        "metas": spec.metas,
        "output_index": {o.name: i for i, o in enumerate(op.outputs)},
        "outputs": [o.name for o in op.outputs],
        "attrs": spec.attrs,
        "includes": sorted(spec.ops),
    }
