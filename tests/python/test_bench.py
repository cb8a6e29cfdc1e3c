"""Smoke test of the benchmark harness: `python -m bench --quick` runs
every module and reports a ratio per case (timings are not asserted)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.harness import format_table, time_fn

ROOT = Path(__file__).resolve().parents[2]


def test_time_fn_runs_at_least_min_runs():
    calls = []
    t = time_fn(lambda: calls.append(1), min_runs=5, min_seconds=0)
    assert t.runs >= 5 and len(calls) == t.runs + 1  # + the warm-up call
    assert 0 <= t.min_s <= t.median_s


def test_table_shows_missing_torch_as_dash():
    table = format_table([{"name": "x", "loom_ms": 1.0, "torch_ms": None, "ratio": None}])
    assert "1.0000 ms" in table and " -" in table


def test_rounds_give_median_times_and_the_median_per_round_ratio():
    from bench.run import combine_rounds
    # per-round ratios 0.5, 2.0, 1.0: the median is 1.0, which neither the
    # ratio of the median times (2/3) nor any single round's pairing gives
    rounds = [{"loom": {"c": {"ms": 1.0, "runs": 4, "elements": 7}}, "torch": {"c": {"ms": 2.0, "runs": 5, "elements": 7}}},
              {"loom": {"c": {"ms": 4.0, "runs": 4, "elements": 7}}, "torch": {"c": {"ms": 2.0, "runs": 5, "elements": 7}}},
              {"loom": {"c": {"ms": 2.0, "runs": 4, "elements": 7}}, "torch": {"c": {"ms": 2.0, "runs": 5, "elements": 7}}}]
    (row,) = combine_rounds(rounds)
    assert row["loom_ms"] == 2.0 and row["torch_ms"] == 2.0 and row["loom_runs"] == 12
    assert row["ratio"] == 1.0 and (row["ratio_min"], row["ratio_max"]) == (0.5, 2.0)
    table = format_table([row])
    assert "range" in table and "0.50-2.00" in table
    (alone,) = combine_rounds([{"loom": rounds[0]["loom"]}])  # torch not installed
    assert alone["ratio"] is None and "ratio_min" not in alone


def test_quick_run_prints_every_case_with_a_ratio(tmp_path):
    pytest.importorskip("torch")
    out = subprocess.run([sys.executable, "-m", "bench", "--quick"], cwd=ROOT, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "torch 2." in out.stdout
    for case in ("relu     n=1 ", "add      n=1 ", "relu     n=16M", "add      n=16M", "add      n=16M out=",
                 "sum   n=16M"):
        line = next(l for l in out.stdout.splitlines() if l.startswith(case))
        assert line.rstrip().endswith("x"), line
    saved = json.loads((ROOT / "bench" / "results" / "bench_pointwise.json").read_text())
    assert saved["quick"] and saved["environment"]["torch"].startswith("2.")
    assert all(r["ratio"] > 0 for r in saved["results"])


def test_case_filter_runs_only_matching_cases_and_saves_nothing(tmp_path):
    pytest.importorskip("torch")
    saved = ROOT / "bench" / "results" / "bench_reduce.json"
    before = saved.read_text() if saved.exists() else None
    out = subprocess.run([sys.executable, "-m", "bench", "--quick", "--only", "bench_reduce", "--case", "sum"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    rows = [l for l in out.stdout.splitlines() if l.rstrip().endswith("x")]
    assert rows and all("sum" in l for l in rows), out.stdout
    assert (saved.read_text() if saved.exists() else None) == before  # a partial table is not saved


def test_engine_bench_reports_loom_and_the_mxnet_reference():
    from bench import bench_engine
    if not bench_engine._binary().exists():
        pytest.skip("build/bench/engine_bench is not built")
    reference, rows = bench_engine.run(quick=True)
    names = {r["name"] for r in rows}
    assert "loom threaded: empty op, 1 pusher" in names
    assert "loom threaded: chain of dependent ops" in names
    assert any(r["name"].startswith("host allocator") and r["ratio"] > 0 for r in rows)
    overlap = next(r for r in rows if r["name"].startswith("loom threaded: two 1 ms chains"))
    assert 0.5 < overlap["ratio"] < 2.5  # a ratio of two real timings, not a constant
    if bench_engine.mxnet_library():
        assert "MXNet 1.9.1" in reference
        assert all(r["ratio"] > 0 for r in rows if r["ref"].startswith("mxnet"))
    print(bench_engine.format_rows(rows))


def test_gluon_train_children_measure_loom():
    """The per-process measurements behind `python -m bench.gluon_train`,
    on loom and a tiny setting: each returns a positive figure."""
    from bench import gluon_train
    assert gluon_train.child("train", "op by op", "mlp", quick=True)["value"] > 0
    assert gluon_train.child("latency", "hybridized", "mlp", quick=True)["value"] > 0
    memory = gluon_train.child("memory", "hybridized", "mlp", quick=True)
    assert memory["pool_peak"] > 0 and memory["value"] >= 0
