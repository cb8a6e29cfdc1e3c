"""A two-layer perceptron trained on Fashion-MNIST with loom's autograd:
every operator used here (matmul, add, relu, log_softmax, mean, ...) and its
gradient is generated from YAML under opdefs/. Plain SGD on NDArrays; the
Gluon stack (Dense, Trainer, DataLoader) wraps the same steps later.

    .venv/bin/python examples/mlp_fashion_mnist.py [--epochs N]

Data: Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist)."""
from __future__ import annotations

import argparse
import gzip
import time
from pathlib import Path

import numpy as np

import loom as lm

DATA = Path("/usr/share/datasets/fashion-mnist")


def load(kind: str) -> tuple[np.ndarray, np.ndarray]:
    with gzip.open(DATA / f"{kind}-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28 * 28)
    with gzip.open(DATA / f"{kind}-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    return (images.astype(np.float32) / 255.0 - 0.286) / 0.353, labels.astype(np.int64)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--hidden", type=int, default=256)
    args = p.parse_args()

    x_train, y_train = load("train")
    x_test, y_test = load("t10k")
    rng = np.random.default_rng(0)
    # He initialisation; w is (in, out) so the layer is x @ w + b.
    params = [lm.nd.array(rng.standard_normal((784, args.hidden)) * np.sqrt(2 / 784), dtype="float32"),
              lm.nd.zeros((args.hidden,)),
              lm.nd.array(rng.standard_normal((args.hidden, 10)) * np.sqrt(2 / args.hidden), dtype="float32"),
              lm.nd.zeros((10,))]
    for p_ in params:
        p_.attach_grad()
    w1, b1, w2, b2 = params

    def logits(x):
        return lm.nd.relu(x @ w1 + b1) @ w2 + b2

    for epoch in range(args.epochs):
        start, order, total = time.perf_counter(), rng.permutation(len(x_train)), 0.0
        for i in range(0, len(order), args.batch):
            idx = order[i:i + args.batch]
            x = lm.nd.array(x_train[idx])
            onehot = lm.nd.array(np.eye(10, dtype=np.float32)[y_train[idx]])
            with lm.autograd.record():
                loss = -(lm.nd.log_softmax(logits(x)) * onehot).sum() / len(idx)
            loss.backward()
            for p_ in params:  # SGD, in place (allowed outside recording)
                p_ -= p_.grad * args.lr
            total += float(loss.asnumpy()) * len(idx)
        predicted = lm.nd.argmax(logits(lm.nd.array(x_test)), dim=1).asnumpy()
        print(f"epoch {epoch + 1}: train loss {total / len(order):.4f}, "
              f"test accuracy {np.mean(predicted == y_test):.4f}, {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
