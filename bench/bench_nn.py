"""Neural-network layers, loom against PyTorch on the same data: forward +
backward (gradients of the input, weight and bias) of convolutions at the
shapes of ResNet-18 (batch 32), LeNet-5 and a depthwise 3x3, and forward
alone for ResNet's main 3x3 layer; max and average pooling forward +
backward (ResNet's stem pool, LeNet's 2x2); batch_norm (training) and
layer_norm forward + backward; scaled dot-product attention (seq 512, 8
heads, dim 64) forward + backward, plain and causal; a 2-layer LSTM
(hidden 512, seq 35, batch 32) forward + backward. bench_gpu builds the
same cases on GPU 0 (`gpu=True`) against torch with cuDNN."""
from __future__ import annotations

import numpy as np

import loom as lm
from bench.harness import Case

# name: (x shape, weight shape, stride, padding, groups)
CONVS = {
    "resnet18 3x3 64->64 56x56 b32": ((32, 64, 56, 56), (64, 64, 3, 3), 1, 1, 1),
    "resnet18 3x3/2 64->128 56->28 b32": ((32, 64, 56, 56), (128, 64, 3, 3), 2, 1, 1),
    "resnet18 1x1/2 64->128 56->28 b32": ((32, 64, 56, 56), (128, 64, 1, 1), 2, 0, 1),
    "resnet18 3x3 256->256 14x14 b32": ((32, 256, 14, 14), (256, 256, 3, 3), 1, 1, 1),
    "lenet5 conv1 5x5 1->6 28x28 b64": ((64, 1, 28, 28), (6, 1, 5, 5), 1, 2, 1),
    "lenet5 conv2 5x5 6->16 14x14 b64": ((64, 6, 14, 14), (16, 6, 5, 5), 1, 0, 1),
    "depthwise 3x3 128ch 28x28 b32": ((32, 128, 28, 28), (128, 1, 3, 3), 1, 1, 128),
}
QUICK = {"lenet5 conv2 5x5 6->16 14x14 b64"}


class _Place:
    """Where a case's arrays live: the CPU, or GPU 0 for loom and torch."""

    def __init__(self, gpu: bool):
        self.gpu = gpu
        self.ctx = lm.gpu(0) if gpu else lm.cpu()
        self.suffix = " (GPU)" if gpu else ""

    def loom(self, a: np.ndarray):
        return lm.nd.array(a, ctx=self.ctx)

    def torch(self, torch, a: np.ndarray, grad: bool = True):
        t = torch.from_numpy(a.copy())
        return (t.cuda() if self.gpu else t).requires_grad_(grad)


CPU = _Place(False)


def _conv_case(label, xs, ws, stride, padding, groups, torch, backward=True, place=CPU):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(xs).astype(np.float32)
    w = (rng.standard_normal(ws) / np.sqrt(np.prod(ws[1:]))).astype(np.float32)
    b = rng.standard_normal(ws[0]).astype(np.float32)
    lx, lw, lb = place.loom(x), place.loom(w), place.loom(b)
    attrs = dict(stride=stride, padding=padding, groups=groups)
    if backward:
        for a in (lx, lw, lb):
            a.attach_grad()

    def loom_step():
        if not backward:
            return lm.nd.convolution(lx, lw, lb, **attrs)
        with lm.autograd.record():
            y = lm.nd.convolution(lx, lw, lb, **attrs).sum()
        y.backward()
        return lw.grad

    torch_step = None
    if torch:
        tx, tw, tb = (place.torch(torch, a, backward) for a in (x, w, b))

        def torch_step():
            if not backward:
                with torch.no_grad():
                    return torch.nn.functional.conv2d(tx, tw, tb, **attrs)
            for t in (tx, tw, tb):
                t.grad = None
            torch.nn.functional.conv2d(tx, tw, tb, **attrs).sum().backward()
            return tw.grad

    name = f"conv2d {label} {'fwd+bwd' if backward else 'fwd'}{place.suffix}"
    return Case(name, loom_step, torch_step)


