"""The comm transport's point-to-point bandwidth over TCP loopback, timed in
C++ by build/bench/comm_bench: 4 MB and 64 MB arrays from one endpoint to
another (header + zero-copy body, checked on receipt).

Reference: raw ZeroMQ moving the same bytes in the same program (DEALER to
ROUTER, zero-copy send, no header), the ceiling loom's framing can reach.
The ratio is loom's time per message over the raw one (below 1: loom is
faster). Each figure is the best of two rounds, alternating raw and loom."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

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
    return "raw ZeroMQ (libzmq) in the same program, same transfer without loom's header", rows


def format_rows(rows: list[dict]) -> str:
    lines = [("benchmark", "loom GB/s", "raw ZeroMQ GB/s", "time ratio")]
    for r in rows:
        lines.append((r["name"], f"{r['loom_gbs']:.2f}", f"{r['ref_gbs']:.2f}", f"{r['ratio']:.2f}x"))
    widths = [max(len(l[i]) for l in lines) for i in range(4)]
    out = []
    for i, l in enumerate(lines):
        out.append("  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(l, widths))))
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)
