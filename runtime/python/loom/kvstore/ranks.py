"""The ranks of a 'dist_sync_allreduce' job and the four collectives its
store needs (barrier, broadcast, a host all-reduce, a GPU all-reduce),
over either of the two ways a job can be started:

- MpiRanks: mpirun or srun. MPI's ranks; MPI_Allreduce and MPI_Bcast on
  the host; NCCL's unique id sent by MPI_Bcast.
- GroupRanks: python -m loom.launch -s 0 (with any of its launchers: local,
  ssh, mpi, slurm). The workers of the job's ZeroMQ group
  (microkernel/comm/group.h), which watches them: a worker that dies ends
  every wait of the others with an error naming it. The host all-reduce is
  a ring (below); NCCL's unique id is sent over the group.

Every rank must call the same collectives in the same order, as with MPI."""
from __future__ import annotations

import numpy as np

from loom import _C, nd
from loom.context import cpu

# How long a worker waits for a message of a collective before it reports
# the job stuck (a dead worker ends the wait sooner, through the group).
RECEIVE_TIMEOUT_S = 600.0


class MpiRanks:
    """The ranks of a job started by mpirun or srun."""

    def __init__(self):
        self.rank, self.size = _C.comm.mpi_world()

    def barrier(self) -> None:
        _C.comm.mpi_barrier()

    def broadcast(self, array, root: int = 0):
        return _C.comm.mpi_broadcast(array, root)

    def all_reduce(self, array):
        return _C.comm.mpi_allreduce(array)

    def all_reduce_flat(self, flat: np.ndarray) -> np.ndarray:
        """The sum over the ranks of a writable 1-D float32/float64 array."""
        return _C.comm.mpi_allreduce(nd.from_dlpack(flat)).asnumpy()

    def nccl_all_reduce(self, array):
        return _C.comm.nccl_mpi_all_reduce(array)

    def fail(self, why: str) -> None:
        """Raises: a rank that ends with an error makes mpirun or srun stop
        the whole job."""
        raise RuntimeError(f"dist_sync_allreduce: {why}")

    def close(self) -> None:
        """Nothing to leave: MPI is finalised at exit."""


