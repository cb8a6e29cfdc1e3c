"""GPU 0, loom against PyTorch on the same device: pointwise bandwidth at 16M
elements (fresh output and out=), a 16M sum, softmax over (4096, 1024),
relu(a*b + a) op by op and as a fused graph (one NVRTC kernel),
SGEMM at 1024/2048/4096, an MLP training step, a Gluon LeNet training
step (hybridized; conv through cuDNN) against torch.nn, and an LSTM layer's
forward + backward (loom: cuBLAS per step; torch: cuDNN's fused RNN); and
bench_nn's layers (convolutions, pooling, norms, attention, a 2-layer LSTM)
on the GPU. Both sides synchronise before returning, so kernels are timed
to completion. Both compute float32 convolutions and matmuls in float32
(torch's TF32 default is turned off) unless LOOM_ALLOW_TF32=1 allows TF32
on both. Without a GPU (or a CUDA torch) the module has no cases."""
from __future__ import annotations

import os

import numpy as np

import loom as lm
from bench.bench_training import mlp_case
from bench.harness import Case

N = 16 * 1024 * 1024


def _synced(fn, sync):
    def run():
        fn()
        sync()
    return run


def cases(quick: bool) -> list[Case]:
    if lm.num_gpus() == 0:
        return []
    try:
        import torch
        if not torch.cuda.is_available():
            torch = None
    except ImportError:
        torch = None
    if torch:
        # Equal precision: torch lets cuDNN round float32 convolutions to
        # TF32 by default; loom computes them in float32 unless
        # LOOM_ALLOW_TF32=1 (runtime/kernels/cuda/conv_cudnn.cu).
        allow = os.environ.get("LOOM_ALLOW_TF32", "0") == "1"
        torch.backends.cudnn.allow_tf32 = allow
        torch.backends.cuda.matmul.allow_tf32 = allow
    g = lm.gpu(0)
    lsync = lm.nd.waitall
    tsync = torch.cuda.synchronize if torch else None
    rng = np.random.default_rng(0)
    x_np = rng.uniform(0.5, 2.0, N).astype(np.float32)
    y_np = rng.uniform(0.5, 2.0, N).astype(np.float32)
    lx, ly, lo = lm.nd.array(x_np, ctx=g), lm.nd.array(y_np, ctx=g), lm.nd.zeros((N,), ctx=g)
    tx = torch.from_numpy(x_np).cuda() if torch else None
    ty = torch.from_numpy(y_np).cuda() if torch else None
    to = torch.empty(N, device="cuda") if torch else None
    out = []

    def add(name, lfn, tfn, elements):
        out.append(Case(name, _synced(lfn, lsync), _synced(tfn, tsync) if torch else None, elements))

    for name in ("relu", "exp", "gelu", "add", "mul"):
        if quick and name not in ("relu", "add"):
            continue
        lf = getattr(lm.nd, name)
        la = (lx, ly) if name in ("add", "mul") else (lx,)
        tf = {"relu": lambda a, out=None: torch.clamp_min(a, 0, out=out),
              "gelu": lambda a, out=None: torch.nn.functional.gelu(a) if out is None else out.copy_(
                  torch.nn.functional.gelu(a))}.get(name, getattr(torch, name, None)) if torch else None
        ta = (tx, ty) if name in ("add", "mul") else (tx,)
        add(f"{name:<6} n=16M", lambda f=lf, a=la: f(*a), lambda f=tf, a=ta: f(*a), N)
        if name != "gelu":  # torch's gelu has no out=
            add(f"{name:<6} n=16M out=", lambda f=lf, a=la: f(*a, out=lo), lambda f=tf, a=ta: f(*a, out=to), N)
    add("sum    n=16M", lambda: lm.nd.sum(lx), lambda: torch.sum(tx), N)
    # Elementwise fusion: one NVRTC-compiled kernel for the graph's three nodes
    # (runtime/graph/fuse_pointwise_cuda.h) against the ops one by one.
    va, vb = lm.sym.var("a"), lm.sym.var("b")
    fused = lm.sym.relu(va * vb + va).bind(g, args={"a": lx, "b": ly})
    add("relu(a*b + a) n=16M, op by op", lambda: lm.nd.relu(lx * ly + lx), lambda: torch.relu(tx * ty + tx), N)
    add("relu(a*b + a) n=16M, fused graph", lambda: fused.forward(), lambda: torch.relu(tx * ty + tx), N)
    from bench.bench_graph import fusion_grad_cases  # the fused backward: a second NVRTC kernel
    out += [Case(c.name, _synced(c.loom, lsync), _synced(c.torch, tsync) if c.torch else None, c.elements)
            for c in fusion_grad_cases(N, torch, g)]
    s_np = rng.standard_normal((4096, 1024)).astype(np.float32)
    ls, ts = lm.nd.array(s_np, ctx=g), (torch.from_numpy(s_np).cuda() if torch else None)
    add("softmax (4096, 1024) dim -1", lambda: lm.nd.softmax(ls, dim=-1), lambda: torch.softmax(ts, -1), s_np.size)
    for n in ((1024,) if quick else (1024, 2048, 4096)):
        a_np = rng.standard_normal((n, n)).astype(np.float32)
        b_np = rng.standard_normal((n, n)).astype(np.float32)
        la_, lb_ = lm.nd.array(a_np, ctx=g), lm.nd.array(b_np, ctx=g)
        ta_ = torch.from_numpy(a_np).cuda() if torch else None
        tb_ = torch.from_numpy(b_np).cuda() if torch else None
        add(f"SGEMM {n}", lambda a=la_, b=lb_: lm.nd.matmul(a, b), lambda a=ta_, b=tb_: a @ b, 2 * n ** 3)
    step = mlp_case((784, 1024, 1024, 10), 256, torch, gpu=True)
    out.append(step)
    out.append(_lenet_case(torch, g, lsync, tsync))
    out.append(_lstm_case(torch, g, lsync, tsync))
    out += _nccl_cases(torch, lsync, tsync)
    if not quick:
        from bench import bench_nn
        out += [Case(c.name, _synced(c.loom, lsync), _synced(c.torch, tsync) if c.torch else None, c.elements)
                for c in bench_nn.gpu_cases(torch)]
    return out


