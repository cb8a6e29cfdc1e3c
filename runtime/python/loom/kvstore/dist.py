"""The distributed KVStores, worker side: 'dist_sync' and 'dist_async'.

A parameter server over loom's comm layer (microkernel/comm). Each key
lives on one server (an int key k on server k % S, a str key by its CRC-32),
and workers push gradients to it and pull values back. The launcher
(python -m loom.launch) starts the scheduler, the servers
(python -m loom.kvstore.server) and the workers, and sets the LOOM_*
environment this reads.

- dist_sync: a key's pushes are summed once every worker still running
  has pushed for this round, in worker-rank order. So the sum, and the
  weights, are bit-identical from run to run and equal a single process
  adding the same gradients in the same order. A pull waits for the round
  of this worker's last push. A worker that has finished (close(), or the
  end of its process) no longer counts. Workers with uneven numbers of
  batches therefore end cleanly instead of waiting forever for a push
  that never comes.
- dist_async: each push is applied when it arrives, and a pull returns
  what the server has at that moment.

With set_optimizer() the servers update the weights: each pushed sum is
a gradient. Otherwise a key's value is the latest sum, which is how the
Trainer all-reduces gradients."""
from __future__ import annotations

import copy
import json
import os
import pickle
import zlib

import numpy as np

from loom import _C, nd
from loom.kvstore import compression, job
from loom.kvstore.local import KVStore, _pairs

NDArray = _C.NDArray
# How long a worker waits for a server's answer before it reports the job
# stuck (failures of other nodes end the wait sooner, through the group).
REPLY_TIMEOUT_S = 600.0
# Arrays of at least this many elements are split over every server (MXNet's
# bigarray_bound), so one large layer does not load one server alone.
BIG_ARRAY = int(os.environ.get("LOOM_KVSTORE_BIGARRAY_BOUND", "1000000"))


def server_of(key, num_servers: int) -> int:
    """The server rank that holds `key` (stable across processes and runs)."""
    if isinstance(key, int):
        return key % num_servers
    return zlib.crc32(str(key).encode()) % num_servers


def wire_key(key) -> str:
    return f"i:{key}" if isinstance(key, int) else f"s:{key}"


class _Mults:
    """The lr_mult / wd_mult of a Parameter, without its arrays (picklable)."""

    def __init__(self, lr_mult: float, wd_mult: float):
        self.lr_mult, self.wd_mult = lr_mult, wd_mult


