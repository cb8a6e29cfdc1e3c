"""python -m bench [--quick] [--only NAME] [--case TEXT]: run every benchmark module,
print loom time, torch time and their ratio (loom/torch: below 1 means
loom is faster), and write bench/results/<module>.json."""
from __future__ import annotations

import argparse
import importlib
import json
import time
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

from bench.harness import format_table, time_fn

MODULES = ["bench_eager", "bench_pointwise", "bench_reduce", "bench_autograd", "bench_linalg", "bench_nn", "bench_training", "bench_graph", "bench_ops", "bench_creation", "bench_engine", "bench_comm", "bench_gpu"]
RESULTS = Path(__file__).resolve().parent / "results"


def settle(quick: bool, seconds: float = 0.3) -> None:
    """Idles before a framework's timing: the other framework's OpenMP
    threads spin for a while after their last parallel region, and on two
    cores they take CPU from whatever is timed next. Done before both, so
    neither starts on a busy machine. Not in --quick runs: they check that
    every case runs, and their times are not compared (the pause was about
    a third of the CI smoke run's two minutes)."""
    if not quick:
        time.sleep(seconds)


def _time_in_this_process(module, args, env, min_runs: int, min_seconds: float) -> list[dict]:
    """Both frameworks in this process, case by case (--same-process)."""
    rows = []
    for case in _selected(module.cases(quick=args.quick), args):
        settle(args.quick)
        loom_t = time_fn(_to_completion(case.loom), min_runs, min_seconds)
        settle(args.quick)
        torch_t = time_fn(case.torch, min_runs, min_seconds) if case.torch and env["torch"] else None
        rows.append({"name": case.name, "elements": case.elements,
                     "loom_ms": loom_t.median_s * 1e3, "loom_runs": loom_t.runs,
                     "torch_ms": torch_t.median_s * 1e3 if torch_t else None,
                     "ratio": loom_t.median_s / torch_t.median_s if torch_t else None})
        if args.progress:
            _print_progress(rows[-1])
    return rows


def _print_progress(r: dict) -> None:
    torch_ms = f"{r['torch_ms']:.4f} ms" if r.get("torch_ms") else "-"
    loom_ms = f"{r['loom_ms']:.4f} ms" if r.get("loom_ms") is not None else "-"
    print(f"  {r['name']}: loom {loom_ms}, torch {torch_ms}", flush=True)


