"""python -m bench.graph_planned_run: the training graphs of bench.graph_memory
(loss and every parameter gradient, traced with trace_gradient) *run*, on
their memory plan and without it, each in a fresh process so that the
storage pool's peak is that run's own.

A graph program runs on its plan when autograd does not record it
(runtime/graph/graph_program.h): a traced gradient graph computes the
gradients itself, so a whole training step runs planned, as in MXNet's
executors. LOOM_GRAPH_PLAN=0 runs the same program with every op
allocating its outputs (freed after their last reader, as the pool
allows). Printed: the pool's peak (parameters and data included), the
plan's own figures and the step time (best of --repeat)."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

MB = 1 << 20

_CHILD = r"""
import json, sys, time
import loom as lm
from loom.cached_op import trace_gradient
from bench import graph_models
name, kwargs, repeat = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
fn, input_shapes, params, aux = getattr(graph_models, name)(**kwargs)
inputs = [lm.nd.zeros(s) for s in input_shapes] + [lm.nd.zeros((input_shapes[0][0],), dtype="int64")]
sym, constants = trace_gradient(fn, inputs, params, aux, what=name)
values = {f"data{k}": a for k, a in enumerate(inputs)}
values.update(params)
values.update(aux)
values.update(constants)
names = sym.list_arguments() + sym.list_auxiliary_states()
program = lm._C.graph.Program(sym._h, names)
arrays = [values[n] for n in names]
times = []
for _ in range(repeat):
    lm.nd.waitall()
    start = time.perf_counter()
    outs = program.run(arrays)
    lm.nd.waitall()
    times.append(time.perf_counter() - start)
stats = lm._C.memory_stats(lm.cpu())
print(json.dumps({"peak": stats["peak"], "step_s": min(times), "plan": dict(program.run_plan()),
                  "loss": float(outs[0].asnumpy())}))
"""

MODELS = (("mlp", {"batch": 64}), ("lenet", {"batch": 64}), ("resnet18", {"batch": 8, "size": 224}))


def run_one(name: str, kwargs: dict, planned: bool, repeat: int) -> dict:
    env = dict(os.environ, LOOM_GRAPH_PLAN="1" if planned else "0")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", _CHILD, name, json.dumps(kwargs), str(repeat)], env=env,
                         capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"{name} (planned={planned}) failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="ResNet-18 at batch 2, 64x64")
    args = parser.parse_args()
    models = MODELS if not args.quick else MODELS[:2] + (("resnet18", {"batch": 2, "size": 64}),)
    print(f"{'training graph, run':<30}{'pool peak MB':>13}{'unplanned':>11}{'ratio':>7}{'plan MB':>9}"
          f"{'ops alloc MB':>13}{'step ms':>9}{'unplanned':>11}")
    for name, kwargs in models:
        on = run_one(name, kwargs, True, args.repeat)
        off = run_one(name, kwargs, False, args.repeat)
        if on["loss"] != off["loss"]:
            raise RuntimeError(f"{name}: planned loss {on['loss']} != unplanned {off['loss']}")
        label = f"{name} ({', '.join(f'{k} {v}' for k, v in kwargs.items())})"
        p = on["plan"]
        print(f"{label:<30}{on['peak'] / MB:>13.1f}{off['peak'] / MB:>11.1f}{on['peak'] / off['peak']:>7.2f}"
              f"{p['planned_bytes'] / MB:>9.1f}{p['self_allocated_bytes'] / MB:>13.1f}"
              f"{on['step_s'] * 1e3:>9.1f}{off['step_s'] * 1e3:>11.1f}")
    print("(pool peak: parameters, data, outputs and every value the step makes; plan MB: the plan's buffers;"
          " ops alloc MB: outputs of ops with no call into given arrays (the runtime's _scalar, _astype), which allocate"
          " their own)")


if __name__ == "__main__":
    main()
