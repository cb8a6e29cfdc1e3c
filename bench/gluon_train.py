"""python -m bench.gluon_train [--quick]: the Gluon training stack against
torch.nn on the same networks, batches and data (the Gluon issue's table).

Rows, each measured for loom and torch in this one run:
- training throughput (samples/s) of the demo's LeNet (two conv + BatchNorm
  + pool stages, dense 128 with dropout, dense 10; momentum SGD) at batch
  128, loom hybridized and op by op;
- training throughput of a 784-256-10 MLP (Adam) at batch 128;
- inference latency of the LeNet at batch 1 (eval mode, result on the host);
- peak memory of LeNet training: each framework trains in a fresh process,
  and the row is the growth of its resident set from just before the first
  step to its peak (VmHWM); loom's own pool peak is shown beside it.

Batches are real Fashion-MNIST images (Debian's dataset-fashion-mnist) when
installed, normalised as in the demo, and already in memory: the rows time
the framework, not the loader. Ratios are loom / torch for times and memory
(below 1: loom is better) and torch / loom for samples/s (below 1: loom is
slower), so every ratio reads the same way: below 1 is a win for loom."""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

BATCH = 128
FASHION = "/usr/share/datasets/fashion-mnist"


def images(n: int) -> tuple[np.ndarray, np.ndarray]:
    """n Fashion-MNIST training images (N, 1, 28, 28) and labels, or random
    ones of that shape when the dataset is not installed."""
    path = os.path.join(FASHION, "train-images-idx3-ubyte.gz")
    if os.path.exists(path):
        import gzip
        with gzip.open(path) as f:
            x = np.frombuffer(f.read(), np.uint8, offset=16)[:n * 784].reshape(n, 1, 28, 28)
        with gzip.open(os.path.join(FASHION, "train-labels-idx1-ubyte.gz")) as f:
            y = np.frombuffer(f.read(), np.uint8, offset=8)[:n].astype(np.int64)
        return ((x.astype(np.float32) / 255.0 - 0.286) / 0.353), y
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, n)


# ------------------------------------------------------------------ models
def loom_lenet():
    from loom.gluon import nn
    net = nn.HybridSequential()
    net.add(nn.Conv2D(16, 5, padding=2, in_channels=1), nn.BatchNorm(in_channels=16), nn.Activation("relu"),
            nn.MaxPool2D(2), nn.Conv2D(32, 5, in_channels=16), nn.BatchNorm(in_channels=32), nn.Activation("relu"),
            nn.MaxPool2D(2), nn.Flatten(), nn.Dense(128, activation="relu", in_units=800), nn.Dropout(0.2),
            nn.Dense(10, in_units=128))
    return net


def torch_lenet(torch):
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(1, 16, 5, padding=2), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 5), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(800, 128), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, 10))


def loom_mlp():
    from loom.gluon import nn
    net = nn.HybridSequential()
    net.add(nn.Flatten(), nn.Dense(256, activation="relu", in_units=784), nn.Dense(10, in_units=256))
    return net


def torch_mlp(torch):
    nn = torch.nn
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))


# ------------------------------------------------------------------ training loops
def loom_trainer(model: str, hybridize: bool, batches, ctx=None):
    """(step function, net): one training step per call over `batches` in
    turn, on ctx (default the CPU)."""
    import loom as lm
    from loom import gluon
    net = loom_lenet() if model == "lenet" else loom_mlp()
    net.initialize(gluon.init.Xavier(), ctx=ctx)
    if hybridize:
        net.hybridize()
    optimizer, params = (("sgd", {"learning_rate": 0.05, "momentum": 0.9, "wd": 1e-4}) if model == "lenet"
                         else ("adam", {"learning_rate": 1e-3}))
    trainer = gluon.Trainer(net.collect_params(), optimizer, params)
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    data = [(lm.nd.array(x, ctx=ctx), lm.nd.array(y, dtype="int64", ctx=ctx)) for x, y in batches]
    state = {"i": 0}

    def step():
        x, y = data[state["i"] % len(data)]
        state["i"] += 1
        with lm.autograd.record():
            loss = loss_fn(net(x), y)
        loss.backward()
        trainer.step(x.shape[0])
        return loss
    return step, net


def torch_trainer(torch, model: str, batches, device: str = "cpu"):
    net = (torch_lenet(torch) if model == "lenet" else torch_mlp(torch)).to(device)
    opt = (torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4) if model == "lenet"
           else torch.optim.Adam(net.parameters(), lr=1e-3))
    data = [(torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)) for x, y in batches]
    state = {"i": 0}
    net.train()

    def step():
        x, y = data[state["i"] % len(data)]
        state["i"] += 1
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        return loss
    return step, net


def samples_per_s(step, finish, steps: int, repeats: int) -> float:
    """Best of `repeats` timings of `steps` steps, after 5 warm-up steps."""
    for _ in range(5):
        step()
    finish()
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        finish()
        best = max(best, steps * BATCH / (time.perf_counter() - start))
    return best


def latency_ms(call, runs: int) -> float:
    for _ in range(5):
        call()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e3


