"""KVStore, MXNet's interface for sharing arrays between devices and
processes: lm.kv.create('local' | 'device' | 'nccl' | 'dist_sync' | ...).

A store holds one value per key (int or str). push() sums the values given
(one per device) into the store, or hands the sum to the optimizer set with
set_optimizer(); pull() copies the stored value out to every array given.
The single-process stores live in local.py, the parameter-server ones
(dist_sync, dist_async) in dist.py with their server in server.py, and the
all-reduce one (dist_sync_allreduce) in allreduce.py over MPI or the
launcher's group (ranks.py), the NCCL one among the GPUs of a process in
nccl.py."""
from __future__ import annotations

from loom.kvstore.local import KVStore, LocalKVStore

_TYPES = {"local": "local", "device": "device", "local_allreduce_cpu": "local",
          "local_allreduce_device": "device"}
_DIST = {"dist_sync": "dist_sync", "dist_async": "dist_async", "dist": "dist_sync",
         "dist_sync_device": "dist_sync", "dist_device_sync": "dist_sync"}


def create(name: str = "local") -> KVStore:
    """A KVStore by type. 'local' sums on the host; 'device' sums on the
    device of the first value pushed (GPU aggregation, as MXNet's 'device');
    'dist_sync' / 'dist_async' are parameter servers across processes
    (loom/kvstore/dist.py; start the job with python -m loom.launch);
    'dist_sync_allreduce' sums among workers with no servers (allreduce.py;
    start it with mpirun, srun or python -m loom.launch -s 0); 'nccl' sums
    the values of several GPUs with one NCCL all-reduce (nccl.py)."""
    if isinstance(name, KVStore):
        return name
    if str(name) == "nccl":
        from loom.kvstore.nccl import NcclKVStore
        return NcclKVStore()
    if str(name) == "dist_sync_allreduce":
        from loom.kvstore.allreduce import AllreduceKVStore
        return AllreduceKVStore()
    if str(name) in _DIST:
        from loom.kvstore.dist import DistKVStore
        return DistKVStore(_DIST[str(name)])
    kind = _TYPES.get(str(name))
    if kind is None:
        raise ValueError(f"kv.create: unknown KVStore type {name!r}: expected 'local', 'device', 'nccl', "
                         "'dist_sync', 'dist_async' or 'dist_sync_allreduce'")
    return LocalKVStore(kind)


__all__ = ["create", "KVStore", "LocalKVStore"]
