"""Smoke tests of the examples with tiny settings: they run end to end and
produce what they promise (the full runs are the demo, `ninja -C build demo`)."""
import os
import runpy
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FASHION = "/usr/share/datasets/fashion-mnist"


@pytest.mark.skipif(not os.path.exists(FASHION), reason="dataset-fashion-mnist is not installed")
def test_fashion_mnist_demo_runs_and_saves(tmp_path, monkeypatch, capsys):
    pytest.importorskip("tqdm")
    pytest.importorskip("matplotlib")
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        demo = runpy.run_path(str(ROOT / "examples" / "fashion_mnist.py"), run_name="smoke")
    finally:
        sys.path.pop(0)
    acc = demo["main"](["--epochs", "1", "--limit", "2048", "--batch", "64", "--out", str(tmp_path / "run")])
    out = capsys.readouterr().out
    assert "epoch 1: loss" in out and "samples/s" in out
    assert acc > 0.5  # 2048 samples, one epoch: far above chance (0.1)
    assert (tmp_path / "run.params").stat().st_size > 0
    assert (tmp_path / "run.png").read_bytes()[:4] == b"\x89PNG"
