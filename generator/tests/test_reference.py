"""The generated reference: one Markdown page per op plus an index, and the
lm.nd type stubs, which must be valid Python naming every operator."""
import ast
from pathlib import Path

from generator import loader, reference

ROOT = Path(__file__).resolve().parents[2]


def test_stub_is_python_and_declares_every_op():
    ops = loader.load_all(ROOT)
    tree = ast.parse(reference.nd_stub(ops))
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert {op.python_name for op in ops} <= functions
    ndarray = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "NDArray")
    methods = {n.name for n in ndarray.body if isinstance(n, ast.FunctionDef)}
    assert {"__add__", "__matmul__", "exp", "sum", "backward", "attach_grad"} <= methods


def test_signature_shows_defaults_and_out():
    (gelu,) = [op for op in loader.load_all(ROOT) if op.name == "gelu"]
    assert reference.python_signature(gelu) == \
        "def gelu(x: NDArray, approximate: bool = False, *, out: NDArray | None = None) -> NDArray"


def test_index_links_every_page():
    ops = loader.load_all(ROOT)
    index = reference.index_page(ops)
    for op in ops:
        assert f"({op.name}.md)" in index
    page = reference.op_page(next(op for op in ops if op.name == "mul"))
    assert "`x`: `grad * y`" in page and "opdefs/elementwise/mul.yaml" in page
