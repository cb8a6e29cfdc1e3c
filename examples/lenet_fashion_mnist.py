"""LeNet on Fashion-MNIST with loom's Gluon API, hybridized: the network's
forward is traced into a graph once and replayed from C++ every step.

    .venv/bin/python examples/lenet_fashion_mnist.py [--epochs N] [--workers N] [--no-hybridize]

Data: Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist)."""
from __future__ import annotations

import argparse
import time

import loom as lm
from loom import gluon
from loom.gluon import nn
from loom.gluon.data.vision import FashionMNIST, transforms


def lenet() -> nn.HybridSequential:
    net = nn.HybridSequential()
    net.add(nn.Conv2D(6, 5, padding=2, activation="relu"), nn.MaxPool2D(2),
            nn.Conv2D(16, 5, activation="relu"), nn.MaxPool2D(2), nn.Flatten(),
            nn.Dense(120, activation="relu"), nn.Dense(84, activation="relu"), nn.Dense(10))
    return net


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    p.add_argument("--no-hybridize", action="store_true")
    args = p.parse_args()

    lm.random.seed(0)
    to_tensor = transforms.Compose([transforms.ToTensor(), transforms.Normalize(0.286, 0.353)])
    train = gluon.data.DataLoader(FashionMNIST(train=True).transform_first(to_tensor), batch_size=args.batch,
                                  shuffle=True, num_workers=args.workers)
    test = gluon.data.DataLoader(FashionMNIST(train=False).transform_first(to_tensor), batch_size=512)

    net = lenet()
    net.initialize(gluon.init.Xavier())
    if not args.no_hybridize:
        net.hybridize()
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": args.lr, "momentum": 0.9})
    for epoch in range(args.epochs):
        start, total, seen, acc = time.perf_counter(), 0.0, 0, gluon.metric.Accuracy()
        for x, y in train:
            with lm.autograd.record():
                out = net(x)
                loss = loss_fn(out, y)
            loss.backward()
            trainer.step(x.shape[0])
            total += float(loss.sum().asnumpy())
            seen += x.shape[0]
            acc.update(y, out)
        train_time = time.perf_counter() - start
        test_acc = gluon.metric.Accuracy()
        for x, y in test:
            test_acc.update(y, net(x))
        print(f"epoch {epoch}: loss {total / seen:.4f}, train accuracy {acc.get()[1]:.3f}, "
              f"test accuracy {test_acc.get()[1]:.3f} ({train_time:.1f} s)")


if __name__ == "__main__":
    main()
