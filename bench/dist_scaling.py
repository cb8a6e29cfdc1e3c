"""python -m bench.dist_scaling [--quick]: data-parallel scaling of the
demo's LeNet (batch 128 per worker) with 1 and 2 workers under
python -m loom.launch, and the part of each step spent all-reducing the
gradients: through one server (dist_sync, -s 1), and among the workers
(dist_sync_allreduce, -s 0: a ring over the job's ZeroMQ group).

On a 2-core machine the workers and the server share the cores, so this
measures the communication overhead rather than a speed-up; on one worker
per machine it is the scaling figure."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(workers: int, steps: int, store: str) -> dict:
    servers = "0" if store == "dist_sync_allreduce" else "1"
    command = [sys.executable, "-m", "loom.launch", "-n", str(workers), "-s", servers, "--", sys.executable,
               str(ROOT / "bench" / "dist_scaling_worker.py"), str(steps), store]
    out = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=ROOT,
                         env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    if out.returncode != 0:
        raise RuntimeError(f"dist_scaling with {workers} workers of {store} failed:\n{out.stderr[-2000:]}")
    return json.loads([line for line in out.stdout.splitlines() if line.startswith("{")][-1])


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.dist_scaling", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    steps = 5 if args.quick else 40
    print(f"{'store':<21}{'workers':>8}{'samples/s (job)':>18}{'step ms':>10}{'allreduce ms':>15}"
          f"{'allreduce share':>17}")
    for store in ("dist_sync", "dist_sync_allreduce"):
        for w in (1, 2):
            r = run(w, steps, store)
            print(f"{store:<21}{r['workers']:>8}{r['samples_per_s']:>18,.0f}{r['step_ms']:>10.1f}"
                  f"{r['allreduce_ms']:>15.2f}{r['allreduce_ms'] / r['step_ms']:>17.1%}", flush=True)


if __name__ == "__main__":
    main()
