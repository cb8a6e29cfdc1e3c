"""`checks:` in an opdef: argument validation the generated dispatch runs
before anything else.

    checks:
      - {expr: "w.ndim == 2", msg: "w must be a matrix (out, in)"}
      - {expr: "size(x, -1) == size(w, 1)", msg: "x's last dim must equal w's second"}

An expression may read attributes, `t.ndim` and `t.numel` of Tensor
arguments and `size(t, i)` (negative i from the end), with arithmetic,
comparisons and and/or/not. A failing check raises ValueError naming the
op, the message, and the shapes and attribute values the expression read.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass

from generator.errors import SpecError
from generator.expr import Expr, parse

_BIN = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Mod: "%"}
_CMP = {ast.Lt: "<", ast.Gt: ">", ast.LtE: "<=", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}


@dataclass
class Check:
    expr: Expr
    msg: str
    cpp: str                 # the C++ condition
    shown: list[str]         # C++ stream parts listing what it read


def compile_check(expr: Expr, tensors: set[str], attrs: dict[str, str],
                  optional: set[str] = frozenset()) -> tuple[str, list[str]]:
    """-> (the C++ condition, the stream parts showing what it read). A
    check that reads an optional array (Tensor?) applies when it is given:
    the condition becomes `!b.defined() || (...)`. `b is None` and
    `b is not None` test for it explicitly."""
    read_tensors, read_attrs = [], []

    def emit(node) -> str:
        if isinstance(node, ast.Constant) and isinstance(node.value, (bool, int, float)):
            return ("true" if node.value else "false") if isinstance(node.value, bool) else repr(node.value)
        if isinstance(node, ast.Name):
            if node.id in attrs and attrs[node.id] in ("float", "int", "bool"):
                if node.id not in read_attrs:
                    read_attrs.append(node.id)
                return node.id
            raise expr.error(f"'{node.id}' is not a float, int or bool attribute (arrays: use .ndim, .numel, size())")
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in tensors:
            if node.attr not in ("ndim", "numel"):
                raise expr.error(f"unknown attribute '.{node.attr}' (checks read .ndim, .numel and size(t, i))")
            if node.value.id not in read_tensors:
                read_tensors.append(node.value.id)
            return f"static_cast<std::int64_t>({node.value.id}.{node.attr}())"
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "size":
            if len(node.args) != 2 or not isinstance(node.args[0], ast.Name) or node.args[0].id not in tensors:
                raise expr.error("size() takes an array argument and a dim: size(x, -1)")
            if node.args[0].id not in read_tensors:
                read_tensors.append(node.args[0].id)
            return f"::loom::dim_size({node.args[0].id}, {emit(node.args[1])})"
        if isinstance(node, ast.BinOp) and type(node.op) in _BIN:
            return f"({emit(node.left)} {_BIN[type(node.op)]} {emit(node.right)})"
        if isinstance(node, ast.UnaryOp):
            op = {ast.USub: "-", ast.Not: "!", ast.UAdd: "+"}.get(type(node.op))
            if op:
                return f"({op}{emit(node.operand)})"
        if (isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], (ast.Is, ast.IsNot))
                and isinstance(node.comparators[0], ast.Constant) and node.comparators[0].value is None):
            if not (isinstance(node.left, ast.Name) and node.left.id in optional):
                raise expr.error("'is None' / 'is not None' test an optional array (a Tensor? argument)")
            return f"{'!' if isinstance(node.ops[0], ast.Is) else ''}{node.left.id}.defined()"
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _CMP:
            return f"({emit(node.left)} {_CMP[type(node.ops[0])]} {emit(node.comparators[0])})"
        if isinstance(node, ast.BoolOp):
            return "(" + (" && " if isinstance(node.op, ast.And) else " || ").join(emit(v) for v in node.values) + ")"
        raise expr.error(f"{type(node).__name__} is not allowed in a check")

    cpp = emit(expr.tree)
    guards = [f"!{t}.defined()" for t in read_tensors if t in optional]
    if guards:
        cpp = f"({' || '.join(guards)} || {cpp})"
    shown = [f'", {t}: ", {t}.describe()' for t in read_tensors] + [f'", {a} = ", {a}' for a in read_attrs]
    return cpp, shown


def parse_checks(ctx, doc, tensors: set[str], attrs: dict[str, str], optional: set[str] = frozenset()) -> list[Check]:
    if "checks" not in doc:
        return []
    value, line = doc["checks"], doc.key_line("checks")
    if not isinstance(value, list) or not value:
        ctx.fail(line, "checks", "expected a list of {expr: ..., msg: ...}")
    checks = []
    for i, item in enumerate(value):
        field = f"checks[{i}]"
        item = ctx.mapping(item, line, field)
        ctx.check_keys(item, {"expr", "msg"}, field)
        for key in ("expr", "msg"):
            if key not in item or not isinstance(item[key], str):
                ctx.fail(item.line, f"{field}.{key}", "missing (a string)")
        e = parse(item["expr"], ctx.file, f"{field}.expr")
        cpp, shown = compile_check(e, tensors, attrs, optional)
        if '"' in item["msg"] or "\\" in item["msg"]:
            ctx.fail(item.key_line("msg"), f"{field}.msg", "quotes and backslashes are not allowed")
        checks.append(Check(e, str(item["msg"]), cpp, shown))
    return checks


__all__ = ["Check", "parse_checks", "SpecError"]
