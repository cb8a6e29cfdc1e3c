"""A LeNet-style CNN on Fashion-MNIST with loom's Gluon API, hybridized: the
network's forward is traced into a graph once and replayed from C++ every
step. A progress bar per epoch shows loss, accuracy and samples/s; each
epoch prints the test accuracy; at the end the parameters and a PNG of the
loss/accuracy curves are saved.

    .venv/bin/python examples/fashion_mnist.py [--epochs 10] [--batch 128] [--gpu] [--workers N]

Data: Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist)."""
from __future__ import annotations

import argparse
import os
import time

import loom as lm
from loom import gluon
from loom.gluon import nn
from loom.gluon.data.vision import FashionMNIST, transforms


def lenet() -> nn.HybridSequential:
    """LeNet-5 with batch normalisation after each convolution."""
    net = nn.HybridSequential()
    net.add(nn.Conv2D(16, 5, padding=2), nn.BatchNorm(), nn.Activation("relu"), nn.MaxPool2D(2),
            nn.Conv2D(32, 5), nn.BatchNorm(), nn.Activation("relu"), nn.MaxPool2D(2), nn.Flatten(),
            nn.Dense(128, activation="relu"), nn.Dropout(0.2), nn.Dense(10))
    return net


def evaluate(net, loader, ctx) -> float:
    acc = gluon.metric.Accuracy()
    for x, y in loader:
        acc.update(y, net(x.as_in_context(ctx)))
    return acc.get()[1]


def main(argv=None) -> float:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--gpu", action="store_true", help="train on GPU 0")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    p.add_argument("--limit", type=int, default=0, help="use only this many training samples (smoke tests)")
    p.add_argument("--no-hybridize", action="store_true")
    p.add_argument("--out", default="fashion_mnist", help="prefix of the saved .params and .png")
    p.add_argument("--kvstore", default="device",
                   help="dist_sync or dist_async to train data-parallel under python -m loom.launch")
    args = p.parse_args(argv)
    from tqdm import tqdm

    ctx = lm.gpu(0) if args.gpu else lm.cpu()
    lm.random.seed(0)
    to_tensor = transforms.Compose([transforms.ToTensor(), transforms.Normalize(0.286, 0.353)])
    train_set = FashionMNIST(train=True).transform_first(to_tensor)
    if args.limit:
        train_set = gluon.data.SimpleDataset([train_set[i] for i in range(args.limit)])
    # Data-parallel (python -m loom.launch -n W ... -- python examples/fashion_mnist.py --kvstore dist_sync):
    # each worker trains on its own shard, and worker 0 reports and saves.
    distributed = args.kvstore.startswith("dist")
    rank = int(os.environ.get("LOOM_RANK", "0")) if distributed else 0
    parts = int(os.environ.get("LOOM_NUM_WORKER", "1")) if distributed else 1
    sampler = gluon.data.SplitSampler(len(train_set), parts, rank)
    train = gluon.data.DataLoader(train_set, batch_size=args.batch, sampler=sampler, num_workers=args.workers)
    test = gluon.data.DataLoader(FashionMNIST(train=False).transform_first(to_tensor), batch_size=1000)

    net = lenet()
    net.initialize(gluon.init.Xavier(), ctx=ctx)
    if not args.no_hybridize:
        net.hybridize()
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    schedule = gluon.lr_scheduler.CosineScheduler(args.epochs * len(train), base_lr=args.lr, final_lr=args.lr / 50)
    if net.collect_params()["0.weight"].shape[1] == 0:  # shapes are learnt on the first call: make one
        net(next(iter(test))[0][:1].as_in_context(ctx))
    trainer = gluon.Trainer(net.collect_params(), "sgd",
                            {"learning_rate": args.lr, "momentum": 0.9, "wd": 1e-4, "lr_scheduler": schedule},
                            kvstore=args.kvstore)
    quiet = rank != 0
    history, total_time, test_acc = [], 0.0, 0.0
    for epoch in range(args.epochs):
        start, total, seen, acc = time.perf_counter(), 0.0, 0, gluon.metric.Accuracy()
        bar = tqdm(train, desc=f"epoch {epoch + 1}/{args.epochs}", unit="batch", leave=False, disable=quiet)
        for x, y in bar:
            x, y = x.as_in_context(ctx), y.as_in_context(ctx)
            with lm.autograd.record():
                out = net(x)
                loss = loss_fn(out, y)
            loss.backward()
            trainer.step(x.shape[0])
            total += float(loss.sum().asnumpy())
            seen += x.shape[0]
            acc.update(y, out)
            bar.set_postfix(loss=f"{total / seen:.4f}", acc=f"{acc.get()[1]:.3f}",
                            samples_s=f"{seen / (time.perf_counter() - start):.0f}")
        elapsed = time.perf_counter() - start
        total_time += elapsed
        if quiet:
            continue
        test_acc = evaluate(net, test, ctx)
        history.append((total / seen, acc.get()[1], test_acc))
        print(f"epoch {epoch + 1}: loss {total / seen:.4f}, train accuracy {acc.get()[1]:.4f}, "
              f"test accuracy {test_acc:.4f}, {elapsed:.1f} s ({seen / elapsed:.0f} samples/s)", flush=True)
    if quiet:
        return test_acc
    print(f"trained {args.epochs} epochs in {total_time:.1f} s; final test accuracy {test_acc:.4f}"
          + (f" ({parts} workers)" if parts > 1 else ""))
    net.save_parameters(f"{args.out}.params")
    _plot(history, f"{args.out}.png")
    print(f"saved {args.out}.params and {args.out}.png")
    return test_acc


def _plot(history, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    epochs = range(1, len(history) + 1)
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    left.plot(epochs, [h[0] for h in history], marker="o")
    left.set(xlabel="epoch", ylabel="training loss")
    right.plot(epochs, [h[1] for h in history], marker="o", label="train")
    right.plot(epochs, [h[2] for h in history], marker="o", label="test")
    right.set(xlabel="epoch", ylabel="accuracy")
    right.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    main()
