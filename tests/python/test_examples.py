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


@pytest.mark.skipif(not os.path.exists(FASHION), reason="dataset-fashion-mnist is not installed")
def test_thirty_line_mlp_learns(monkeypatch, capsys):
    path = ROOT / "examples" / "mlp_gluon.py"
    assert len(path.read_text().splitlines()) <= 30
    monkeypatch.setattr(sys, "argv", [str(path), "1", "4096"])
    runpy.run_path(str(path), run_name="__main__")
    out = capsys.readouterr().out
    accuracy = float(out.split("test accuracy ")[1].split(",")[0])
    assert accuracy > 0.6  # one epoch on 4096 samples; chance is 0.1


def test_char_lstm_language_model_learns_the_text(capsys):
    lm_example = runpy.run_path(str(ROOT / "examples" / "char_lstm.py"), run_name="smoke")
    held_out = lm_example["main"](["--epochs", "2", "--steps", "25", "--hidden", "64"])
    out = capsys.readouterr().out
    assert "held-out perplexity" in out and "sample: 'Licensed under the " in out
    # 76 distinct characters: a model that learnt nothing scores about 76
    assert held_out < 35
