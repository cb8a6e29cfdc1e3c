"""The parameter server and the scheduler: python -m loom.kvstore.server.

The launcher starts this with LOOM_ROLE=server or LOOM_ROLE=scheduler.

- The scheduler only keeps the group together: addresses, barriers and
  heartbeats (microkernel/comm/group.h). It exits when every node has left
  normally. When the job fails, it exits non-zero with the cause.
- A server holds the keys that hash to it and serves the workers'
  init / push / pull (the protocol is in loom/kvstore/dist.py).

Exit codes: 0 when every worker has finished, 1 when the job failed."""
from __future__ import annotations

import json
import pickle
import sys

from loom import _C, nd
from loom.kvstore import compression

# A server waits this long for any message before it checks on the job again.
POLL_S = 1.0


class _Key:
    """A key's value on its server, and the sync round in progress."""

    def __init__(self, value):
        self.value = value
        self.version = 0          # rounds (sync) or pushes (async) applied
        self.round: dict = {}     # worker rank -> its pushed arrays for the coming rounds, oldest first
        self.rescale = 1.0
        self.waiting: list = []   # (node, request) pulls waiting for a later version
        self.state = None         # the optimizer's state for this key


class Server:
    def __init__(self, group):
        self.g = group
        self.mode = "dist_sync"
        self.optimizer = None
        self.keys: dict = {}
        self.stopped: set = set()

    def worker_rank(self, node: int) -> int:
        return node - 1 - self.g.num_servers

    def reply(self, node: int, key: str, request: int, array=None) -> None:
        # A copy: the value is sent without one, and the next update writes it in place.
        array = nd.copy(array) if array is not None else None
        self.g.send(node, key, array=array, kind="data" if array is not None else "control", request=request)

    def refuse(self, node: int, why: str) -> None:
        self.g.send(node, "_error", meta=why.encode(), kind="control")

    def serve(self) -> None:
        while len(self.stopped) < self.g.num_workers:
            message = self.g.poll(POLL_S)
            if message is not None:
                kind, sender, key, meta, request, array = message
                self.handle(sender, key, meta, request, array)

    def handle(self, sender: int, key: str, raw_meta: bytes, request: int, array) -> None:
        if key == "_optimizer":  # a pickled lm.optimizer.Optimizer from worker 0
            self.optimizer = pickle.loads(raw_meta)
            return self.reply(sender, key, 0)
        meta = raw_meta.decode(errors="replace")
        if key == "_mode":
            self.mode = meta
            return self.reply(sender, key, 0)
        if key == "_stop":
            self.stopped.add(self.worker_rank(sender))
            for name, k in self.keys.items():
                self.maybe_complete(name, k)
            return None
        if key == "_get_states":  # the optimizer's states, one message each, then the step counts
            for name, k in self.keys.items():
                for i, state in enumerate(k.state or []):
                    self.g.send(sender, "_state", meta=f"{name}#{i}".encode(), array=state, kind="data")
            counts = list(self.optimizer.counts().items()) if self.optimizer is not None else []
            self.g.send(sender, key, meta=json.dumps(counts).encode(), kind="control")
            return None
        if key == "_set_state":
            name, i = meta.rsplit("#", 1)
            k = self.keys.get(name)
            if k is None:
                return self.refuse(sender, f"optimizer state for key {name[2:]!r}, which this server does not hold")
            k.state = (k.state or []) + [None] * max(0, int(i) + 1 - len(k.state or []))
            k.state[int(i)] = nd.copy(array)
            return None
        if key == "_set_counts":
            if self.optimizer is None:
                return self.refuse(sender, "optimizer states arrived before set_optimizer()")
            self.optimizer.set_counts({index if not isinstance(index, list) else tuple(index): count
                                       for index, count in json.loads(meta)})
            return self.reply(sender, key, 0)
        if meta == "init":
            if key not in self.keys:
                self.keys[key] = _Key(nd.copy(array))
            return self.reply(sender, key, 0)
        k = self.keys.get(key)
        if k is None:
            return self.refuse(sender, f"key {key[2:]!r} was never init()ed on this server")
        if meta.startswith("push"):
            words = meta.split()
            rescale = float(words[1]) if len(words) > 1 else 1.0
            if len(words) > 3 and words[2] == "2bit":  # 2-bit codes: back to values (loom/kvstore/compression.py)
                values = compression.dequantize(array.asnumpy(), k.value.size, float(words[3]))
                array = nd.array(values.reshape(k.value.shape)).astype(k.value.dtype)
            if self.mode == "dist_async":
                k.rescale = rescale
                self.apply(key, k, array)
                return self.answer_pulls(key, k)
            k.round.setdefault(self.worker_rank(sender), []).append(array)  # a worker may push ahead of a round
            k.rescale = rescale
            return self.maybe_complete(key, k)
        if meta == "pull":
            if k.version >= request:
                return self.reply(sender, key, request, k.value)
            k.waiting.append((sender, request))
            return None
        return self.refuse(sender, f"unknown request {meta!r} for key {key[2:]!r}")

    def maybe_complete(self, name: str, k: _Key) -> None:
        """Applies sync rounds while every worker still running has pushed
        for the next one (a stopped worker's leftover pushes still count)."""
        while True:
            active = [r for r in range(self.g.num_workers) if r not in self.stopped]
            pending = [r for r, pushes in k.round.items() if pushes]
            if not pending or any(not k.round.get(r) for r in active):
                return
            ranks = sorted(pending)
            total = k.round[ranks[0]].pop(0)
            for r in ranks[1:]:  # in rank order: the same sum on every run
                total = total + k.round[r].pop(0)
            self.apply(name, k, total)
            self.answer_pulls(name, k)

    def apply(self, name: str, k: _Key, total) -> None:
        if self.optimizer is None:
            k.value = total
        else:
            index = _index(name)
            if k.state is None:
                k.state = self.optimizer.create_state(index, k.value)
            self.optimizer.rescale_grad = k.rescale
            self.optimizer.update(index, k.value, total, k.state)
        k.version += 1

    def answer_pulls(self, name: str, k: _Key) -> None:
        ready = [(node, r) for node, r in k.waiting if k.version >= r]
        k.waiting = [(node, r) for node, r in k.waiting if k.version < r]
        for node, request in ready:
            self.reply(node, name, request, k.value)


def _index(name: str):
    """The optimizer's index of a wire key: the int the worker used (the
    Trainer's parameter index, for lr_mult / wd_mult), or the str."""
    base = name.split("#")[0]  # a part of a split array updates as its whole array's index
    return int(base[2:]) if base.startswith("i:") else base[2:]


def main() -> int:
    try:
        group = _C.comm.Group.from_env()
    except Exception as e:  # noqa: BLE001 - reported, then a non-zero exit
        print(f"loom.kvstore.server: {e}", file=sys.stderr)
        return 1
    try:
        if group.role == "scheduler":
            while not group.all_left():
                group.poll(POLL_S)  # raises when the job fails
            return 0
        if group.role != "server":
            print("loom.kvstore.server: run this as a server or the scheduler (LOOM_ROLE)", file=sys.stderr)
            return 1
        Server(group).serve()
        return 0
    except Exception as e:  # noqa: BLE001
        print(f"loom.kvstore.server ({group.describe(group.node)}): {e}", file=sys.stderr)
        if not group.failure:
            group.fail(f"{type(e).__name__}: {e}")  # the others stop waiting for this node, told why
        return 1
    finally:
        del group


if __name__ == "__main__":
    sys.exit(main())
