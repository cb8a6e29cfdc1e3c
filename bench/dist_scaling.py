"""python -m bench.dist_scaling [--quick]: data-parallel scaling of the
demo's LeNet (batch 128 per worker) with 1 and 2 workers under
python -m loom.launch (dist_sync, 1 server), and the part of each step
spent all-reducing the gradients through the server.

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


def run(workers: int, steps: int) -> dict:
    command = [sys.executable, "-m", "loom.launch", "-n", str(workers), "-s", "1", "--", sys.executable,
               str(ROOT / "bench" / "dist_scaling_worker.py"), str(steps), "dist_sync"]
    out = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=ROOT,
                         env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    if out.returncode != 0:
        raise RuntimeError(f"dist_scaling with {workers} workers failed:\n{out.stderr[-2000:]}")
    return json.loads([line for line in out.stdout.splitlines() if line.startswith("{")][-1])


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.dist_scaling", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    steps = 5 if args.quick else 40
    rows = [run(w, steps) for w in (1, 2)]
    print(f"{'workers':>8}{'samples/s (job)':>18}{'step ms':>10}{'allreduce ms':>15}{'allreduce share':>17}")
    for r in rows:
        print(f"{r['workers']:>8}{r['samples_per_s']:>18,.0f}{r['step_ms']:>10.1f}{r['allreduce_ms']:>15.2f}"
              f"{r['allreduce_ms'] / r['step_ms']:>17.1%}")


if __name__ == "__main__":
    main()
