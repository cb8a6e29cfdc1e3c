"""'dist_sync_allreduce': workers sum their gradients among themselves,
with no servers. Start the job either way:

    mpirun -np 4 python train.py        # or: srun -n 4 python train.py
    python -m loom.launch -n 4 -s 0 -- python train.py   # local, ssh, mpi or slurm

Under mpirun or srun the ranks are MPI's (MPI aborts the whole job when a
rank dies). Under loom.launch they are the workers of the job's ZeroMQ
group, which fails every worker's wait, naming the dead one, within the
launcher's timeout (ranks.py has both).

Every worker keeps a full copy of each key. push() all-reduces the pushed
sum over the ranks, and pull() copies the result out. init() takes rank
0's value. set_optimizer() makes every rank apply the optimizer to its own
copy with the same summed gradient, so the copies stay equal.

A key stored on a GPU is summed through NCCL when this loom has it: one
communicator for the job, made at the first such push with NCCL's unique id
sent over MPI or the group (runtime/comm/rank_collectives.h), so the sum
stays on the devices. Host keys, or a build without NCCL, are summed on the
host (MPI_Allreduce, or the group's ring). The first push of each key
checks that every rank takes the same path: a key on a GPU on some ranks
and on the host on others is an error on all of them, not a hang."""
from __future__ import annotations

import os

import numpy as np

from loom import _C, nd
from loom.kvstore import job
from loom.kvstore.local import LocalKVStore, _pairs
from loom.kvstore.ranks import GroupRanks, MpiRanks

# The largest bucket of host gradients summed in one all-reduce, in values
# (32 MB of float32 by default): fewer, larger messages amortise each
# round's latency, while a bound keeps the flattened copy small next to the
# model.
BUCKET_VALUES = (int(os.environ.get("LOOM_KVSTORE_BUCKET_MB", "32")) << 20) // 4


def _wire_dtype(dtype: str) -> str:
    """The dtype a host key is summed in: half precision in float32 (NumPy
    has no bfloat16, and the sum rounds once at the end), other non-float
    dtypes in float64 (exact for integers below 2^53), which MPI's sum
    takes as well."""
    if dtype in ("float32", "float64"):
        return dtype
    return "float32" if dtype in ("float16", "bfloat16") else "float64"


def _job_ranks():
    """The ranks of the job this process was started in: loom.launch's
    workers when it set LOOM_ROLE, else MPI's."""
    if os.environ.get("LOOM_ROLE"):
        group = job.join_as_worker("dist_sync_allreduce")  # says what to install in a build without ZeroMQ
        if group.num_servers:
            raise ValueError(f"kv.create('dist_sync_allreduce'): the job has {group.num_servers} server(s), which "
                             "this store does not use; start it with -s 0")
        return GroupRanks(group)
    if not _C.comm.mpi_available():
        raise NotImplementedError("kv.create('dist_sync_allreduce'): start the job with python -m loom.launch "
                                  "-s 0, or build loom with MPI (apt-get install libopenmpi-dev openmpi-bin, "
                                  "then re-run configure.py) and start it with mpirun or srun")
    return MpiRanks()


