"""python tools/cudnn_precision.py (needs a GPU): how far cuDNN's chosen
algorithms land from the exact result, for LeNet's two convolutions.

Each direction (forward, data gradient, weight gradient) runs on the GPU in
float32 and on the CPU in float64; the figure is the largest error over the
largest reference value. Run it as it is and with LOOM_CUDNN_DETERMINISTIC=1,
with LOOM_CUDNN_LOG=1 to see which algorithm each direction took. On an H200
(2026-11-28) the default choices stayed within 3.4e-7, and the
deterministic-only data gradient of the 5x5 convolution erred by 2.3e-3."""
import os

import numpy as np

import loom as lm

LENET = [((16, 1, 28, 28), (8, 1, 5, 5), 2), ((16, 8, 14, 14), (16, 8, 3, 3), 0)]


def directions(ctx, dtype, x, w, pad, head_seed=1):
    """The convolution's output and its data and weight gradients, for a
    head gradient of zero mean per channel (as BatchNorm's backward gives)."""
    a, b = lm.nd.array(x.astype(dtype), ctx=ctx), lm.nd.array(w.astype(dtype), ctx=ctx)
    a.attach_grad()
    b.attach_grad()
    with lm.autograd.record():
        y = lm.nd.convolution(a, b, None, padding=[pad])
    head = np.random.default_rng(head_seed).standard_normal(y.shape)
    head -= head.mean(axis=(0, 2, 3), keepdims=True)
    y.backward(lm.nd.array(head.astype(dtype), ctx=ctx))
    return [y.asnumpy(), a.grad.asnumpy(), b.grad.asnumpy()]


def main() -> None:
    if lm.num_gpus() == 0:
        raise SystemExit("tools/cudnn_precision.py: no GPU")
    rng = np.random.default_rng(0)
    print("LOOM_CUDNN_DETERMINISTIC =", os.environ.get("LOOM_CUDNN_DETERMINISTIC", "0"))
    for x_shape, w_shape, pad in LENET:
        x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape) * 0.1
        exact = directions(lm.cpu(), "float64", x, w, pad)
        got = directions(lm.gpu(0), "float32", x, w, pad)
        errors = [float(np.abs(g - e).max() / np.abs(e).max()) for g, e in zip(got, exact)]
        print(f"x {x_shape} w {w_shape} pad {pad}: forward {errors[0]:.2e}  data gradient {errors[1]:.2e}  "
              f"weight gradient {errors[2]:.2e}", flush=True)


if __name__ == "__main__":
    main()
