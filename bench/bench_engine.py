"""The engine and the host allocator, timed in C++ by build/bench/engine_bench:
push + run of trivial ops (one and two pushing threads), a chain of dependent
ops, independent ops, two 1 ms chains on 2 cores, and alloc/free pairs.

Reference: MXNet 1.9.1's engine through its C API, when the side virtualenv
.venv-mxnet (tools/bootstrap.sh) provides libmxnet.so, run with as many CPU
workers as loom (MXNET_CPU_WORKER_NTHREADS) and once with its NaiveEngine;
malloc/free for the allocator. PyTorch has no dependency engine to compare."""
from __future__ import annotations

import glob
import json
import os
import subprocess
from pathlib import Path

from bench.harness import format_columns

ROOT = Path(__file__).resolve().parents[1]


def _binary() -> Path:
    return Path(os.environ.get("LOOM_BUILD_DIR", ROOT / "build")) / "bench" / "engine_bench"


def mxnet_library() -> str | None:
    found = sorted(glob.glob(str(ROOT / ".venv-mxnet/lib/python3*/site-packages/mxnet/libmxnet.so")))
    return found[0] if found else None


def _run(args: list[str], env: dict | None = None) -> list[dict]:
    out = subprocess.run([str(_binary()), *args], capture_output=True, text=True, timeout=900,
                         env={**os.environ, **(env or {})})
    if out.returncode != 0:
        raise RuntimeError(f"engine_bench {' '.join(args)} failed:\n{out.stderr}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def run(quick: bool) -> tuple[str, list[dict]]:
    """Returns the reference's description and rows of
    {name, loom_ns, ref, ref_ns, ratio} (ratio = loom / reference)."""
    q = ["--quick"] if quick else []
    loom = _run(q + ["--only=loom"])
    alloc = _run(q + ["--only=alloc"])
    workers = str(os.cpu_count() or 1)
    refs: dict[str, list[dict]] = {}
    lib = mxnet_library()
    if lib:
        refs["mxnet threaded"] = _run(q + ["--only=mxnet", f"--mxnet={lib}"],
                                      {"MXNET_CPU_WORKER_NTHREADS": workers})
        refs["mxnet naive"] = _run(q + ["--only=mxnet", f"--mxnet={lib}"],
                                   {"MXNET_ENGINE_TYPE": "NaiveEngine"})

    def pick(records: list[dict], impl: str, case: str) -> float | None:
        for r in records:
            if r["impl"].startswith(impl) and r["case"] == case:
                return r["ns_per_op"]
        return None

    rows = []
    for kind, ref_name in (("loom threaded", "mxnet threaded"), ("loom naive", "mxnet naive")):
        for r in (x for x in loom if x["impl"] == kind):
            ref_ns = pick(refs.get(ref_name, []), "mxnet", r["case"])
            rows.append({"name": f"{kind}: {r['case']}", "loom_ns": r["ns_per_op"],
                         "ref": ref_name if ref_ns else "-", "ref_ns": ref_ns,
                         "ratio": r["ns_per_op"] / ref_ns if ref_ns else None})
    for kind in ("loom threaded",) + (("mxnet threaded",) if lib else ()):
        records = loom if kind.startswith("loom") else refs["mxnet threaded"]
        one, two = pick(records, kind.split()[0], "1 ms ops: one chain"), pick(records, kind.split()[0], "1 ms ops: two chains")
        if one and two:
            rows.append({"name": f"{kind}: two 1 ms chains / one chain (1.0 = full overlap)",
                         "loom_ns": None, "ref": "-", "ref_ns": None, "ratio": two / one})
    for r in (x for x in alloc if x["impl"] == "loom storage"):
        ref_ns = pick(alloc, "malloc", r["case"])
        rows.append({"name": f"host allocator: {r['case']}", "loom_ns": r["ns_per_op"], "ref": "malloc",
                     "ref_ns": ref_ns, "ratio": r["ns_per_op"] / ref_ns if ref_ns else None})
    ref_note = (f"MXNet 1.9.1 engine via its C API ({lib}), {workers} CPU workers"
                if lib else "MXNet not installed (.venv-mxnet missing): no engine reference")
    return ref_note, rows


def format_rows(rows: list[dict]) -> str:
    lines = [("benchmark", "loom ns/op", "reference", "ref ns/op", "ratio")]
    for r in rows:
        lines.append((r["name"], f"{r['loom_ns']:.0f}" if r["loom_ns"] else "-", r["ref"],
                      f"{r['ref_ns']:.0f}" if r["ref_ns"] else "-",
                      f"{r['ratio']:.2f}x" if r["ratio"] is not None else "-"))
    return format_columns(lines, left=(0, 2))