# name: (x shape, op, kwargs for loom, torch function name, kwargs for torch)
POOLS = {
    "max_pool 3x3/2 pad 1 64ch 112x112 b32": ((32, 64, 112, 112), "max_pool", dict(kernel=3, stride=2, padding=1),
                                              "max_pool2d", dict(kernel_size=3, stride=2, padding=1)),
    "max_pool 2x2 6ch 28x28 b64 (LeNet)": ((64, 6, 28, 28), "max_pool", dict(kernel=2), "max_pool2d",
                                           dict(kernel_size=2)),
    "avg_pool 2x2 64ch 56x56 b32": ((32, 64, 56, 56), "avg_pool", dict(kernel=2), "avg_pool2d", dict(kernel_size=2)),
}


def _pool_case(label, xs, op, attrs, torch_name, torch_attrs, torch, place=CPU):
    x = np.random.default_rng(0).standard_normal(xs).astype(np.float32)
    lx = place.loom(x)
    lx.attach_grad()
    fn = getattr(lm.nd, op)

    def loom_step():
        with lm.autograd.record():
            y = fn(lx, **attrs).sum()
        y.backward()
        return lx.grad

    torch_step = None
    if torch:
        tx = place.torch(torch, x)
        tfn = getattr(torch.nn.functional, torch_name)

        def torch_step():
            tx.grad = None
            tfn(tx, **torch_attrs).sum().backward()
            return tx.grad
    return Case(f"{label} fwd+bwd{place.suffix}", loom_step, torch_step)


def _norm_case(label, xs, loom_fn, torch_fn, params_shape, torch, place=CPU):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(xs).astype(np.float32)
    w, b = rng.standard_normal(params_shape).astype(np.float32), rng.standard_normal(params_shape).astype(np.float32)
    lx, lw, lb = place.loom(x), place.loom(w), place.loom(b)
    for a in (lx, lw, lb):
        a.attach_grad()

    def loom_step():
        with lm.autograd.record():
            y = loom_fn(lx, lw, lb).sum()
        y.backward()
        return lx.grad

    torch_step = None
    if torch:
        tx, tw, tb = (place.torch(torch, a) for a in (x, w, b))

        def torch_step():
            for t in (tx, tw, tb):
                t.grad = None
            torch_fn(tx, tw, tb).sum().backward()
            return tx.grad
    return Case(f"{label} fwd+bwd{place.suffix}", loom_step, torch_step)


def _norms(torch, place=CPU):
    F = torch.nn.functional if torch else None
    rm, rv = lm.nd.zeros((64,), ctx=place.ctx), lm.nd.ones((64,), ctx=place.ctx)
    dev = "cuda" if place.gpu else "cpu"
    trm, trv = (torch.zeros(64, device=dev), torch.ones(64, device=dev)) if torch else (None, None)
    return [
        ("batch_norm train 64ch 56x56 b32", (32, 64, 56, 56), (64,),
         lambda x, w, b: lm.nd.batch_norm(x, w, b, rm, rv, training=True),
         lambda x, w, b: F.batch_norm(x, trm, trv, w, b, training=True)),
        ("layer_norm (4096, 1024)", (4096, 1024), (1024,),
         lambda x, w, b: lm.nd.layer_norm(x, w, b), lambda x, w, b: F.layer_norm(x, (1024,), w, b)),
    ]


def _attention_case(batch, heads, seq, dim, causal, torch, place=CPU, backward=True):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((batch, heads, seq, dim)).astype(np.float32) for _ in range(3)]
    lq, lk, lv = (place.loom(a) for a in arrays)
    for a in (lq, lk, lv):
        a.attach_grad()

    def loom_step():
        if not backward:
            return lm.nd.scaled_dot_product_attention(lq, lk, lv, causal=causal)
        with lm.autograd.record():
            y = lm.nd.scaled_dot_product_attention(lq, lk, lv, causal=causal).sum()
        y.backward()
        return lq.grad

    torch_step = None
    if torch:
        tq, tk, tv = (place.torch(torch, a) for a in arrays)

        def torch_step():
            if not backward:
                with torch.no_grad():
                    return torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=causal)
            for t in (tq, tk, tv):
                t.grad = None
            torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=causal).sum().backward()
            return tq.grad
    name = (f"attention b{batch} {heads}h seq {seq} d{dim}{' causal' if causal else ''} "
            f"{'fwd+bwd' if backward else 'fwd'}{place.suffix}")
    return Case(name, loom_step, torch_step)


