"""A character-level LSTM language model on a text file shipped in the repo
(examples/data/licenses.txt: nine free-software licences -- Apache-2.0,
Artistic, BSD, CC0, GFDL-1.3, GPL-2, GPL-3, LGPL-2.1, MPL-2.0 -- as Debian
ships them in /usr/share/common-licenses; each text may be copied
verbatim): Embedding -> LSTM -> Dense over the characters, hybridized,
trained with Adam on random windows; prints the training and held-out
perplexity each epoch and a sample of generated text.

    .venv/bin/python examples/char_lstm.py [--epochs N] [--steps S] [--hidden H]

The last 10% of the file (most of MPL-2.0) is held out: its perplexity
says whether the model learnt English and legal prose, or only memorised
the training part."""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np

import loom as lm
from loom.gluon import Trainer, loss, nn, rnn

TEXT = Path(__file__).resolve().parent / "data" / "licenses.txt"


class CharLSTM(lm.gluon.HybridBlock):
    def __init__(self, vocab: int, embed: int, hidden: int, layers: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.lstm = rnn.LSTM(hidden, num_layers=layers, layout="NTC", input_size=embed)
        self.out = nn.Dense(vocab, flatten=False, in_units=hidden)

    def forward(self, x, h=None, c=None):
        if h is None:
            h, c = self.lstm.begin_state(x.shape[0], ctx=x.device)
        y, (h, c) = self.lstm(self.embed(x), [h, c])
        return self.out(y), h, c


def windows(ids: np.ndarray, batch: int, length: int, rng) -> tuple[lm.nd.NDArray, lm.nd.NDArray]:
    starts = rng.integers(0, len(ids) - length - 1, batch)
    x = np.stack([ids[s:s + length] for s in starts])
    y = np.stack([ids[s + 1:s + length + 1] for s in starts])
    return lm.nd.array(x, dtype="int64"), lm.nd.array(y, dtype="int64")


def perplexity(net, ids: np.ndarray, length: int) -> float:
    """exp(mean cross-entropy) over consecutive windows of `ids`."""
    ce = loss.SoftmaxCrossEntropyLoss()
    count = (len(ids) - 1) // length
    x = lm.nd.array(ids[:count * length].reshape(count, length), dtype="int64")
    y = lm.nd.array(ids[1:count * length + 1].reshape(count, length), dtype="int64")
    logits, _, _ = net(x)
    return math.exp(float(ce(logits, y).mean().asnumpy()))


def sample(net, chars: list[str], prompt: str, n: int, rng, temperature: float = 0.7) -> str:
    index = {c: i for i, c in enumerate(chars)}
    h = c = None
    x = lm.nd.array([[index[ch] for ch in prompt]], dtype="int64")
    out = prompt
    for _ in range(n):
        logits, h, c = net(x, h, c)
        z = logits.asnumpy()[0, -1] / temperature
        p = np.exp(z - z.max())
        nxt = int(rng.choice(len(chars), p=p / p.sum()))
        out += chars[nxt]
        x = lm.nd.array([[nxt]], dtype="int64")
    return out


def main(argv=None) -> float:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--steps", type=int, default=100, help="training steps per epoch")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--length", type=int, default=64, help="characters per training window")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--lr", type=float, default=3e-3)
    args = p.parse_args(argv)

    text = TEXT.read_text(encoding="utf-8")
    chars = sorted(set(text))
    ids = np.array([chars.index(ch) for ch in text], dtype=np.int64)
    split = int(len(ids) * 0.9)
    train_ids, held_out = ids[:split], ids[split:]
    print(f"{TEXT.name}: {len(text)} characters, {len(chars)} distinct; {len(held_out)} held out")

    lm.random.seed(0)
    rng = np.random.default_rng(0)
    net = CharLSTM(len(chars), 32, args.hidden, args.layers)
    net.initialize(init="xavier")
    net.hybridize()
    trainer = Trainer(net.collect_params(), "adam", {"learning_rate": args.lr, "clip_gradient": 5.0})
    ce = loss.SoftmaxCrossEntropyLoss()
    held_ppl = float("inf")
    for epoch in range(args.epochs):
        start, total = time.perf_counter(), 0.0
        for _ in range(args.steps):
            x, y = windows(train_ids, args.batch, args.length, rng)
            with lm.autograd.record():
                logits, _, _ = net(x)
                step_loss = ce(logits, y).mean()
            step_loss.backward()
            trainer.step(1)  # the loss is already a mean
            total += float(step_loss.asnumpy())
        held_ppl = perplexity(net, held_out, args.length)
        chars_per_s = args.steps * args.batch * args.length / (time.perf_counter() - start)
        print(f"epoch {epoch + 1}: train perplexity {math.exp(total / args.steps):.2f}, "
              f"held-out perplexity {held_ppl:.2f}, {chars_per_s:,.0f} chars/s")
    print("sample:", repr(sample(net, chars, "Licensed under the ", 120, rng)))
    return held_ppl


if __name__ == "__main__":
    main()
