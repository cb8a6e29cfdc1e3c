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

from loom import _C, nd
from loom.kvstore.local import KVStore, _assign, _pairs

NDArray = _C.NDArray


class AllreduceKVStore(KVStore):
    def __init__(self):
        if not _C.comm.mpi_available():
            raise NotImplementedError("kv.create('dist_sync_allreduce'): this loom was built without MPI "
                                      "(apt-get install libopenmpi-dev openmpi-bin, then re-run configure.py)")
        self._rank, self._size = _C.comm.mpi_world()
        self._store: dict = {}
        self._optimizer = None
        self._states: dict = {}

    @property
    def type(self) -> str:
        return "dist_sync_allreduce"

    @property
    def rank(self) -> int:
        return self._rank

    @property
    def num_workers(self) -> int:
        return self._size

    def barrier(self) -> None:
        _C.comm.mpi_barrier()

    def _stored(self, key, arrays, what: str) -> NDArray:
        stored = self._store.get(key)
        if stored is None:
            raise KeyError(f"KVStore.{what}: key {key!r} was never init()ed")
        for a in arrays:
            if tuple(a.shape) != tuple(stored.shape) or a.dtype != stored.dtype:
                raise ValueError(f"KVStore.{what}: key {key!r} holds {tuple(stored.shape)} {stored.dtype}, "
                                 f"got {tuple(a.shape)} {a.dtype} on {a.device}")
        return stored

    def init(self, key, value) -> None:
        """Every rank calls it with the same keys, in the same order; rank 0's values win."""
        for k, arrays in _pairs(key, value, "init"):
            if k in self._store:
                raise ValueError(f"KVStore.init: key {k!r} is already initialised")
            self._store[k] = _C.comm.mpi_broadcast(arrays[0], 0)

    def push(self, key, value, priority: int = 0) -> None:
        """Every rank pushes the same keys in the same order (an all-reduce each)."""
        for k, arrays in _pairs(key, value, "push"):
            stored = self._stored(k, arrays, "push")
            total = arrays[0].as_in_context(stored.device)
            for a in arrays[1:]:
                total = total + a.as_in_context(stored.device)
            summed = _C.comm.mpi_allreduce(total)
            if self._optimizer is None:
                self._store[k] = summed
                continue
            if k not in self._states:
                self._states[k] = self._optimizer.create_state(k, stored)
            self._optimizer.update(k, stored, summed, self._states[k])

    def pull(self, key, out=None, priority: int = 0, ignore_sparse: bool = True) -> None:
        if out is None:
            raise ValueError("KVStore.pull: `out` is required (the arrays to copy the stored values into)")
        for k, arrays in _pairs(key, out, "pull"):
            stored = self._stored(k, arrays, "pull")
            for a in arrays:
                _assign(stored, a)

    def set_optimizer(self, optimizer) -> None:
        from loom import optimizer as optimizers
        self._optimizer = optimizers.create(optimizer)
        self._states = {}

    def set_rescale(self, rescale: float) -> None:
        if self._optimizer is not None:
            self._optimizer.rescale_grad = float(rescale)

    def save_optimizer_states(self, fname: str, dump_optimizer: bool = False) -> None:
        from loom.optimizer import save_states
        if self._rank == 0:
            save_states(fname, self._optimizer, self._states)
        self.barrier()

    def load_optimizer_states(self, fname: str) -> None:
        from loom.optimizer import load_states
        self._states = load_states(fname, self._optimizer)
