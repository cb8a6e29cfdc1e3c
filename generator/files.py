"""Writing generated files: only when their content changed (so ninja's
restat sees untouched outputs as clean), plus the depfile ninja reads."""
from __future__ import annotations

import os
import sys
from pathlib import Path


def write_if_changed(path: Path, content: str) -> bool:
    """Writes `content` to `path` unless it already holds exactly that. True if written."""
    try:
        if path.read_text() == content:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(content)
    os.replace(tmp, path)  # readers never see half a file
    return True


def generator_sources(root: Path) -> list[Path]:
    """Every generator module and template this process uses: what a change
    to must regenerate the outputs."""
    gen = root / "generator"
    mods = {Path(m.__file__).resolve() for m in list(sys.modules.values())
            if getattr(m, "__file__", None) and Path(m.__file__).resolve().is_relative_to(gen)}
    templates = set((gen / "templates").glob("*.j2"))
    return sorted(mods | templates)


def write_depfile(path: Path, target: Path, deps: list[Path]) -> None:
    esc = lambda p: str(p).replace(" ", "\\ ")
    write_if_changed(path, f"{esc(target)}: " + " \\\n  ".join(esc(d) for d in deps) + "\n")
