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

from loom import _C, nd
from loom.kvstore import job
from loom.kvstore.local import LocalKVStore, _pairs
from loom.kvstore.ranks import GroupRanks, MpiRanks


def _job_ranks():
    """The ranks of the job this process was started in: loom.launch's
    workers when it set LOOM_ROLE, else MPI's."""
    if os.environ.get("LOOM_ROLE"):
        if not _C.comm.available():
            raise NotImplementedError("kv.create('dist_sync_allreduce'): loom.launch started this job, but this "
                                      "loom was built without ZeroMQ (apt-get install libzmq3-dev, then re-run "
                                      "configure.py)")
        group = job.join_as_worker("dist_sync_allreduce")
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
            # MPI hands back a host array; the key lives where its value does,
            # which decides whether pushes are summed by NCCL.
            self._store[k] = self._ranks.broadcast(arrays[0], 0).as_in_context(arrays[0].device)

    def _reduce(self, key, stored, arrays):
        # Every rank pushes the same keys in the same order: one all-reduce each.
        total = super()._reduce(key, stored, arrays)
        if self._uses_nccl(key, stored):
            return self._ranks.nccl_all_reduce(total)
        return self._ranks.all_reduce(total)

    def _uses_nccl(self, key, stored) -> bool:
        """Whether `key` is summed on the GPUs; the ranks agree on it at its first push."""
        if key not in self._through_nccl:
            mine = stored.device.type.name == "gpu" and _C.comm.nccl_available()
            votes = int(self._ranks.all_reduce(nd.array([1.0 if mine else 0.0], dtype="float64")).asnumpy()[0])
            if votes not in (0, self._ranks.size):
                raise ValueError(f"KVStore.push: key {key!r} is stored on a GPU with NCCL on {votes} of "
                                 f"{self._ranks.size} ranks and on the host (or without NCCL) on the others; every rank "
                                 f"must keep it on the same kind of device (this rank: {stored.device})")
            self._through_nccl[key] = votes == self._ranks.size
        return self._through_nccl[key]

    def save_optimizer_states(self, fname: str, dump_optimizer: bool = False) -> None:
        """Rank 0 writes the states (every rank holds the same ones)."""
        if self._ranks.rank == 0:
            super().save_optimizer_states(fname, dump_optimizer)
        self.barrier()

    def fail(self, why: str) -> None:
        """Fails the whole job with `why` (every worker's waits end with it);
        under MPI, raises it (mpirun stops a job when a rank ends with an
        error)."""
        job.forget()
        self._ranks.fail(why)

    def close(self) -> None:
        """This worker is done and leaves the job (called at exit if not
        before). Under MPI there is nothing to leave."""
        job.forget()
        self._ranks.close()