def _lstm_case(steps, batch, hidden, layers, torch, place=CPU):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((steps, batch, hidden)).astype(np.float32)
    lx = place.loom(x)
    if torch:
        torch.manual_seed(0)
        net = torch.nn.LSTM(hidden, hidden, num_layers=layers)
        params = [[getattr(net, f"{w}_l{k}").detach().numpy() for w in ("weight_ih", "weight_hh", "bias_ih",
                                                                           "bias_hh")] for k in range(layers)]
    else:
        params = [[rng.standard_normal(s).astype(np.float32) * 0.05 for s in
                   ((4 * hidden, hidden), (4 * hidden, hidden), (4 * hidden,), (4 * hidden,))] for _ in range(layers)]
    lweights = [[place.loom(p) for p in group] for group in params]
    for p in [lx] + [p for g in lweights for p in g]:
        p.attach_grad()

    def loom_step():
        with lm.autograd.record():
            y, _ = lm.nd.lstm(lx, lweights, num_layers=layers)
            total = y.sum()
        total.backward()
        return lx.grad

    torch_step = None
    if torch:
        tx = place.torch(torch, x)
        if place.gpu:
            net = net.cuda()

        def torch_step():
            net.zero_grad()
            tx.grad = None
            net(tx)[0].sum().backward()
            return tx.grad
    return Case(f"lstm {layers} layers hidden {hidden} seq {steps} b{batch} fwd+bwd{place.suffix}", loom_step,
                torch_step)


def gpu_cases(torch) -> list[Case]:
    """Every case on GPU 0 (bench_gpu times them to completion on both sides)."""
    place = _Place(True)
    out = [_conv_case(label, *spec, torch, place=place) for label, spec in CONVS.items()]
    out += [_pool_case(label, *spec, torch, place=place) for label, spec in POOLS.items()]
    out += [_norm_case(label, xs, lf, tf, params, torch, place=place) for label, xs, params, lf, tf in _norms(torch, place)]
    out += [_attention_case(4, 8, 512, 64, causal, torch, place=place) for causal in (False, True)]
    # the forward alone, a long sequence and a wide head (the GPU's flash kernels)
    out.append(_attention_case(4, 8, 512, 64, False, torch, place=place, backward=False))
    out += [_attention_case(2, 8, 2048, 64, causal, torch, place=place) for causal in (False, True)]
    out.append(_attention_case(2, 4, 1024, 128, False, torch, place=place))
    out.append(_lstm_case(35, 32, 512, 2, torch, place=place))
    return out


def cases(quick: bool) -> list[Case]:
    try:
        import torch
    except ImportError:
        torch = None
    out = []
    for label, (xs, ws, stride, padding, groups) in CONVS.items():
        if quick and label not in QUICK:
            continue
        out.append(_conv_case(label, xs, ws, stride, padding, groups, torch))
        if label.startswith("resnet18 3x3 64->64"):
            out.append(_conv_case(label, xs, ws, stride, padding, groups, torch, backward=False))
    for label, (xs, op, attrs, torch_name, torch_attrs) in POOLS.items():
        if quick and "LeNet" not in label:
            continue
        out.append(_pool_case(label, xs, op, attrs, torch_name, torch_attrs, torch))
    if not quick:
        for label, xs, params, loom_fn, torch_fn in _norms(torch):
            out.append(_norm_case(label, xs, loom_fn, torch_fn, params, torch))
        out.append(_attention_case(4, 8, 512, 64, False, torch))
        out.append(_attention_case(4, 8, 512, 64, True, torch))
        out.append(_lstm_case(35, 32, 512, 2, torch))
    return out
