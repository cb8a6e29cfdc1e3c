"""Timing and reporting shared by every benchmark module.

A benchmark module defines `cases(quick: bool) -> list[Case]`; each Case
holds two zero-argument callables doing the same work, one in loom and one
in PyTorch. bench/run.py times loom's to completion: it waits for every op
the call pushed to the engine (lm.nd.waitall()) before the clock stops."""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable


@dataclass
class Case:
    name: str
    loom: Callable[[], object]
    torch: Callable[[], object] | None
    elements: int = 0


@dataclass
class Timing:
    median_s: float
    min_s: float
    runs: int


def time_fn(fn: Callable[[], object], min_runs: int, min_seconds: float) -> Timing:
    """Median wall time of `fn` after one warm-up call: at least `min_runs`
    runs and at least `min_seconds` of total timing."""
    fn()
    samples: list[float] = []
    start = time.perf_counter()
    while len(samples) < min_runs or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
        if len(samples) >= 10_000:
            break
    return Timing(statistics.median(samples), min(samples), len(samples))


def format_table(rows: list[dict]) -> str:
    """Rows with a ratio range (several rounds) get a column for it."""
    ranged = any("ratio_min" in r for r in rows)
    header = ("benchmark", "loom", "torch", "loom/torch") + (("range",) if ranged else ())
    lines = [header]
    for r in rows:
        torch = f"{r['torch_ms']:.4f} ms" if r["torch_ms"] is not None else "-"
        ratio = f"{r['ratio']:.2f}x" if r["ratio"] is not None else "-"
        line = (r["name"], f"{r['loom_ms']:.4f} ms", torch, ratio)
        if ranged:
            line += (f"{r['ratio_min']:.2f}-{r['ratio_max']:.2f}" if "ratio_min" in r else "-",)
        lines.append(line)
    return format_columns(lines)


def format_columns(lines: list[tuple], left: tuple = (0,)) -> str:
    """`lines` (the header first) as aligned columns: those in `left`
    left-aligned, the others right-aligned, a rule under the header."""
    widths = [max(len(l[i]) for l in lines) for i in range(len(lines[0]))]
    out = []
    for i, l in enumerate(lines):
        out.append("  ".join(c.ljust(w) if j in left else c.rjust(w) for j, (c, w) in enumerate(zip(l, widths))))
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)
