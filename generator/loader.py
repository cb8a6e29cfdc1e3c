"""Finding and loading every operator spec under opdefs/."""
from __future__ import annotations

from pathlib import Path

from generator.errors import SpecError
from generator.load import load_documents
from generator.model import ATTR_TYPES, OpDef
from generator.spec import parse_op


def spec_files(root: Path) -> list[Path]:
    return sorted((root / "opdefs").rglob("*.yaml"))


def load_file(root: Path, path: Path) -> list[OpDef]:
    rel = path.resolve().relative_to(root.resolve()).as_posix()
    docs = load_documents(path.read_text(), rel)
    if not docs:
        raise SpecError(rel, 1, "op", "file holds no operator")
    return [parse_op(d, rel) for d in docs]


def load_all(root: Path) -> list[OpDef]:
    ops = [op for f in spec_files(root) for op in load_file(root, f)]
    check_unique(ops)
    check_absorbs(ops)
    return ops


def check_absorbs(ops: list[OpDef]) -> None:
    """Each op an `absorbs` table names exists and takes one array (the
    output it folds away is then its only input)."""
    by_name = {op.name: op for op in ops}
    for op in ops:
        for consumer, _, line in op.absorbs:
            target = by_name.get(consumer)
            if target is None:
                raise SpecError(op.file, line, f"absorbs.{consumer}", f"no operator named '{consumer}'")
            arrays = [a for a in target.args if a.type not in ATTR_TYPES]
            if len(arrays) != 1 or arrays[0].type != "Tensor" or any(a.type in ATTR_TYPES for a in target.args):
                raise SpecError(op.file, line, f"absorbs.{consumer}", f"'{consumer}' must take exactly one "
                                "array and no attributes to be folded into another op")


def check_unique(ops: list[OpDef]) -> None:
    owners: dict[str, OpDef] = {}
    for op in ops:
        for dunder in op.python_operators:
            if dunder in owners:
                first = owners[dunder]
                raise SpecError(op.file, op.line, "python.operators",
                                f"'{dunder}' is already implemented by '{first.name}' at {first.file}:{first.line}")
            owners[dunder] = op
    seen: dict[str, OpDef] = {}
    for op in ops:
        for key in {op.name, op.python_name}:
            if key in seen and seen[key] is not op:
                first = seen[key]
                raise SpecError(op.file, op.line, "op",
                                f"'{key}' is already defined at {first.file}:{first.line}")
            seen[key] = op
