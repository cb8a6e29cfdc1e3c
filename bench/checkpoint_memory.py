"""python -m bench.checkpoint_memory [--quick]: gradient checkpointing
(lm.autograd.checkpoint, MXNet's "mirror") on ResNet-18, imperative
training steps with the stem and every residual block checkpointed or not: loom's pool
peak (the most bytes in use at once) and the step time, each variant in a
fresh process so the peaks do not mix. Batch 8 at 224x224 (--quick: 2 at
112x112)."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def child(checkpoint: bool, quick: bool) -> dict:
    import numpy as np

    import loom as lm
    from bench.graph_models import resnet18
    batch, size = (2, 112) if quick else (8, 224)
    fn, (shape,), params, aux = resnet18(batch, size, checkpoint=checkpoint)
    rng = np.random.default_rng(0)
    x = lm.nd.array(rng.standard_normal(shape).astype(np.float32))
    label = lm.nd.array(rng.integers(0, 1000, batch), dtype="int64")
    for v in params.values():
        v.attach_grad()
    arrays = list(params.values()) + list(aux.values())

    def step():
        with lm.autograd.record():
            loss = fn(x, label, *arrays)
        loss.backward()
        lm.nd.waitall()

    step()  # warm-up: the pool's peak is the steady state's from here on
    times = []
    for _ in range(2 if quick else 3):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return {"peak": lm._C.memory_stats(lm.cpu())["peak"], "step_s": min(times)}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.checkpoint_memory", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--child", choices=["plain", "checkpoint"], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child == "checkpoint", args.quick)))
        return
    results = {}
    for variant in ("plain", "checkpoint"):
        command = [sys.executable, "-m", "bench.checkpoint_memory", "--child", variant] + (["--quick"] if args.quick
                                                                                        else [])
        out = subprocess.run(command, capture_output=True, text=True, check=True,
                             cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        results[variant] = json.loads(out.stdout.strip().splitlines()[-1])
    plain, ckpt = results["plain"], results["checkpoint"]
    mb = 1 << 20
    shape = "batch 2, 112x112" if args.quick else "batch 8, 224x224"
    print(f"ResNet-18 training step, {shape}, the stem and every residual block checkpointed or not (loom pool peak):")
    print(f"  without checkpointing: {plain['peak'] / mb:8.1f} MB  {plain['step_s'] * 1e3:8.1f} ms/step")
    print(f"  with checkpointing:    {ckpt['peak'] / mb:8.1f} MB  {ckpt['step_s'] * 1e3:8.1f} ms/step")
    print(f"  memory {ckpt['peak'] / plain['peak']:.2f}x, time {ckpt['step_s'] / plain['step_s']:.2f}x")


if __name__ == "__main__":
    main()