class GroupRanks:
    """The workers of a job started by loom.launch, as ranks.

    The host all-reduce is a ring: the flat array is cut into one chunk per
    rank; in n - 1 steps each rank passes a chunk to the next rank, which
    adds its own (reduce-scatter), after which rank r holds the whole sum of
    chunk r + 1; in n - 1 more steps the sums travel round (all-gather).
    Each rank sends and receives 2 (n - 1) / n of the array, whatever n is,
    where gathering at one rank would load that rank n - 1 times. Each
    chunk is summed in a fixed order and then copied, so every rank ends
    with the same bits, run after run."""

    def __init__(self, group):
        self._group = group
        self.rank, self.size = group.rank, group.num_workers
        self._calls = 0      # collectives so far: every rank counts the same
        self._early = {}     # tag -> (sender node, meta, array): messages that came before their turn
        self._nccl = None

    def barrier(self) -> None:
        self._joined().barrier("workers")

    def fail(self, why: str) -> None:
        """Fails the job: every node's waits end with `why`."""
        if self._group is not None:
            self._group.fail(why)
            self._group = None

    def close(self) -> None:
        """Leaves the job normally (the group's goodbye to the scheduler),
        after a barrier: a worker's last message may still be on its way,
        and leaving drops what has not gone within a second. The NCCL
        communicator, if any, stays for the process's life, like MPI's
        (rank_collectives.h): NCCL is not torn down under a running job."""
        group, self._group = self._group, None
        if group is not None and not getattr(group, "failure", ""):
            group.barrier("workers")

    def broadcast(self, array, root: int = 0):
        """A new host array: rank `root`'s `array` (every rank passes one of
        the same shape and dtype)."""
        tag = self._tag("broadcast")
        if self.rank == root:
            host = nd.copy(array.as_in_context(cpu()))  # any dtype: the message carries the array's bytes
            for r in range(self.size):
                if r != root:
                    self._send(r, tag, array=host)
            return host
        got = self._receive(tag, root)
        if tuple(got.shape) != tuple(array.shape) or got.dtype != array.dtype:
            raise ValueError(f"broadcast: worker {root} sent {tuple(got.shape)} {got.dtype}, but this worker's "
                             f"array is {tuple(array.shape)} {array.dtype}; every rank must pass the same shape")
        return got

    def all_reduce(self, array):
        """A new host array: the sum of `array` over every rank (a ring)."""
        return nd.from_dlpack(self.all_reduce_flat(array.asnumpy().reshape(-1)).reshape(array.shape))

    def all_reduce_flat(self, flat: np.ndarray) -> np.ndarray:
        """The sum over the ranks of a writable 1-D array, computed in place
        (and returned). A received chunk is read where the message put it;
        a sent chunk is copied, since the ring writes the array again before
        ZeroMQ may have sent it."""
        tag = self._tag("all_reduce")
        n, r = self.size, self.rank
        bounds = [len(flat) * c // n for c in range(n + 1)]

        def chunk(c):
            c %= n
            return flat[bounds[c]:bounds[c + 1]]

        def sendable(part):
            return nd.copy(nd.from_dlpack(part))
        after, before = (r + 1) % n, (r - 1) % n
        for step in range(n - 1):  # reduce-scatter: add the previous rank's partial sum to ours
            self._send(after, f"{tag}/add{step}", array=sendable(chunk(r - step)))
            mine = chunk(r - step - 1)
            np.add(mine, self._receive(f"{tag}/add{step}", before, like=mine), out=mine)
        for step in range(n - 1):  # all-gather: pass the finished sums round
            self._send(after, f"{tag}/copy{step}", array=sendable(chunk(r + 1 - step)))
            mine = chunk(r - step)
            mine[...] = self._receive(f"{tag}/copy{step}", before, like=mine)
        return flat

    def nccl_all_reduce(self, array):
        """A new array on `array`'s GPU: the sum over every rank through one
        NCCL communicator, made by the first call with rank 0's unique id
        sent over the group."""
        if self._nccl is None:
            self._nccl = _C.comm.RankCollectives(self.rank, self.size, self._share_nccl_id)
        return self._nccl.all_reduce(array)

    def _share_nccl_id(self, mine: bytes) -> bytes:
        tag = self._tag("nccl id")
        if self.rank == 0:
            for r in range(1, self.size):
                self._send(r, tag, meta=mine)
            return mine
        return self._receive(tag, 0, meta=True)

    # ------------------------------------------------------------ messages
    def _tag(self, what: str) -> str:
        self._calls += 1
        return f"{what}#{self._calls}"

    @staticmethod
    def _check_turn(group, key: str, sender: int, tag: str) -> None:
        """A message of this collective's number under another name, or of
        an earlier number, means the workers called different collectives:
        an error now, instead of waiting for a message that never comes."""
        name, _, rest = key.partition("#")
        want_name, _, want_rest = tag.partition("#")
        number, want = int(rest.split("/")[0]), int(want_rest.split("/")[0])
        if number < want or (number == want and name != want_name):
            raise RuntimeError(f"dist_sync_allreduce: {group.describe(sender)} sent {key!r} while this worker "
                               f"waits for {tag!r}; every worker must call the same collectives in the same order "
                               "(push and init the same keys, in the same order)")

    def _joined(self):
        if self._group is None:
            raise RuntimeError("dist_sync_allreduce: this store was closed (close(), fail() or the end of the job)")
        return self._group

    def _send(self, rank: int, tag: str, array=None, meta: bytes = b"") -> None:
        group = self._joined()
        group.send(group.worker_node(rank), tag, meta, array)

    def _receive(self, tag: str, rank: int, like=None, meta: bool = False):
        """The message `tag` from worker `rank`: its meta bytes, or its array
        as NumPy (checked against the size and dtype of the NumPy array
        `like`) or as an NDArray. Messages of later collectives (another
        sender may be a step ahead) wait their turn."""
        group = self._joined()
        node = group.worker_node(rank)
        for key, (sender, _, _) in self._early.items():  # kept from before: are they still in turn?
            self._check_turn(group, key, sender, tag)
        while tag not in self._early:
            _, sender, key, body, _, array = group.recv(RECEIVE_TIMEOUT_S)
            self._check_turn(group, key, sender, tag)
            self._early[key] = (sender, body, array)
        sender, body, array = self._early.pop(tag)
        if sender != node:
            raise RuntimeError(f"dist_sync_allreduce: {tag!r} came from {group.describe(sender)}, expected "
                               f"{group.describe(node)}; the workers called different collectives")
        if meta:
            return body
        if array is None:
            raise RuntimeError(f"dist_sync_allreduce: {tag!r} from {group.describe(node)} carried no array")
        if like is None:
            return array
        got = np.from_dlpack(array).reshape(-1)  # read-only, where the message put it
        if got.size != like.size or got.dtype != like.dtype:
            raise RuntimeError(f"dist_sync_allreduce: {tag!r} from {group.describe(node)} held {got.size} "
                               f"{got.dtype} values, expected {like.size} {like.dtype}; the workers pushed "
                               "different shapes or dtypes for one key")
        return got
