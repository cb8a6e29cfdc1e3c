"""python -m bench [--quick] [--only NAME]: run every benchmark module,
print loom time, torch time and their ratio (loom/torch: below 1 means
loom is faster), and write bench/results/<module>.json."""
from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from bench.harness import format_table, time_fn

MODULES = ["bench_eager", "bench_pointwise", "bench_reduce", "bench_autograd", "bench_linalg", "bench_nn", "bench_training", "bench_graph", "bench_ops", "bench_engine", "bench_comm", "bench_gpu"]
RESULTS = Path(__file__).resolve().parent / "results"


def _to_completion(fn):
    """loom's ops return before their kernels run (the engine runs them): a
    timed call ends only when every op it pushed has finished."""
    import loom as lm

    def call():
        result = fn()
        lm.nd.waitall()
        return result
    return call


def environment() -> dict:
    env = {"python": platform.python_version(), "machine": platform.machine(),
           "cpus": os.cpu_count(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "default")}
    try:
        import torch
        env["torch"] = torch.__version__
        env["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            env["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        env["torch"] = None
    try:
        env["loom_commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                            text=True, cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        env["loom_commit"] = "?"
    return env


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="few runs, for a CI smoke test")
    p.add_argument("--only", default=None, help="run only modules whose name contains this")
    p.add_argument("--no-save", action="store_true", help="do not write bench/results/*.json")
    p.add_argument("--min-seconds", type=float, default=None,
                   help="time each case for at least this long per framework (default 1, --quick 0)")
    p.add_argument("--progress", action="store_true",
                   help="print each case's times as soon as they are measured (long runs, logs cut short)")
    args = p.parse_args(argv)
    env = environment()
    torch_note = f"torch {env['torch']} ({env.get('torch_threads')} threads)" if env["torch"] else "torch not installed"
    gpu_note = f"; GPU: {env['gpu']}" if env.get("gpu") else ""
    print(f"loom {env['loom_commit']} vs {torch_note}; {env['cpus']} CPUs; python {env['python']}{gpu_note}")
    min_runs, min_seconds = (3, 0.0) if args.quick else (20, 1.0)
    if args.min_seconds is not None:
        min_seconds = args.min_seconds
    for name in MODULES:
        if args.only and args.only not in name:
            continue
        module = importlib.import_module(f"bench.{name}")
        if hasattr(module, "run"):  # a module that times itself (in C++)
            reference, rows = module.run(quick=args.quick)
            print(f"\n{name}  (ratio = loom / reference; below 1 means loom is faster)\n"
                  f"reference: {reference}")
            print(module.format_rows(rows))
            if not args.no_save:
                RESULTS.mkdir(exist_ok=True)
                (RESULTS / f"{name}.json").write_text(json.dumps(
                    {"benchmark": name, "quick": args.quick, "environment": env, "reference": reference,
                     "results": rows}, indent=1) + "\n")
            continue
        rows = []
        for case in module.cases(quick=args.quick):
            loom_t = time_fn(_to_completion(case.loom), min_runs, min_seconds)
            torch_t = time_fn(case.torch, min_runs, min_seconds) if case.torch and env["torch"] else None
            rows.append({"name": case.name, "elements": case.elements,
                         "loom_ms": loom_t.median_s * 1e3, "loom_runs": loom_t.runs,
                         "torch_ms": torch_t.median_s * 1e3 if torch_t else None,
                         "ratio": loom_t.median_s / torch_t.median_s if torch_t else None})
            if args.progress:
                r = rows[-1]
                torch_ms = f"{r['torch_ms']:.4f} ms" if r["torch_ms"] else "-"
                print(f"  {case.name}: loom {r['loom_ms']:.4f} ms, torch {torch_ms}", flush=True)
        print(f"\n{name}  (median times; loom/torch < 1 means loom is faster)")
        print(format_table(rows))
        if not args.no_save:
            RESULTS.mkdir(exist_ok=True)
            (RESULTS / f"{name}.json").write_text(json.dumps(
                {"benchmark": name, "quick": args.quick, "environment": env, "results": rows}, indent=1) + "\n")
    return 0
