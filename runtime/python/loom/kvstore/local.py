"""The single-process KVStores: 'local' (sums on the host) and 'device'
(sums on the device of the first value pushed).

Every operation goes through the engine like any other array work: push()
issues the copies and additions (on the CPU they run on the calling
thread when nothing they touch is pending, runtime/dispatch/launch.h), and
a pull()'s outputs are ordered before their readers."""
from __future__ import annotations

from loom import _C, nd
from loom.context import cpu

NDArray = _C.NDArray


class KVStore:
    """MXNet's KVStore interface; subclasses say where values are summed."""

    @property
    def type(self) -> str:
        raise NotImplementedError

    @property
    def rank(self) -> int:
        return 0

    @property
    def num_workers(self) -> int:
        return 1

    def barrier(self) -> None:
        """Every worker waits here; one process has nobody to wait for."""

    def set_gradient_compression(self, compression_params: dict) -> None:
        raise NotImplementedError(f"KVStore '{self.type}': gradient compression applies to the dist stores only")

    def pushpull(self, key, value, out=None, priority: int = 0) -> None:
        """push(key, value) then pull(key, out); `out` defaults to `value`
        (an all-reduce over the devices' arrays)."""
        self.push(key, value, priority)
        self.pull(key, value if out is None else out, priority)

    def broadcast(self, key, value, out, priority: int = 0) -> None:
        """init(key, value) then pull(key, out)."""
        self.init(key, value)
        self.pull(key, out, priority)


def _pairs(key, value, what: str):
    """(key, [arrays]) pairs from MXNet's forms: one key with one array or a
    per-device list, or a list of keys with a list of those."""
    if isinstance(key, (list, tuple)):
        if not isinstance(value, (list, tuple)) or len(value) != len(key):
            got = len(value) if isinstance(value, (list, tuple)) else type(value).__name__
            raise ValueError(f"KVStore.{what}: {len(key)} keys need a list of {len(key)} values, got {got}")
        return [pair for k, v in zip(key, value) for pair in _pairs(k, v, what)]
    if not isinstance(key, (int, str)):
        raise TypeError(f"KVStore.{what}: keys are int or str, got {type(key).__name__}")
    arrays = list(value) if isinstance(value, (list, tuple)) else [value]
    if not arrays or not all(isinstance(a, NDArray) for a in arrays):
        raise TypeError(f"KVStore.{what}: key {key!r} needs NDArrays, got "
                        f"{[type(a).__name__ for a in arrays] or 'an empty list'}")
    return [(key, arrays)]


def _assign(src: NDArray, dst: NDArray) -> None:
    """dst[:] = src, across devices."""
    nd.copy(src.as_in_context(dst.device), out=dst)


class LocalKVStore(KVStore):
    def __init__(self, kind: str = "local"):
        self._kind = kind
        self._store: dict = {}
        self._optimizer = None
        self._states: dict = {}

    @property
    def type(self) -> str:
        return self._kind

    def _check(self, key, arrays, what: str) -> NDArray:
        stored = self._store.get(key)
        if stored is None:
            raise KeyError(f"KVStore.{what}: key {key!r} was never init()ed (known keys: {sorted(map(str, self._store))})")
        for a in arrays:
            if tuple(a.shape) != tuple(stored.shape) or a.dtype != stored.dtype:
                raise ValueError(f"KVStore.{what}: key {key!r} holds {tuple(stored.shape)} {stored.dtype}, "
                                 f"got {tuple(a.shape)} {a.dtype} on {a.device}")
        return stored

    def init(self, key, value) -> None:
        """Stores a copy of each key's first value; a key is init()ed once."""
        for k, arrays in _pairs(key, value, "init"):
            if k in self._store:
                raise ValueError(f"KVStore.init: key {k!r} is already initialised")
            device = cpu() if self._kind == "local" else arrays[0].device
            self._store[k] = nd.copy(arrays[0].as_in_context(device))

    def push(self, key, value, priority: int = 0) -> None:
        """Sums each key's values (one per device) and stores the sum, or,
        after set_optimizer(), applies the optimizer to the stored weight
        with the sum as its gradient. (`priority` is accepted for MXNet's
        signature; the engine orders work by its dependencies.)

        Every key is summed before any is applied: sums that run beside the
        kernels (the nccl store's comm lane, docs/comm.md) are then all
        queued before the first update waits for one of them."""
        pushed = [(k, self._check(k, arrays, "push"), arrays) for k, arrays in _pairs(key, value, "push")]
        totals = self._reduce_keys(pushed)
        for (k, stored, _), total in zip(pushed, totals):
            if self._optimizer is not None:
                if k not in self._states:
                    self._states[k] = self._optimizer.create_state(k, stored)
                self._optimizer.update(k, stored, total, self._states[k])
            else:
                _assign(total, stored)

    def _reduce_keys(self, pushed):
        """The sums of one push's keys, [(key, stored, arrays)] -> [total]
        (a store that sums across processes may fuse the keys)."""
        return [self._reduce(k, stored, arrays) for k, stored, arrays in pushed]

    def _reduce(self, key, stored, arrays):
        """The sum of one key's pushed values, on the store's device."""
        total = arrays[0].as_in_context(stored.device)
        for a in arrays[1:]:
            total = total + a.as_in_context(stored.device)
        return total

    def pull(self, key, out=None, priority: int = 0, ignore_sparse: bool = True) -> None:
        """Copies each key's stored value into every array of `out`."""
        if out is None:
            raise ValueError("KVStore.pull: `out` is required (the arrays to copy the stored values into)")
        for k, arrays in _pairs(key, out, "pull"):
            stored = self._check(k, arrays, "pull")
            for a in arrays:
                _assign(stored, a)

    def set_optimizer(self, optimizer) -> None:
        """From now on push() updates the stored weights with `optimizer`."""
        from loom import optimizer as optimizers
        self._optimizer = optimizers.create(optimizer)
        self._states = {}

    def save_optimizer_states(self, fname: str, dump_optimizer: bool = False) -> None:
        if self._optimizer is None:
            raise RuntimeError("KVStore.save_optimizer_states: no optimizer was set (set_optimizer)")
        from loom.optimizer import save_states
        save_states(fname, self._optimizer, self._states)

    def load_optimizer_states(self, fname: str) -> None:
        if self._optimizer is None:
            raise RuntimeError("KVStore.load_optimizer_states: set_optimizer() first")
        from loom.optimizer import load_states
        self._states = load_states(fname, self._optimizer)
