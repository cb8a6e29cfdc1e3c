"""'dist_sync_allreduce': workers sum their gradients among themselves
through MPI (microkernel/comm/mpi_world.h), with no servers and no
scheduler.

    mpirun -np 4 python train.py        # or: srun -n 4 python train.py

Every worker keeps a full copy of each key. push() all-reduces the pushed
sum over the ranks, and pull() copies the result out. init() takes rank
0's value. set_optimizer() makes every rank apply the optimizer to its own
copy with the same summed gradient, so the copies stay equal. MPI aborts
the whole job when a rank dies, so a failure never hangs the others."""
from __future__ import annotations

from loom import _C
from loom.kvstore.local import LocalKVStore, _pairs


class AllreduceKVStore(LocalKVStore):
    """A local store whose every push is summed over the MPI ranks first."""

    def __init__(self):
        if not _C.comm.mpi_available():
            raise NotImplementedError("kv.create('dist_sync_allreduce'): this loom was built without MPI "
                                      "(apt-get install libopenmpi-dev openmpi-bin, then re-run configure.py)")
        super().__init__("dist_sync_allreduce")
        self._rank, self._size = _C.comm.mpi_world()

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
            self._store[k] = _C.comm.mpi_broadcast(arrays[0], 0)

    def _reduce(self, key, stored, arrays):
        # Every rank pushes the same keys in the same order: one all-reduce each.
        return _C.comm.mpi_allreduce(super()._reduce(key, stored, arrays))

    def save_optimizer_states(self, fname: str, dump_optimizer: bool = False) -> None:
        """Rank 0 writes the states (every rank holds the same ones)."""
        if self._rank == 0:
            super().save_optimizer_states(fname, dump_optimizer)
        self.barrier()
