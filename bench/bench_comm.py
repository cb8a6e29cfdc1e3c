"""The comm layer's bandwidth over TCP loopback, for 4 MB and 64 MB arrays.

- The transport, timed in C++ by build/bench/comm_bench: one endpoint
  sends to another (header + zero-copy body, checked on receipt).
- The dist_sync KVStore: a push + pull from Python through a real job of
  1 worker and 1 server (bench/kvstore_worker.py under loom.launch). The
  array crosses twice, so its row counts 2x its bytes.

Reference: raw ZeroMQ moving the same bytes in the same program (DEALER to
ROUTER, zero-copy send, no header), the ceiling loom's framing can reach.
The ratio is loom's time per message over the raw one (below 1: loom is
faster). Each figure is the best of two rounds, alternating raw and loom."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.harness import format_columns

ROOT = Path(__file__).resolve().parents[1]


def _binary() -> Path:
    return Path(os.environ.get("LOOM_BUILD_DIR", ROOT / "build")) / "bench" / "comm_bench"


def run(quick: bool) -> tuple[str, list[dict]]:
    binary = _binary()
    if not binary.exists():
        return "built without ZeroMQ (apt-get install libzmq3-dev): nothing to time", []
    out = subprocess.run([str(binary)] + (["--quick"] if quick else []), capture_output=True, text=True,
                         timeout=900)
    if out.returncode != 0:
        raise RuntimeError(f"comm_bench failed:\n{out.stderr}")
    records = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    best: dict = {}
    for r in records:
        key = (r["impl"], r["bytes"])
        if key not in best or r["s_per_message"] < best[key]["s_per_message"]:
            best[key] = r
    rows = []
    for size in sorted({r["bytes"] for r in records}):
        loom, raw = best[("loom comm", size)], best[("zeromq raw", size)]
        rows.append({"name": f"send + receive one {size >> 20} MB array, TCP loopback",
                     "loom_gbs": loom["bytes_per_s"] / 1e9, "ref_gbs": raw["bytes_per_s"] / 1e9,
                     "ratio": loom["s_per_message"] / raw["s_per_message"]})
    rows += kvstore_rows(quick, best)
    return "raw ZeroMQ (libzmq) in the same program, same transfer without loom's header", rows


def kvstore_rows(quick: bool, best: dict) -> list[dict]:
    command = [sys.executable, "-m", "loom.launch", "-n", "1", "-s", "1", "--", sys.executable,
               str(ROOT / "bench" / "kvstore_worker.py")] + (["--quick"] if quick else [])
    out = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(f"the KVStore bandwidth job failed:\n{out.stderr[-2000:]}")
    rows = []
    for line in out.stdout.splitlines():
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        raw = best[("zeromq raw", r["bytes"])]
        moved = 2 * r["bytes"] / r["s_per_pushpull"]
        rows.append({"name": f"dist_sync push + pull of a {r['bytes'] >> 20} MB array (1 worker, 1 server)",
                     "loom_gbs": moved / 1e9, "ref_gbs": raw["bytes_per_s"] / 1e9,
                     "ratio": r["s_per_pushpull"] / (2 * raw["s_per_message"])})
    return rows


def format_rows(rows: list[dict]) -> str:
    lines = [("benchmark", "loom GB/s", "raw ZeroMQ GB/s", "time ratio")]
    for r in rows:
        lines.append((r["name"], f"{r['loom_gbs']:.2f}", f"{r['ref_gbs']:.2f}", f"{r['ratio']:.2f}x"))
    return format_columns(lines)