# ------------------------------------------------------------------ peak memory (child process)
def _status_bytes(field: str) -> int:
    """VmRSS (now) or VmHWM (peak) of this process. Not ru_maxrss: that
    survives execve, so a child started by a large parent reports the
    parent's size."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def _batches(count: int):
    x, y = images(BATCH * count)
    return [(x[i:i + BATCH], y[i:i + BATCH]) for i in range(0, len(x), BATCH)]


def _framework(name: str, model: str, batches):
    """(step, finish, net, torch module or None) for 'torch', 'hybridized' or 'op by op'."""
    if name == "torch":
        import torch
        torch.manual_seed(0)
        step, net = torch_trainer(torch, model, batches)
        return step, (lambda: None), net, torch
    import loom as lm
    step, net = loom_trainer(model, name == "hybridized", batches)
    return step, lm.nd.waitall, net, None


def child(task: str, name: str, model: str, quick: bool) -> dict:
    """One measurement of one framework, in this (fresh) process: the only
    threads here are that framework's, as when a user trains with it."""
    if task == "train":
        step, finish, _, _ = _framework(name, model, _batches(8))
        steps, repeats = (4, 1) if quick else (30, 3)
        return {"value": samples_per_s(step, finish, steps, repeats)}
    if task == "latency":  # batch 1, eval mode (running statistics, no dropout), the answer on the host
        batches = _batches(1)
        step, finish, net, torch = _framework(name, model, batches)
        step()
        one = batches[0][0][:1]
        runs = 10 if quick else 200
        if torch is not None:
            net.eval()
            t_one = torch.from_numpy(one)

            def infer():
                with torch.no_grad():
                    return net(t_one).numpy()
            return {"value": latency_ms(infer, runs)}
        import loom as lm
        l_one = lm.nd.array(one)
        return {"value": latency_ms(lambda: net(l_one).asnumpy(), runs)}
    # peak memory of training
    step, finish, _, _ = _framework(name, model, _batches(4))
    try:  # restart VmHWM here, so a peak from imports or setup does not count
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    before = _status_bytes("VmRSS")
    for _ in range(4 if quick else 20):
        step()
    finish()
    out = {"value": _status_bytes("VmHWM") - before}
    if name != "torch":
        import loom as lm
        out["pool_peak"] = lm._C.memory_stats(lm.cpu())["peak"]
    return out


def measure(task: str, name: str, model: str, quick: bool) -> dict:
    command = [sys.executable, "-m", "bench.gluon_train", "--child", task, name, model] + (["--quick"] if quick else [])
    result = subprocess.run(command, capture_output=True, text=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if result.returncode != 0:
        raise RuntimeError(f"gluon_train: {task} of {name} ({model}) failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def best_of(task: str, names, model: str, quick: bool, rounds: int, better=max) -> dict:
    """Each framework measured `rounds` times in fresh processes, the rounds
    interleaved so a slow spell of the machine hits all of them; the best."""
    results: dict = {n: [] for n in names}
    for _ in range(rounds):
        for n in names:
            results[n].append(measure(task, n, model, quick))
    return {n: better(rs, key=lambda r: r["value"]) for n, rs in results.items()}


# ------------------------------------------------------------------ the table
def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.gluon_train", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="few steps, for a smoke test")
    p.add_argument("--rounds", type=int, default=None,
                   help="fresh processes per framework, interleaved; the best counts (default 2, --quick 1)")
    p.add_argument("--child", nargs=3, metavar=("TASK", "FRAMEWORK", "MODEL"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child, args.quick)))
        return

    import torch
    rounds = args.rounds or (1 if args.quick else 2)
    print(f"loom vs torch {torch.__version__} ({torch.get_num_threads()} threads), {os.cpu_count()} CPUs; "
          f"data: {'Fashion-MNIST' if os.path.exists(FASHION) else 'random images'}; "
          f"each figure the best of {rounds} fresh processes")
    rows = []
    modes = ("torch", "hybridized", "op by op")
    for model, label in (("lenet", "demo LeNet"), ("mlp", "MLP 784-256-10")):
        rates = best_of("train", modes, model, args.quick, rounds)
        for mode in modes[1:]:
            loom_rate, torch_rate = rates[mode]["value"], rates["torch"]["value"]
            rows.append((f"{label} training, batch {BATCH}, {mode}", f"{loom_rate:,.0f} samples/s",
                         f"{torch_rate:,.0f} samples/s", torch_rate / loom_rate))
    ms = best_of("latency", ("torch", "hybridized"), "lenet", args.quick, rounds, better=min)
    rows.append(("demo LeNet inference, batch 1, hybridized", f"{ms['hybridized']['value']:.3f} ms",
                 f"{ms['torch']['value']:.3f} ms", ms["hybridized"]["value"] / ms["torch"]["value"]))
    mem = best_of("memory", ("torch", "hybridized"), "lenet", args.quick, 1, better=min)
    mb = 1 << 20
    l_mem, t_mem = mem["hybridized"], mem["torch"]
    rows.append((f"demo LeNet training peak memory, batch {BATCH} (VmHWM growth; loom pool peak "
                 f"{l_mem['pool_peak'] / mb:.1f} MB)", f"{l_mem['value'] / mb:.1f} MB",
                 f"{t_mem['value'] / mb:.1f} MB", l_mem["value"] / max(t_mem["value"], 1)))

    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    print(f"{'':<{widths[0]}}  {'loom':>{widths[1]}}  {'torch':>{widths[2]}}  ratio (< 1: loom wins)")
    for name, l_val, t_val, ratio in rows:
        print(f"{name:<{widths[0]}}  {l_val:>{widths[1]}}  {t_val:>{widths[2]}}  {ratio:.2f}")


if __name__ == "__main__":
    main()
