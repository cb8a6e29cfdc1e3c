"""`kernel.update`: an in-place update of several same-shaped arrays, one
element at a time (fused optimizer steps such as sgd_mom_update or
adam_update).

    mutates: [weight, mom]
    kernel:
      update:
        - g: grad * rescale_grad + wd * weight      # a temporary
        - mom: momentum * mom - lr * g              # a mutated argument
        - weight: weight + mom

Statements run in order for each element; a name assigned earlier reads
its new value later. Every mutated argument is assigned, nothing else is:
the other names are temporaries. Each right-hand side is a pointwise body
(generator.expr), so one spec becomes a C++ functor for a CPU loop and a
CUDA kernel, and a NumPy evaluation for the generated tests."""
from __future__ import annotations

from dataclasses import dataclass

from generator import expr as ex
from generator.load import LocMap


@dataclass
class UpdateKernel:
    statements: list          # [(name, Expr)] in order
    temporaries: list[str]    # names that are not arguments


def parse_update_kernel(ctx, value, line: int, tensor_names: list[str], attr_names: list[str],
                        mutates: list[str], bool_attrs: set[str]) -> UpdateKernel:
    field = "kernel.update"
    if not isinstance(value, list) or not value:
        ctx.fail(line, field, "expected a list of single assignments, e.g. '- weight: weight - lr * grad'")
    statements, temporaries = [], []
    defined = set(tensor_names)
    for item in value:
        if not isinstance(item, LocMap) or len(item) != 1:
            ctx.fail(getattr(item, "line", line), field, "each statement is one 'name: expression' mapping")
        (name, text), = item.items()
        at = item.key_line(name)
        if not isinstance(name, str) or not name.isidentifier():
            ctx.fail(at, field, f"'{name}' is not a name")
        if name in attr_names:
            ctx.fail(at, f"{field}.{name}", "is an attribute; attributes cannot be assigned")
        if name in tensor_names and name not in mutates:
            ctx.fail(at, f"{field}.{name}", f"assigns the argument '{name}', which 'mutates' does not list")
        e = ex.parse(text, ctx.file, f"{field}.{name}")
        known = {n: "value" for n in defined} | {n: "attribute" for n in attr_names}
        ex.check_names(e, known, set(ex.SCALAR_FUNCTIONS))
        ex.to_cpp_scalar(e, defined, set(attr_names), bool_attrs=bool_attrs)  # surfaces errors now
        if name not in tensor_names and name not in temporaries:
            temporaries.append(name)
        defined.add(name)
        statements.append((name, e))
    assigned = {n for n, _ in statements}
    for m in mutates:
        if m not in assigned:
            ctx.fail(line, field, f"'{m}' is listed in mutates but never assigned")
    return UpdateKernel(statements, temporaries)


def parse_mutates(ctx, doc, tensor_names: list[str]) -> list[str]:
    value, line = doc.get("mutates"), doc.key_line("mutates")
    if not isinstance(value, list) or not value or any(v not in tensor_names for v in value):
        ctx.fail(line, "mutates", f"expected a list of Tensor arguments ({', '.join(tensor_names)})")
    if len(set(value)) != len(value):
        ctx.fail(line, "mutates", "lists an argument twice")
    return [str(v) for v in value]