class AllreduceKVStore(LocalKVStore):
    """A local store whose every push is summed over the job's ranks first."""

    def __init__(self, ranks=None):
        super().__init__("dist_sync_allreduce")
        self._ranks = ranks if ranks is not None else _job_ranks()
        self._through_nccl: dict = {}  # key -> whether its pushes are summed by NCCL
        if isinstance(self._ranks, GroupRanks):
            job.watch(self)

    @property
    def rank(self) -> int:
        return self._ranks.rank

    @property
    def num_workers(self) -> int:
        return self._ranks.size

    def barrier(self) -> None:
        self._ranks.barrier()

    def init(self, key, value) -> None:
        """Every rank calls it with the same keys, in the same order; rank 0's values win."""
        for k, arrays in _pairs(key, value, "init"):
            if k in self._store:
                raise ValueError(f"KVStore.init: key {k!r} is already initialised")
            # The broadcast hands back a host array; the key lives where its
            # value does, which decides whether pushes are summed by NCCL.
            self._store[k] = self._ranks.broadcast(arrays[0], 0).as_in_context(arrays[0].device)

    def _reduce_keys(self, pushed):
        """Every rank pushes the same keys in the same order. The host keys of
        a push travel together, in buckets of up to BUCKET_VALUES per wire
        dtype: one all-reduce, one round of messages, for many small
        gradients (the Trainer pushes every parameter at once). GPU keys go
        to NCCL one by one; each call only queues work on the comm lane."""
        local = [LocalKVStore._reduce(self, k, stored, arrays) for k, stored, arrays in pushed]
        self._vote([(k, stored) for k, stored, _ in pushed])
        totals = [None] * len(pushed)
        buckets: dict = {}  # wire dtype -> [[index, ...], ...]
        filled: dict = {}   # wire dtype -> values in its last bucket
        for i, (k, stored, _) in enumerate(pushed):
            if self._through_nccl[k]:
                totals[i] = self._ranks.nccl_all_reduce(local[i])
                continue
            wire = _wire_dtype(local[i].dtype)
            lists = buckets.setdefault(wire, [[]])
            if lists[-1] and filled[wire] + local[i].size > BUCKET_VALUES:
                lists.append([])
            filled[wire] = (filled[wire] if len(lists[-1]) else 0) + local[i].size
            lists[-1].append(i)
        for wire, bucket_list in buckets.items():
            for bucket in bucket_list:
                parts = [local[i].astype(wire).asnumpy().reshape(-1) for i in bucket]
                summed = self._ranks.all_reduce_flat(parts[0] if len(parts) == 1 else np.concatenate(parts))
                offset = 0
                for i in bucket:
                    n, stored = local[i].size, pushed[i][1]
                    total = nd.from_dlpack(summed[offset:offset + n].reshape(local[i].shape))  # no copy
                    if total.dtype != local[i].dtype:
                        total = total.astype(local[i].dtype)
                    totals[i] = total.as_in_context(stored.device)
                    offset += n
        return totals

    def _vote(self, keyed) -> None:
        """Decides, at each key's first push, whether it is summed on the GPUs:
        one host all-reduce counts, per new key, the ranks that can. All
        ranks then agree, or all raise."""
        new = [(k, stored) for k, stored in dict(keyed).items() if k not in self._through_nccl]
        if not new:
            return
        can = _C.comm.nccl_available()
        mine = [1.0 if can and stored.device.type.name == "gpu" else 0.0 for _, stored in new]
        votes = self._ranks.all_reduce(nd.array(mine, dtype="float64")).asnumpy()
        for (k, stored), count in zip(new, votes):
            count = int(count)
            if count not in (0, self._ranks.size):
                raise ValueError(f"KVStore.push: key {k!r} is stored on a GPU with NCCL on {count} of "
                                 f"{self._ranks.size} ranks and on the host (or without NCCL) on the others; every "
                                 f"rank must keep it on the same kind of device (this rank: {stored.device})")
        for (k, _), count in zip(new, votes):
            self._through_nccl[k] = int(count) == self._ranks.size

    def save_optimizer_states(self, fname: str, dump_optimizer: bool = False) -> None:
        """Rank 0 writes the states (every rank holds the same ones)."""
        if self._ranks.rank == 0:
            super().save_optimizer_states(fname, dump_optimizer)
        self.barrier()

    def fail(self, why: str) -> None:
        """Fails the whole job with `why` (every worker's waits end with it);
        under MPI, raises it (mpirun stops a job when a rank ends with an
        error)."""
        job.forget(self)
        self._ranks.fail(why)

    def close(self) -> None:
        """This worker is done and leaves the job (called at exit if not
        before). Under MPI there is nothing to leave."""
        job.forget(self)
        self._ranks.close()