class DistKVStore(KVStore):
    def __init__(self, kind: str):
        group = job.join_as_worker(kind)
        if group.num_servers < 1:
            raise ValueError(f"kv.create({kind!r}): the job has no servers; start it with -s 1 or more "
                             "(or use 'dist_sync_allreduce', which needs none)")
        self._group = group
        self._kind = kind
        self._pushes: dict = {}      # key -> pushes this worker sent
        self._specs: dict = {}       # key -> (shape, dtype)
        self._stash: list = []       # replies that came while waiting for another
        self._closed = False
        self._rescale = 1.0
        self._parts: dict = {}       # key -> [(wire key, server node, begin, end)] over the flat array
        self._threshold = None       # 2-bit compression, when set
        self._residuals: dict = {}   # wire key -> error-feedback residual (NumPy)
        self._broadcast("_mode", kind.encode())
        job.watch(self)

    def __getattr__(self, name):
        if name == "_group":  # only missing after close() or fail()
            raise RuntimeError("KVStore: this dist store was closed (close(), fail() or the end of the job)")
        raise AttributeError(name)

    # ------------------------------------------------------------ identity
    @property
    def type(self) -> str:
        return self._kind

    @property
    def rank(self) -> int:
        return self._group.rank

    @property
    def num_workers(self) -> int:
        return self._group.num_workers

    def barrier(self) -> None:
        """Every worker waits here for the others."""
        self._group.barrier("workers")

    # ------------------------------------------------------------ messages
    def _split(self, key, size: int) -> list:
        """Where each part of a key's flat array lives: one part on the key's
        server, or, for a big array, one part on every server."""
        servers = self._group.num_servers
        home = server_of(key, servers)
        if size < BIG_ARRAY or servers == 1:
            return [(wire_key(key), self._group.server_node(home), 0, size)]
        bounds = [size * p // servers for p in range(servers + 1)]
        return [(f"{wire_key(key)}#{p}", self._group.server_node((home + p) % servers), bounds[p], bounds[p + 1])
                for p in range(servers)]

    def _reply(self, key: str, request: int):
        """The server's answer to (key, request); answers to other requests
        that arrive first are kept for their turn."""
        for i, (k, r, array) in enumerate(self._stash):
            if k == key and r == request:
                del self._stash[i]
                return array
        while True:
            kind, sender, k, meta, r, array = self._group.recv(REPLY_TIMEOUT_S)
            if k == "_error":
                raise RuntimeError(f"kvstore: {self._group.describe(sender)} refused a request: {meta.decode()}")
            if k == key and r == request:
                return array
            self._stash.append((k, r, array))

    def _broadcast(self, command: str, meta: bytes) -> None:
        """Worker 0 tells every server `command`; all workers wait until the
        servers have it (so no later message of another worker overtakes it)."""
        if self.rank == 0:
            for s in range(self._group.num_servers):
                self._group.send(self._group.server_node(s), command, meta=meta, kind="control")
            for s in range(self._group.num_servers):
                self._reply(command, 0)
        self.barrier()

    # ------------------------------------------------------------ KVStore
    def _check(self, key, arrays, what: str):
        spec = self._specs.get(key)
        if spec is None:
            raise KeyError(f"KVStore.{what}: key {key!r} was never init()ed")
        for a in arrays:
            if (tuple(a.shape), a.dtype) != spec:
                raise ValueError(f"KVStore.{what}: key {key!r} holds {spec[0]} {spec[1]}, "
                                 f"got {tuple(a.shape)} {a.dtype} on {a.device}")

    def init(self, key, value) -> None:
        """Every worker calls it with the same keys; worker 0's values are stored."""
        pairs = _pairs(key, value, "init")
        for k, arrays in pairs:
            if k in self._specs:
                raise ValueError(f"KVStore.init: key {k!r} is already initialised")
            self._specs[k] = (tuple(arrays[0].shape), arrays[0].dtype)
            self._pushes[k] = 0
            self._parts[k] = self._split(k, arrays[0].size)
            if self.rank == 0:
                flat = arrays[0].reshape((-1,))
                for name, node, begin, end in self._parts[k]:
                    self._group.send(node, name, array=flat[begin:end], kind="data", request=0, meta=b"init")
        if self.rank == 0:
            for k, _ in pairs:
                for name, _, _, _ in self._parts[k]:
                    self._reply(name, 0)
        self.barrier()

    def push(self, key, value, priority: int = 0) -> None:
        for k, arrays in _pairs(key, value, "push"):
            self._check(k, arrays, "push")
            total = arrays[0].as_in_context(_cpu())
            for a in arrays[1:]:
                total = total + a.as_in_context(_cpu())
            self._pushes[k] += 1
            flat = total.reshape((-1,))
            for name, node, begin, end in self._parts[k]:
                part, meta = flat[begin:end], f"push {self._rescale!r}"
                if self._threshold is not None:
                    residual = self._residuals.setdefault(name, np.zeros(end - begin, np.float32))
                    part = nd.array(compression.quantize(part.asnumpy(), residual, self._threshold))
                    meta += f" 2bit {self._threshold!r}"
                self._group.send(node, name, array=part, kind="data", request=self._pushes[k], meta=meta.encode())

    def pull(self, key, out=None, priority: int = 0, ignore_sparse: bool = True) -> None:
        if out is None:
            raise ValueError("KVStore.pull: `out` is required (the arrays to copy the stored values into)")
        pairs = _pairs(key, out, "pull")
        for k, arrays in pairs:
            self._check(k, arrays, "pull")
            need = self._pushes[k] if self._kind == "dist_sync" else 0
            for name, node, _, _ in self._parts[k]:
                self._group.send(node, name, kind="control", request=need, meta=b"pull")
        for k, arrays in pairs:
            need = self._pushes[k] if self._kind == "dist_sync" else 0
            parts = [self._reply(name, need) for name, _, _, _ in self._parts[k]]
            value = parts[0] if len(parts) == 1 else nd.concat(parts, dim=0)
            value = value.reshape(self._specs[k][0])
            for a in arrays:
                nd.copy(value.as_in_context(a.device), out=a)

    def set_gradient_compression(self, compression_params: dict) -> None:
        """2-bit compression of every later push, with error feedback
        (loom/kvstore/compression.py): {'type': '2bit', 'threshold': 0.5}."""
        self._threshold = compression.parse(compression_params)

    def set_optimizer(self, optimizer) -> None:
        """The servers update the weights with (a copy of) `optimizer` from now on."""
        from loom import optimizer as optimizers
        opt = copy.copy(optimizers.create(optimizer))
        opt.param_dict = {k: _Mults(p.lr_mult, p.wd_mult) for k, p in opt.param_dict.items()}
        self._broadcast("_optimizer", pickle.dumps(opt))

    def set_rescale(self, rescale: float) -> None:
        """The factor the servers' optimizer scales summed gradients by (the Trainer's 1 / batch)."""
        self._rescale = float(rescale)

    def save_optimizer_states(self, fname: str, dump_optimizer: bool = False) -> None:
        """Worker 0 gathers the servers' optimizer states and step counts into
        `fname` (the NDArray file format); every worker waits for it."""
        if self.rank == 0:
            flat = {}
            for s in range(self._group.num_servers):
                self._group.send(self._group.server_node(s), "_get_states", kind="control")
            done = 0
            while done < self._group.num_servers:
                kind, sender, key, meta, request, array = self._group.recv(REPLY_TIMEOUT_S)
                if key == "_state":
                    flat[f"state#{meta.decode()}"] = array
                elif key == "_get_states":
                    server = sender - 1
                    for index, count in json.loads(meta):
                        flat[f"count#{server}#{json.dumps(index)}"] = nd.array([count], dtype="int64")
                    done += 1
                else:
                    self._stash.append((key, request, array))
            nd.save(fname, flat)
        self.barrier()

    def load_optimizer_states(self, fname: str) -> None:
        """Worker 0 sends a save_optimizer_states() file back to the servers
        (after set_optimizer() and init() of the same keys)."""
        if self.rank == 0:
            homes = {name: node for parts in self._parts.values() for name, node, _, _ in parts}
            counts: dict = {}
            for entry, value in nd.load(fname).items():
                what, rest = entry.split("#", 1)
                if what == "state":
                    name = rest.rsplit("#", 1)[0]
                    if name not in homes:
                        raise ValueError(f"load_optimizer_states: {fname} holds states of key {name[2:]!r}, "
                                         "which this store never init()ed")
                    self._group.send(homes[name], "_set_state", meta=rest.encode(), array=value, kind="data")
                elif what == "count":
                    server, index = rest.split("#", 1)
                    counts.setdefault(int(server), []).append([json.loads(index), int(value.asnumpy()[0])])
            for server, pairs in counts.items():
                self._group.send(self._group.server_node(server), "_set_counts", meta=json.dumps(pairs).encode(),
                                 kind="control")
            for _ in counts:
                self._reply("_set_counts", 0)
        self.barrier()

    def fail(self, why: str) -> None:
        """Fails the whole job with `why` (every node's waits end with it)."""
        if not self._closed:
            self._group.fail(why)
            self._closed = True
            job.forget(self)
            del self._group

    def close(self) -> None:
        """This worker is done: the servers stop counting it, and the process
        leaves the job. Called at exit if not before."""
        if self._closed:
            return
        self._closed = True
        job.forget(self)
        try:
            if not self._group.failure:
                for s in range(self._group.num_servers):
                    self._group.send(self._group.server_node(s), "_stop", kind="control")
        finally:
            del self._group  # leaves the group: says goodbye to the scheduler


def _cpu():
    from loom.context import cpu
    return cpu()
