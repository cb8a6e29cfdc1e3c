"""'nccl': a single-process store that sums the values pushed from several
GPUs with one NCCL all-reduce (runtime/comm/device_collectives.h) instead
of copying them to one device and adding there, as MXNet's 'nccl' store.

The sum lands on every pushing GPU at once; pull() copies to each GPU from
the sum already on it, so no array crosses devices after a push. The stored
value lives on the GPU of the first value init() saw. Host arrays, or two
values on one GPU, fall back to the 'device' store's sum (NCCL takes one
array per GPU). With set_optimizer() the stored weight is updated once,
then broadcast to the pulling GPUs, as in 'device'."""
from __future__ import annotations

from loom import _C
from loom.kvstore.local import LocalKVStore, _assign, _pairs


class NcclKVStore(LocalKVStore):
    def __init__(self):
        if not _C.comm.nccl_available():
            raise NotImplementedError("kv.create('nccl'): this loom was built without NCCL (install the CUDA "
                                      "toolkit's NCCL or the nvidia-nccl-cu13 wheel, then re-run configure.py)")
        super().__init__("nccl")
        self._replicas: dict = {}  # key -> {device: the last pushed sum on that device}

    def push(self, key, value, priority: int = 0) -> None:
        for k, _ in _pairs(key, value, "push"):
            self._replicas.pop(k, None)
        super().push(key, value, priority)

    def _reduce(self, key, stored, arrays):
        devices = [a.device for a in arrays]
        if any(d.type.name != "gpu" for d in devices) or len(set(devices)) != len(devices):
            return super()._reduce(key, stored, arrays)
        sums = _C.comm.nccl_all_reduce(list(arrays), "sum")
        if self._optimizer is None:
            self._replicas[key] = dict(zip(devices, sums))
        return next((s for s in sums if s.device == stored.device), sums[0])

    def pull(self, key, out=None, priority: int = 0, ignore_sparse: bool = True) -> None:
        if out is None:
            raise ValueError("KVStore.pull: `out` is required (the arrays to copy the stored values into)")
        for k, arrays in _pairs(key, out, "pull"):
            stored = self._check(k, arrays, "pull")
            replicas = self._replicas.get(k, {})
            for a in arrays:
                _assign(replicas.get(a.device, stored), a)
