"""'dist_sync_allreduce': workers sum their gradients among themselves
through MPI (microkernel/comm/mpi_world.h), with no servers and no
scheduler.

    mpirun -np 4 python train.py        # or: srun -n 4 python train.py

Every worker keeps a full copy of each key. push() all-reduces the pushed
sum over the ranks, and pull() copies the result out. init() takes rank
0's value. set_optimizer() makes every rank apply the optimizer to its own
copy with the same summed gradient, so the copies stay equal. MPI aborts
the whole job when a rank dies, so a failure never hangs the others.

A key stored on a GPU is summed through NCCL when this loom has it: one
communicator for the job, made at the first such push with NCCL's unique id
sent over MPI (runtime/comm/rank_collectives.h), so the sum stays on the
devices. Host keys, or a build without NCCL, go through MPI on the host.
The first push of each key checks that every rank takes the same path: a
key on a GPU on some ranks and on the host on others is an error on all of
them, not a hang."""
from __future__ import annotations

from loom import _C, nd
from loom.kvstore.local import LocalKVStore, _pairs


class AllreduceKVStore(LocalKVStore):
    """A local store whose every push is summed over the MPI ranks first."""

    def __init__(self):
        if not _C.comm.mpi_available():
            raise NotImplementedError("kv.create('dist_sync_allreduce'): this loom was built without MPI "
                                      "(apt-get install libopenmpi-dev openmpi-bin, then re-run configure.py)")
        super().__init__("dist_sync_allreduce")
        self._rank, self._size = _C.comm.mpi_world()
        self._through_nccl: dict = {}  # key -> whether its pushes are summed by NCCL

    @property
    def rank(self) -> int:
        return self._rank

    @property
    def num_workers(self) -> int:
        return self._size

    def barrier(self) -> None:
        _C.comm.mpi_barrier()

    def init(self, key, value) -> None:
        """Every rank calls it with the same keys, in the same order; rank 0's values win."""
        for k, arrays in _pairs(key, value, "init"):
            if k in self._store:
                raise ValueError(f"KVStore.init: key {k!r} is already initialised")
            # MPI hands back a host array; the key lives where its value does,
            # which decides whether pushes are summed by NCCL.
            self._store[k] = _C.comm.mpi_broadcast(arrays[0], 0).as_in_context(arrays[0].device)

    def _reduce(self, key, stored, arrays):
        # Every rank pushes the same keys in the same order: one all-reduce each.
        total = super()._reduce(key, stored, arrays)
        if self._uses_nccl(key, stored):
            return _C.comm.nccl_mpi_all_reduce(total)
        return _C.comm.mpi_allreduce(total)

    def _uses_nccl(self, key, stored) -> bool:
        """Whether `key` is summed on the GPUs; the ranks agree on it at its first push."""
        if key not in self._through_nccl:
            mine = stored.device.type.name == "gpu" and _C.comm.nccl_available()
            votes = int(_C.comm.mpi_allreduce(nd.array([1.0 if mine else 0.0], dtype="float64")).asnumpy()[0])
            if votes not in (0, self._size):
                raise ValueError(f"KVStore.push: key {key!r} is stored on a GPU with NCCL on {votes} of "
                                 f"{self._size} ranks and on the host (or without NCCL) on the others; every rank "
                                 f"must keep it on the same kind of device (this rank: {stored.device})")
            self._through_nccl[key] = votes == self._size
        return self._through_nccl[key]

    def save_optimizer_states(self, fname: str, dump_optimizer: bool = False) -> None:
        """Rank 0 writes the states (every rank holds the same ones)."""
        if self._rank == 0:
            super().save_optimizer_states(fname, dump_optimizer)
        self.barrier()
