"""The comm layer's bandwidth over TCP loopback, for 4 MB and 64 MB arrays.

- The transport, timed in C++ by build/bench/comm_bench: one endpoint
  sends to another (header + zero-copy body, checked on receipt).
- The dist_sync KVStore: a push + pull from Python through a real job of
  1 worker and 1 server (bench/kvstore_worker.py under loom.launch). The
  array crosses twice, so its row counts 2x its bytes.

- The dist_sync_allreduce KVStore: pushpull between 2 workers under
  loom.launch -s 0, a ring over loom's group (bench/allreduce_worker.py).

References: for the transport and dist_sync, raw ZeroMQ moving the same
bytes in the same program (DEALER to ROUTER, zero-copy send, no header),
the ceiling loom's framing can reach; each figure is the best of two
rounds, alternating raw and loom. For dist_sync_allreduce, the same store
and script under mpirun, summing through Open MPI's MPI_Allreduce. The
ratio is loom's time over the reference's (below 1: loom is faster)."""
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
    rows += allreduce_rows(quick)
    return ("raw ZeroMQ (libzmq) in the same program, same transfer without loom's header; for "
            "dist_sync_allreduce, the same store over Open MPI's MPI_Allreduce"), rows


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


def _allreduce_job(command: list[str], quick: bool, env=None) -> dict:
    """{bytes: seconds per pushpull} from bench/allreduce_worker.py run by `command`."""
    worker = [sys.executable, str(ROOT / "bench" / "allreduce_worker.py")] + (["--quick"] if quick else [])
    out = subprocess.run(command + worker, capture_output=True, text=True, timeout=600, cwd=ROOT,
                         env=dict(os.environ, **(env or {})))
    if out.returncode != 0:
        raise RuntimeError(f"the all-reduce job ({command[0]}) failed:\n{out.stderr[-2000:]}")
    records = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    return {r["bytes"]: r["s_per_pushpull"] for r in records}


def allreduce_rows(quick: bool) -> list[dict]:
    """Two workers' all-reduce through the store: loom's ring against MPI
    (skipped without mpirun or a loom built with MPI). GB/s is the array's
    bytes over the time, the all-reduce's algorithm bandwidth."""
    import shutil
    from loom import _C
    ring = _allreduce_job([sys.executable, "-m", "loom.launch", "-n", "2", "-s", "0", "--"], quick)
    mpi = {}
    mpirun = shutil.which("mpirun")
    if mpirun and _C.comm.mpi_available():
        mpi = _allreduce_job([mpirun, "--oversubscribe", "-np", "2", "--mca", "btl", "self,tcp"], quick,
                             env={"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"})
    rows = []
    for size, seconds in sorted(ring.items()):
        ref = mpi.get(size)
        rows.append({"name": f"dist_sync_allreduce pushpull of a {size >> 20} MB array, 2 workers (ring vs MPI)",
                     "loom_gbs": size / seconds / 1e9, "ref_gbs": size / ref / 1e9 if ref else float("nan"),
                     "ratio": seconds / ref if ref else float("nan")})
    return rows


def format_rows(rows: list[dict]) -> str:
    lines = [("benchmark", "loom GB/s", "reference GB/s", "time ratio")]
    for r in rows:
        lines.append((r["name"], f"{r['loom_gbs']:.2f}", f"{r['ref_gbs']:.2f}", f"{r['ratio']:.2f}x"))
    return format_columns(lines)
