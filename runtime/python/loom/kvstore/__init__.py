"""KVStore, MXNet's interface for sharing arrays between devices and
processes: lm.kv.create('local' | 'device').

A store holds one value per key (int or str). push() sums the values given
(one per device) into the store, or hands the sum to the optimizer set with
set_optimizer(); pull() copies the stored value out to every array given.
The single-process stores live in local.py; the distributed ones
(dist_sync, dist_async, nccl) come with the scale-out issue."""
from __future__ import annotations

from loom.kvstore.local import KVStore, LocalKVStore

_TYPES = {"local": "local", "device": "device", "local_allreduce_cpu": "local",
          "local_allreduce_device": "device"}


def create(name: str = "local") -> KVStore:
    """A KVStore by type. 'local' sums on the host; 'device' sums on the
    device of the first value pushed (GPU aggregation, as MXNet's 'device')."""
    if isinstance(name, KVStore):
        return name
    kind = _TYPES.get(str(name))
    if kind is None:
        if str(name).startswith("dist") or name == "nccl":
            raise NotImplementedError(f"kv.create: {name!r} needs the scale-out layer (ZeroMQ/NCCL), "
                                      "which is not built yet; 'local' and 'device' are available")
        raise ValueError(f"kv.create: unknown KVStore type {name!r}: expected 'local' or 'device'")
    return LocalKVStore(kind)


__all__ = ["create", "KVStore", "LocalKVStore"]
