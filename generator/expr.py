"""The expression language of opdefs/: a Python-syntax subset parsed with `ast`.

One source string becomes several things:
  - a C++ scalar expression for pointwise kernel bodies (`to_cpp_scalar`),
  - the set of names it uses (saved-tensor analysis, name checks),
  - validated NumPy text for test references (`check_numpy`).
Errors point at the YAML line of the expression and name the field.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass

from generator.errors import SpecError

# Functions a pointwise body may call, and their C++ spelling (host+device
# versions live in runtime/kernels/pointwise_math.h).
SCALAR_FUNCTIONS = {
    "where": ("::loom::pw::where", 3),
    "max": ("::loom::pw::maximum", 2),
    "min": ("::loom::pw::minimum", 2),
    "abs": ("::loom::pw::abs", 1),
    "exp": ("::loom::pw::exp", 1),
    "log": ("::loom::pw::log", 1),
    "sqrt": ("::loom::pw::sqrt", 1),
    "rsqrt": ("::loom::pw::rsqrt", 1),
    "tanh": ("::loom::pw::tanh", 1),
    "sigmoid": ("::loom::pw::sigmoid", 1),
    "expm1": ("::loom::pw::expm1", 1),
    "log1p": ("::loom::pw::log1p", 1),
    "log2": ("::loom::pw::log2", 1),
    "sin": ("::loom::pw::sin", 1),
    "cos": ("::loom::pw::cos", 1),
    "tan": ("::loom::pw::tan", 1),
    "erf": ("::loom::pw::erf", 1),
    "floor": ("::loom::pw::floor", 1),
    "ceil": ("::loom::pw::ceil", 1),
    "round": ("::loom::pw::round_half_even", 1),
    "sign": ("::loom::pw::sign", 1),
    "fmod": ("::loom::pw::fmod", 2),
    "mod": ("::loom::pw::mod", 2),
}

_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
_CMPOPS = {ast.Lt: "<", ast.Gt: ">", ast.LtE: "<=", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}


@dataclass
class Expr:
    """A parsed expression and where it came from."""

    text: str
    tree: ast.expr
    file: str
    line: int
    field: str

    def error(self, message: str) -> SpecError:
        return SpecError(self.file, self.line, self.field, f"{message} in '{self.text}'")

    def names(self) -> set[str]:
        """Every bare name the expression reads (function names excluded)."""
        called = {id(n.func) for n in ast.walk(self.tree) if isinstance(n, ast.Call)}
        return {n.id for n in ast.walk(self.tree) if isinstance(n, ast.Name) and id(n) not in called}


def parse(text, file: str, field: str) -> Expr:
    line = getattr(text, "line", 0)
    if not isinstance(text, str) or not text.strip():
        raise SpecError(file, line, field, "expected a non-empty expression string")
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as e:
        raise SpecError(file, line, field, f"invalid expression '{text}': {e.msg}") from None
    return Expr(str(text).strip(), tree, file, line, field)


def check_names(expr: Expr, known: dict[str, str], functions: set[str],
                attributes: set[str] = frozenset(), keyword_functions: set[str] = frozenset()) -> None:
    """Every name is in `known` (name -> what it is), every call in `functions`.
    `a if cond else b` passes here; the compilers that cannot use it (a
    pointwise body is one scalar expression) refuse it themselves."""
    for node in ast.walk(expr.tree):
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name):
                raise expr.error("only plain function calls are allowed")
            if node.func.id not in functions:
                raise expr.error(f"unknown function '{node.func.id}' (allowed: {', '.join(sorted(functions))})")
            if node.keywords and node.func.id not in keyword_functions:
                raise expr.error(f"'{node.func.id}' takes no keyword arguments here")
        elif isinstance(node, ast.Attribute):
            if node.attr not in attributes and not (isinstance(node.value, ast.Name)
                                                    and f"{node.value.id}.{node.attr}" in known):
                raise expr.error(f"unknown attribute '.{node.attr}'")
        elif isinstance(node, (ast.Subscript, ast.Lambda, ast.ListComp, ast.Dict, ast.Set,
                               ast.GeneratorExp, ast.Starred, ast.NamedExpr)):
            raise expr.error(f"{type(node).__name__} is not part of the expression language")
    for name in sorted(expr.names()):
        if name not in known and not _is_attr_base(expr, name, known):
            listing = ", ".join(sorted(k for k in known if "." not in k))
            raise expr.error(f"undefined name '{name}' (known here: {listing})")


def _is_attr_base(expr: Expr, name: str, known: dict[str, str]) -> bool:
    # `grad.out` style names: the base is fine when some `name.attr` is known.
    return any(k.startswith(name + ".") for k in known)


def to_cpp_scalar(expr: Expr, inputs: set[str], attrs: set[str], scalar_type: str = "T",
                  result_bool: bool = False, bool_attrs: set[str] = frozenset(),
                  int_names: set[str] = frozenset(), random_calls: bool = False) -> str:
    """C++ for a pointwise body. Inputs are scalars of type `scalar_type`;
    attributes and literals are converted to it, so one body serves every dtype.
    With `result_bool` the body yields a bool (comparisons, logical ops).

    `int_names` (generate bodies: the index `i`, `cols`, int attributes) stay
    std::int64_t values: `+ - *` and comparisons between integers are done in
    integers, `//` and `%` take integers only (floor division and a
    non-negative remainder for a positive divisor, as Python's), and an
    integer meeting a float becomes `scalar_type`. `random_calls` allows
    uniform(), normal() and randint(low, high) over the Philox block `blk`."""

    def value(node) -> str:
        code, kind = emit(node)
        return f"{scalar_type}({code})" if kind in ("bool", "int") else code

    def integer(node) -> str | None:
        """The node as std::int64_t C++ when it is an integer expression."""
        if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
            return f"std::int64_t{{{node.value}}}"
        code, kind = emit(node)
        return code if kind == "int" else None

    def emit(node) -> tuple[str, str]:
        if isinstance(node, ast.Name):
            if node.id in int_names:
                return node.id, "int"
            if node.id in inputs:
                return node.id, "value"
            if node.id in attrs:
                return f"{scalar_type}({node.id})", "value"
            raise expr.error(f"undefined name '{node.id}'")
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool):
                return ("true" if node.value else "false"), "bool"
            if isinstance(node.value, (int, float)):
                return f"{scalar_type}({node.value!r})", "value"
            raise expr.error(f"unsupported constant {node.value!r}")
        if int_names and isinstance(node, (ast.BinOp, ast.Compare)):
            left = node.left
            right = node.right if isinstance(node, ast.BinOp) else node.comparators[0]
            li, ri = integer(left), integer(right)
            if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.FloorDiv, ast.Mod)):
                if li is None or ri is None:
                    raise expr.error("'//' and '%' take integers (i, cols, int attributes, int literals)")
                fn = "floor_div" if isinstance(node.op, ast.FloorDiv) else "floor_mod"
                return f"::loom::pw::{fn}({li}, {ri})", "int"
            both = li is not None and ri is not None and (emit(left)[1] == "int" or emit(right)[1] == "int")
            if both and isinstance(node, ast.BinOp) and type(node.op) in (ast.Add, ast.Sub, ast.Mult):
                return f"({li} {_BINOPS[type(node.op)]} {ri})", "int"
            if both and isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _CMPOPS:
                return f"({li} {_CMPOPS[type(node.ops[0])]} {ri})", "bool"
        if random_calls and isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in ("uniform", "normal", "randint"):
            wanted = 2 if node.func.id == "randint" else 0
            if len(node.args) != wanted:
                raise expr.error(f"'{node.func.id}' takes {wanted} argument(s), got {len(node.args)}")
            if node.func.id == "uniform":
                return f"::loom::random::unit<{scalar_type}>(blk)", "value"
            if node.func.id == "normal":
                return f"::loom::random::standard_normal<{scalar_type}>(blk)", "value"
            low, high = integer(node.args[0]), integer(node.args[1])
            if low is None or high is None:
                raise expr.error("randint(low, high) takes integers (int attributes or literals)")
            return f"::loom::random::randint_in(blk, {low}, {high})", "int"
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.Pow):
                if isinstance(node.right, ast.Constant) and node.right.value == 2:
                    base = value(node.left)  # a square: one multiply, and the loop still vectorises
                    return f"({base} * {base})", "value"
                return f"::loom::pw::pow({value(node.left)}, {value(node.right)})", "value"
            if type(node.op) not in _BINOPS:
                raise expr.error(f"operator {type(node.op).__name__} is not supported")
            return f"({value(node.left)} {_BINOPS[type(node.op)]} {value(node.right)})", "value"
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.USub):
                return f"(-{value(node.operand)})", "value"
            if isinstance(node.op, ast.UAdd):
                return value(node.operand), "value"
            if isinstance(node.op, ast.Not):
                return f"(!{emit(node.operand)[0]})", "bool"
        if isinstance(node, ast.Compare):
            if len(node.ops) != 1:
                raise expr.error("chained comparisons are not supported")
            if type(node.ops[0]) not in _CMPOPS:
                raise expr.error(f"comparison {type(node.ops[0]).__name__} is not supported")
            return f"({value(node.left)} {_CMPOPS[type(node.ops[0])]} {value(node.comparators[0])})", "bool"
        if isinstance(node, ast.BoolOp):
            joiner = " && " if isinstance(node.op, ast.And) else " || "
            return "(" + joiner.join(emit(v)[0] for v in node.values) + ")", "bool"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in SCALAR_FUNCTIONS:
            cpp, arity = SCALAR_FUNCTIONS[node.func.id]
            if len(node.args) != arity:
                raise expr.error(f"'{node.func.id}' takes {arity} argument(s), got {len(node.args)}")
            if node.func.id == "where":
                c = node.args[0]
                if isinstance(c, ast.Name) and c.id in bool_attrs:
                    # A bool attribute picks one formula for the whole call:
                    # a plain ?: computes only that one, and the CPU loop
                    # hoists the test out of the loop.
                    return f"({c.id} ? {value(node.args[1])} : {value(node.args[2])})", "value"
                cond = emit(node.args[0])[0]
                return f"{cpp}({cond}, {value(node.args[1])}, {value(node.args[2])})", "value"
            return f"{scalar_type}({cpp}({', '.join(value(a) for a in node.args)}))", "value"
        raise expr.error(f"{type(node).__name__} is not allowed in a pointwise body")

    if result_bool:
        code, kind = emit(expr.tree)
        return code if kind == "bool" else f"({code} != {scalar_type}(0))"
    return value(expr.tree)
