"""Graph execution against imperative code. Elementwise fusion: a chain of
pointwise ops as one tiled kernel. And a training step whose forward
(and loss) is traced once into a graph and replayed from C++ (lm.cached_op,
the core of hybridize) next to the same step run op by op from Python, both
against PyTorch eager. The replay calls the same ops, so the difference is
the Python dispatch it removes."""
from __future__ import annotations

import numpy as np

import loom as lm
from bench.bench_training import LR, mlp_case
from bench.harness import Case
from loom.cached_op import CachedOp


def hybrid_mlp_case(sizes: tuple, batch: int, torch) -> Case:
    imperative = mlp_case(sizes, batch, torch)
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    onehot = np.eye(sizes[-1], dtype=np.float32)[rng.integers(0, sizes[-1], batch)]
    params = {}
    for k, (i, o) in enumerate(zip(sizes[:-1], sizes[1:])):
        params[f"w{k}"] = lm.nd.array((rng.standard_normal((i, o)) * np.sqrt(2 / i)).astype(np.float32))
        params[f"b{k}"] = lm.nd.zeros((o,))
    for p in params.values():
        p.attach_grad()
    x, o = lm.nd.array(x_np), lm.nd.array(onehot)
    layers = len(sizes) - 1

    def forward(x, o):
        h = x
        for k in range(layers - 1):
            h = lm.nd.relu(h @ params[f"w{k}"] + params[f"b{k}"])
        h = h @ params[f"w{layers - 1}"] + params[f"b{layers - 1}"]
        return -(lm.nd.log_softmax(h) * o).sum() / batch

    op = CachedOp(forward, "mlp")

    def loom_step():
        with lm.autograd.record():
            loss = op([x, o], params)
        loss.backward()
        for p in params.values():
            p -= p.grad * LR
        return loss.asnumpy()

    name = imperative.name.replace("SGD step", "SGD step, forward traced (cached op)")
    return Case(name, loom_step, imperative.torch, batch)


def fusion_cases(n: int, torch, dtype: str = "float32") -> list[Case]:
    """relu(a*b + a) over n elements: op by op, and as a graph whose three
    pointwise nodes run as one tiled kernel (fuse_pointwise.h). In float16
    the fused tiles compute in float and round once."""
    rng = np.random.default_rng(0)
    a_np, b_np = (rng.standard_normal(n).astype(dtype) for _ in range(2))
    a, b = lm.nd.array(a_np), lm.nd.array(b_np)
    x, y = lm.sym.var("a", dtype=dtype), lm.sym.var("b", dtype=dtype)
    ex = lm.sym.relu(x * y + x).bind(lm.cpu(), args={"a": a, "b": b})
    torch_fn = None
    if torch:
        ta, tb = torch.from_numpy(a_np), torch.from_numpy(b_np)
        torch_fn = lambda: torch.relu(ta * tb + ta)  # noqa: E731
    label = f"relu(a*b + a), {n // (1 << 20)}M {'floats' if dtype == 'float32' else dtype}"
    return [Case(f"{label}, op by op", lambda: lm.nd.relu(a * b + a), torch_fn, n),
            Case(f"{label}, fused graph", lambda: ex.forward(), torch_fn, n)]


