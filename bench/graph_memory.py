"""python -m bench.graph_memory: planned vs unplanned memory of training
graphs (the loss and every parameter gradient, traced with
lm.cached_op.trace_gradient) for an MLP, LeNet and ResNet-18.

"unplanned" gives every value an operator makes its own buffer; "planned"
lets values whose lifetimes do not overlap share buffers and lets pointwise
ops write over an input that dies there (runtime/graph/plan_memory.h).
Parameters, inputs, running statistics and the graph's outputs (loss and
gradients) are the caller's and counted apart, as MXNet's executors bind them."""
from __future__ import annotations

import time

from bench import graph_models

MB = 1 << 20


def main() -> None:
    rows = []
    for model, kwargs in ((graph_models.mlp, {"batch": 64}), (graph_models.lenet, {"batch": 64}),
                          (graph_models.resnet18, {"batch": 32, "size": 224})):
        start = time.perf_counter()
        sym = graph_models.training_graph(model, **kwargs)
        plan = sym.memory_plan()
        took = time.perf_counter() - start
        label = f"{model.__name__} ({', '.join(f'{k} {v}' for k, v in kwargs.items())})"
        rows.append((label, plan, took))
    print(f"{'training graph':<32}{'values':>7}{'unplanned MB':>14}{'planned MB':>12}{'ratio':>7}{'peak live MB':>14}"
          f"{'in place':>10}{'shared':>8}{'params+data MB':>16}{'outputs MB':>12}")
    for label, p, took in rows:
        print(f"{label:<32}{p['values']:>7}{p['unplanned_bytes'] / MB:>14.1f}{p['planned_bytes'] / MB:>12.1f}"
              f"{p['planned_bytes'] / max(p['unplanned_bytes'], 1):>7.2f}{p['peak_live_bytes'] / MB:>14.1f}"
              f"{p['inplace']:>10}{p['shared']:>8}"
              f"{p['external_bytes'] / MB:>16.1f}{p['output_bytes'] / MB:>12.1f}")
    print("(values: arrays operators make; trace + plan took "
          + ", ".join(f"{t:.2f} s" for _, _, t in rows) + ")")


if __name__ == "__main__":
    main()
