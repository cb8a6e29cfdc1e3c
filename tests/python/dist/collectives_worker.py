"""A worker of the dist_sync_allreduce tests under loom.launch -s 0: runs the
store's collectives over the job's ZeroMQ group (loom/kvstore/ranks.py) on
arrays whose values depend on the rank, and saves what it got as
<out>/collectives<rank>.npz.

    collectives_worker.py OUT [mismatch]

With `mismatch`, worker 1 broadcasts while the others all-reduce."""
import os
import sys

import numpy as np

import loom as lm

out = sys.argv[1]
kv = lm.kv.create("dist_sync_allreduce")
rank, ranks = kv.rank, kv._ranks
if sys.argv[2:] == ["mismatch"]:
    if rank == 1:
        ranks.broadcast(lm.nd.ones((3,)), 0)
    else:
        ranks.all_reduce(lm.nd.ones((3,)))
got = {}
# sizes below, at and past the number of ranks: some ring chunks are empty
for size in [0, 1, 2, 3, 7, 1001]:
    for dtype in ["float32", "float64", "int64"]:
        mine = (np.arange(size) * (rank + 1) + rank * 0.25).astype(dtype)
        got[f"sum_{dtype}_{size}"] = ranks.all_reduce(lm.nd.array(mine, dtype=dtype)).asnumpy()
got["sum_matrix"] = ranks.all_reduce(lm.nd.array(np.full((4, 5), rank + 1.0, np.float32))).asnumpy()
got["broadcast"] = ranks.broadcast(lm.nd.array(np.full((2, 3), rank * 10.0)), 0).asnumpy()
got["broadcast_from_last"] = ranks.broadcast(lm.nd.array([float(rank)]), kv.num_workers - 1).asnumpy()
kv.barrier()
np.savez(os.path.join(out, f"collectives{rank}.npz"), **got)