def fusion_grad_cases(n: int, torch, ctx=None) -> list[Case]:
    """relu(a*b + a) forward and backward while autograd records, head
    gradient given: op by op (each op recorded, a dozen passes over memory
    in the backward), and replayed from a cached op, whose group records one
    node with a fused backward (fuse_pointwise_grad.h: reads a, b and the
    gradient, writes two). On GPU `ctx` (bench_gpu) that backward is one
    NVRTC kernel, against torch on CUDA."""
    ctx = ctx or lm.cpu()
    gpu = ctx != lm.cpu()
    rng = np.random.default_rng(0)
    a_np, b_np, g_np = (rng.standard_normal(n).astype(np.float32) for _ in range(3))
    a, b, g = (lm.nd.array(v, ctx=ctx) for v in (a_np, b_np, g_np))
    a.attach_grad()
    b.attach_grad()
    fn = lambda a, b: lm.nd.relu(a * b + a)  # noqa: E731
    op = CachedOp(fn, "fused grad")

    def step(run):
        def loom_step():
            with lm.autograd.record():
                y = run()
            y.backward(g)
            return a.grad, b.grad
        return loom_step

    torch_fn = None
    if torch:
        device = "cuda" if gpu else "cpu"
        ta, tb = (torch.from_numpy(v).to(device).requires_grad_() for v in (a_np, b_np))
        tg = torch.from_numpy(g_np).to(device)

        def torch_fn():
            ta.grad = tb.grad = None
            torch.relu(ta * tb + ta).backward(tg)
            return ta.grad
    label = f"relu(a*b + a) forward+backward, {n // (1 << 20)}M floats"
    return [Case(f"{label}, op by op", step(lambda: fn(a, b)), torch_fn, n),
            Case(f"{label}, fused graph", step(lambda: op([a, b])), torch_fn, n)]


def gluon_lenet_case(batch: int, hybridize: bool, torch) -> Case:
    """One SGD step of a Gluon LeNet (conv-relu-pool x2, three dense layers)
    on Fashion-MNIST-shaped input, hybridized or op by op, against the same
    network in torch.nn."""
    from loom import gluon
    from loom.gluon import nn
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((batch, 1, 28, 28)).astype(np.float32)
    y_np = rng.integers(0, 10, batch)
    net = nn.HybridSequential()
    net.add(nn.Conv2D(6, 5, padding=2, activation="relu"), nn.MaxPool2D(2), nn.Conv2D(16, 5, activation="relu"),
            nn.MaxPool2D(2), nn.Flatten(), nn.Dense(120, activation="relu"), nn.Dense(84, activation="relu"),
            nn.Dense(10))
    net.initialize(gluon.init.Xavier())
    x, y = lm.nd.array(x_np), lm.nd.array(y_np, dtype="int64")
    net(x)
    if hybridize:
        net.hybridize()
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.01, "momentum": 0.9})

    def loom_step():
        with lm.autograd.record():
            loss = loss_fn(net(x), y)
        loss.backward()
        trainer.step(batch)
        return loss

    torch_step = None
    if torch:
        tnet = torch.nn.Sequential(torch.nn.Conv2d(1, 6, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                                   torch.nn.Conv2d(6, 16, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                                   torch.nn.Flatten(), torch.nn.Linear(400, 120), torch.nn.ReLU(),
                                   torch.nn.Linear(120, 84), torch.nn.ReLU(), torch.nn.Linear(84, 10))
        opt = torch.optim.SGD(tnet.parameters(), lr=0.01, momentum=0.9)
        tx, ty = torch.from_numpy(x_np), torch.from_numpy(y_np)

        def torch_step():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(tnet(tx), ty)
            loss.backward()
            opt.step()
            return loss.item()
    mode = "hybridized" if hybridize else "op by op"
    return Case(f"Gluon LeNet SGD step, batch {batch}, {mode}", loom_step, torch_step, batch)


def cases(quick: bool) -> list[Case]:
    try:
        import torch
    except ImportError:
        torch = None
    return [*fusion_cases(1 << 24, torch), *fusion_cases(1 << 20, torch),
            *fusion_cases(1 << 24, torch, "float16"), *fusion_grad_cases(1 << 24, torch),
            gluon_lenet_case(64, False, torch), gluon_lenet_case(64, True, torch),
            mlp_case((784, 256, 10), 128, torch), hybrid_mlp_case((784, 256, 10), 128, torch),
            mlp_case((64, 64, 64, 10), 16, torch), hybrid_mlp_case((64, 64, 64, 10), 16, torch)]