def _time_in_children(name: str, args, env, min_seconds: float) -> list[dict]:
    """Each framework's cases timed in a fresh process of its own. In one
    process the two disturb each other: both run OpenMP teams on the same
    cores, and loom's 16M-element sum took 1.53 ms after torch had run in
    the process against 1.15 ms without it.

    With --rounds N the pair of processes runs N times, the order swapped
    every round (loom first, then torch first, ...), so a slow minute on
    this shared machine lands on both frameworks in turn. Each case's
    times are the medians over the rounds and its ratio is the median of
    the per-round ratios, with their range: one run of the same build moved
    single rows by 30-40% (layer_norm read 0.62x and 1.10x minutes apart)."""
    def child(framework: str) -> dict:
        argv = [sys.executable, "-m", "bench", "--child", framework, "--only", name,
                "--min-seconds", str(min_seconds)] + (["--quick"] if args.quick else []) + \
               (["--case", args.case] if args.case else [])
        done = subprocess.run(argv, capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
        if done.returncode != 0:
            raise RuntimeError(f"bench {name}: the {framework} process failed:\n{done.stderr[-3000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])
    frameworks = ["loom", "torch"] if env["torch"] else ["loom"]
    rounds: list[dict[str, dict]] = []
    for r in range(args.rounds):
        measured = {}
        for framework in (frameworks if r % 2 == 0 else frameworks[::-1]):
            measured[framework] = child(framework)
        rounds.append(measured)
    return combine_rounds(rounds, progress=args.progress)


def combine_rounds(rounds: list[dict[str, dict]], progress: bool = False) -> list[dict]:
    """[{framework: {case: {ms, runs, elements}}}] per round -> table rows:
    median times, the median per-round ratio and its range."""
    rows = []
    for case_name, first in rounds[0]["loom"].items():
        loom_ms = [r["loom"][case_name]["ms"] for r in rounds]
        torch_ms = [r["torch"][case_name]["ms"] for r in rounds if case_name in r.get("torch", {})]
        ratios = [l / t for l, t in zip(loom_ms, torch_ms)] if len(torch_ms) == len(loom_ms) else []
        row = {"name": case_name, "elements": first["elements"], "loom_ms": statistics.median(loom_ms),
               "loom_runs": sum(r["loom"][case_name]["runs"] for r in rounds),
               "torch_ms": statistics.median(torch_ms) if ratios else None,
               "ratio": statistics.median(ratios) if ratios else None, "rounds": len(rounds)}
        if len(ratios) > 1:
            row["ratio_min"], row["ratio_max"] = min(ratios), max(ratios)
        rows.append(row)
        if progress:
            _print_progress(rows[-1])
    return rows


def _child(args) -> int:
    """--child FRAMEWORK: time one module's cases for one framework and
    print {case: {ms, runs, elements}} as JSON. The loom process cannot
    import torch at all (the cases then build no torch tensors)."""
    if args.child == "loom":
        sys.modules["torch"] = None  # `import torch` raises ImportError
    else:
        # torch first, so that it loads the CUDA libraries it was built with
        # (its cuDNN refuses to run on an older one loaded before it).
        importlib.import_module("torch")
    module = importlib.import_module(f"bench.{args.only}")
    min_runs = 3 if args.quick else 20
    out = {}
    for case in _selected(module.cases(quick=args.quick), args):
        fn = _to_completion(case.loom) if args.child == "loom" else case.torch
        if fn is None:
            continue
        settle(args.quick)
        t = time_fn(fn, min_runs, args.min_seconds)
        out[case.name] = {"ms": t.median_s * 1e3, "runs": t.runs, "elements": case.elements}
    print(json.dumps(out))
    return 0


def _selected(cases, args) -> list:
    """The cases whose name contains --case (all without it)."""
    return [c for c in cases if not args.case or args.case in c.name]


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
    p.add_argument("--same-process", action="store_true",
                   help="time both frameworks in this process (by default each runs in a fresh process of its own)")
    p.add_argument("--rounds", type=int, default=None,
                   help="run the loom and torch processes this many times, alternating which goes first, and "
                        "report medians and the ratio's range (default 3, --quick 1)")
    p.add_argument("--case", default=None,
                   help="run only the cases whose name contains this (results are then not saved)")
    p.add_argument("--child", choices=["loom", "torch"], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return _child(args)
    env = environment()
    torch_note = f"torch {env['torch']} ({env.get('torch_threads')} threads)" if env["torch"] else "torch not installed"
    gpu_note = f"; GPU: {env['gpu']}" if env.get("gpu") else ""
    print(f"loom {env['loom_commit']} vs {torch_note}; {env['cpus']} CPUs; python {env['python']}{gpu_note}")
    min_runs, min_seconds = (3, 0.0) if args.quick else (20, 1.0)
    if args.min_seconds is not None:
        min_seconds = args.min_seconds
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    if args.rounds < 1:
        p.error(f"--rounds must be at least 1, got {args.rounds}")
    if args.case:
        args.no_save = True  # a partial table must not replace a module's saved results
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
        if args.same_process:
            rows = _time_in_this_process(module, args, env, min_runs, min_seconds)
        else:
            rows = _time_in_children(name, args, env, min_seconds)
        rounds_note = f"; medians of {args.rounds} alternating rounds" if args.rounds > 1 and not args.same_process else ""
        print(f"\n{name}  (median times{rounds_note}; loom/torch < 1 means loom is faster)")
        print(format_table(rows))
        if not args.no_save:
            RESULTS.mkdir(exist_ok=True)
            (RESULTS / f"{name}.json").write_text(json.dumps(
                {"benchmark": name, "quick": args.quick, "environment": env, "results": rows}, indent=1) + "\n")
    return 0