def _nccl_cases(torch, lsync, tsync) -> list[Case]:
    """NCCL all-reduce of 64 MB per GPU over every GPU of this process:
    loom's nccl_all_reduce (one communicator per GPU, ncclGroup) against
    torch.cuda.nccl.all_reduce, the same single-process pattern. The
    element count is per GPU; bus bandwidth is 2 (n - 1) / n times the
    bytes over the time (NCCL's convention), so with one GPU the figure is
    a device copy, not a collective. Both write new arrays (loom's call
    returns them; torch is given `outputs`): torch summing in place over one
    GPU does nothing at all, which measured 0.005 ms against loom's copy."""
    if not lm._C.comm.nccl_available():
        return []
    n = lm.num_gpus()
    count = 16 * 1024 * 1024
    arrays = [lm.nd.ones((count,), ctx=lm.gpu(d)) for d in range(n)]
    tensors = [torch.ones(count, device=f"cuda:{d}") for d in range(n)] if torch else None
    sums = [torch.empty(count, device=f"cuda:{d}") for d in range(n)] if torch else None

    def loom_step():
        lm._C.comm.nccl_all_reduce(arrays)

    def torch_step():
        torch.cuda.nccl.all_reduce(tensors, outputs=sums)

    def sync_all():
        for d in range(n):
            torch.cuda.synchronize(d)

    # The comm lane (docs/comm.md): loom's all-reduce runs on a stream of its
    # own, so a GEMM that does not touch its arrays overlaps it. torch's
    # torch.cuda.nccl runs on the current stream, after the GEMM; DDP gets
    # the same overlap from its own NCCL stream.
    rng = np.random.default_rng(2)
    m_np = rng.standard_normal((4096, 4096)).astype(np.float32)
    lm_a = lm.nd.array(m_np, ctx=lm.gpu(0))
    tm_a = torch.from_numpy(m_np).cuda() if torch else None

    def loom_overlap():
        lm._C.comm.nccl_all_reduce(arrays)
        lm.nd.matmul(lm_a, lm_a)

    def torch_overlap():
        torch.cuda.nccl.all_reduce(tensors, outputs=sums)
        tm_a @ tm_a

    where = f"over {n} GPU{'s' if n > 1 else ''}"
    return [Case(f"NCCL all-reduce 64 MB {where}", _synced(loom_step, lsync),
                 _synced(torch_step, sync_all) if torch else None, 4 * count),
            Case(f"NCCL all-reduce 64 MB {where} + SGEMM 4096 beside it", _synced(loom_overlap, lsync),
                 _synced(torch_overlap, sync_all) if torch else None)]


def _lstm_case(torch, g, lsync, tsync, steps=50, batch=64, hidden=256) -> Case:
    """One LSTM layer, forward and backward, (T, N, H) = (50, 64, 256)."""
    rng = np.random.default_rng(1)
    x_np = rng.standard_normal((steps, batch, hidden)).astype(np.float32)
    w = [(rng.standard_normal(s) * 0.05).astype(np.float32) for s in
         ((4 * hidden, hidden), (4 * hidden, hidden), (4 * hidden,), (4 * hidden,))]
    lx = lm.nd.array(x_np, ctx=g)
    lw = [lm.nd.array(a, ctx=g) for a in w]
    for a in [lx] + lw:
        a.attach_grad()

    def loom_step():
        with lm.autograd.record():
            y, _ = lm.nd.lstm(lx, [tuple(lw)])
            loss = y.sum()
        loss.backward()

    torch_step = None
    if torch:
        net = torch.nn.LSTM(hidden, hidden).cuda()
        tx = torch.from_numpy(x_np).cuda().requires_grad_()

        def torch_step():
            y, _ = net(tx)
            y.sum().backward()
    return Case(f"LSTM layer fwd+bwd (T, N, H) = ({steps}, {batch}, {hidden})", _synced(loom_step, lsync),
                _synced(torch_step, tsync) if torch else None, steps * batch)


def _lenet_case(torch, g, lsync, tsync) -> Case:
    """One training step of bench.gluon_train's LeNet at batch 128 on the
    GPU: loom hybridized against torch.nn, the same batches."""
    from bench import gluon_train as gt
    batches = gt._batches(4)
    lstep, _ = gt.loom_trainer("lenet", True, batches, ctx=g)
    tstep = gt.torch_trainer(torch, "lenet", batches, device="cuda")[0] if torch else None
    return Case(f"LeNet train step, batch {gt.BATCH}, Gluon hybridized", _synced(lstep, lsync),
                _synced(tstep, tsync) if torch else None, gt.BATCH)
