"""Command line of the generator; configure.py and build.ninja call it.

  python -m generator --list                     what every spec file yields (JSON)
  python -m generator --file F --expect a,b      one spec file's ops -> generated/
  python -m generator --index a b c              the files that list all ops
  python -m generator --manifest                 generated/ops_manifest.json, generated/docs/ops/,
                                                 runtime/python/loom/nd.pyi
  python -m generator --all                      everything (development)

Every mode validates what it reads and exits 2 with `file:line: field:
message` on a spec error. Files are written only when their content changes.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from generator import emit, loader, reference
from generator.errors import SpecError
from generator.files import generator_sources, write_depfile, write_if_changed


def _write(out_dir: Path, files: dict[str, str]) -> list[Path]:
    paths = []
    for rel, content in files.items():
        write_if_changed(out_dir / rel, content)
        paths.append(out_dir / rel)
    return paths


def _remove_stale(out_dir: Path, names: set[str]) -> None:
    """Deletes per-op files of operators that no longer exist (renamed or
    removed specs), so no old test or header lingers in generated/."""
    index_files = {out_dir / p for p in emit.INDEX_OUTPUTS.values()}
    for pattern in emit.op_outputs("*").values():
        prefix, suffix = pattern.split("*")
        for path in out_dir.glob(pattern):
            if path in index_files:
                continue
            name = path.relative_to(out_dir).as_posix()[len(prefix):-len(suffix)]
            if name not in names:
                path.unlink()


def _write_reference(root: Path, out_dir: Path, ops) -> None:
    """generated/docs/ops/*.md and the lm.nd type stubs (runtime/python/loom/nd.pyi)."""
    pages = {f"docs/ops/{op.name}.md": reference.op_page(op) for op in ops}
    pages["docs/ops/README.md"] = reference.index_page(ops)
    _write(out_dir, pages)
    names = {f"{op.name}.md" for op in ops} | {"README.md"}
    for stale in (out_dir / "docs/ops").glob("*.md"):
        if stale.name not in names:
            stale.unlink()
    write_if_changed(root / "runtime/python/loom/nd.pyi", reference.nd_stub(ops))


def _list(root: Path) -> dict:
    files = {}
    ops = []
    for path in loader.spec_files(root):
        file_ops = loader.load_file(root, path)
        ops += file_ops
        rel = path.relative_to(root).as_posix()
        files[rel] = {"ops": [op.name for op in file_ops], "kinds": [op.kind for op in file_ops],
                      "outputs": [o for op in file_ops for o in emit.op_outputs(op.name, op.kind).values()]}
    loader.check_unique(ops)
    return {"files": files, "ops": [op.name for op in ops],
            "index_outputs": [p for t, p in emit.INDEX_OUTPUTS.items() if t is not None],
            "manifest_output": emit.INDEX_OUTPUTS[None]}


def run(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m generator", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    p.add_argument("--out", type=Path, help="output directory (default: <root>/generated)")
    p.add_argument("--depfile", type=Path, help="write a ninja depfile here")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--list", action="store_true")
    mode.add_argument("--file", type=Path)
    mode.add_argument("--index", nargs="*")
    mode.add_argument("--manifest", action="store_true")
    mode.add_argument("--all", action="store_true")
    p.add_argument("--expect", default=None, help="comma-separated op names --file must yield")
    args = p.parse_args(argv)
    root = args.root.resolve()
    out = (args.out or root / "generated").resolve()

    if args.list:
        json.dump(_list(root), sys.stdout, indent=1)
        return 0
    if args.file:
        path = (args.file if args.file.is_absolute() else Path.cwd() / args.file).resolve()
        ops = loader.load_file(root, path)
        names = [op.name for op in ops]
        if args.expect is not None and names != args.expect.split(","):
            rel = path.relative_to(root).as_posix()
            raise SpecError(rel, ops[0].line, "op", f"this file now defines {names}, but the build "
                            f"was configured for {args.expect.split(',')}: re-run configure.py")
        written = []
        for op in ops:
            written += _write(out, emit.render_op(op))
        deps = [path]
    elif args.index is not None:
        written = _write(out, emit.render_index(args.index, None))
        _remove_stale(out, set(args.index))
        deps = []
    elif args.manifest:
        ops = loader.load_all(root)
        written = _write(out, {emit.INDEX_OUTPUTS[None]: emit.render_index([], ops)[emit.INDEX_OUTPUTS[None]]})
        _write_reference(root, out, ops)
        deps = loader.spec_files(root)
    else:
        ops = loader.load_all(root)
        written = []
        for op in ops:
            written += _write(out, emit.render_op(op))
        written += _write(out, emit.render_index([op.name for op in ops], ops))
        _write_reference(root, out, ops)
        deps = loader.spec_files(root)
    if args.depfile:
        write_depfile(args.depfile, written[0], deps + generator_sources(root))
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        return run(sys.argv[1:] if argv is None else argv)
    except SpecError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
