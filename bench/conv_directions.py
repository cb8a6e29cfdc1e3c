"""Each direction of a convolution alone (forward, data gradient, weight
gradient), loom against torch, at bench_nn's layer shapes: the figures that
chose the CPU backend per shape (docs/nn-ops.md). Run it twice to compare
loom's backends:
    python -m bench.conv_directions
    LOOM_CONV_BACKEND=im2col python -m bench.conv_directions"""
from __future__ import annotations

import numpy as np

import loom as lm
from bench.bench_nn import CONVS
from bench.harness import time_fn


def _ms(fn) -> float:
    def call():
        fn()
        lm.nd.waitall()
    return time_fn(call, 20, 1.0).median_s * 1e3


def main() -> None:
    import torch
    print(f"ms, median of >= 1 s; torch {torch.__version__} ({torch.get_num_threads()} threads)")
    for label, (xs, ws, s, p, g) in CONVS.items():
        rng = np.random.default_rng(0)
        x, w = rng.standard_normal(xs).astype(np.float32), rng.standard_normal(ws).astype(np.float32)
        lx, lw = lm.nd.array(x), lm.nd.array(w)
        y = lm.nd.convolution(lx, lw, stride=s, padding=p, groups=g)
        dy = lm.nd.array(rng.standard_normal(y.shape).astype(np.float32))
        extra = [xs[2 + i] - ((y.shape[2 + i] - 1) * s - 2 * p + ws[2 + i]) for i in range(2)]
        loom = [_ms(lambda: lm.nd.convolution(lx, lw, stride=s, padding=p, groups=g)),
                _ms(lambda: lm.nd.deconvolution(dy, lw, stride=s, padding=p, output_padding=extra, groups=g)),
                _ms(lambda: lm.nd.convolution_weight_grad(lx, dy, kernel=list(ws[2:]), stride=s, padding=p,
                                                          groups=g))]
        tx, tw, tdy = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(dy.asnumpy())
        back = torch.ops.aten.convolution_backward
        ref = [_ms(lambda: torch.nn.functional.conv2d(tx, tw, stride=s, padding=p, groups=g)),
               _ms(lambda: back(tdy, tx, tw, None, [s, s], [p, p], [1, 1], False, [0, 0], g, [True, False, False])),
               _ms(lambda: back(tdy, tx, tw, None, [s, s], [p, p], [1, 1], False, [0, 0], g, [False, True, False]))]
        print(f"{label:38s} loom fwd/data/weight {' / '.join(f'{v:6.2f}' for v in loom)}   "
              f"torch {' / '.join(f'{v:6.2f}' for v in ref)}")


if __name__ == "__main__":
    main()
