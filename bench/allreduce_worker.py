"""The worker of bench_comm's all-reduce rows: times pushpull of 4 MB and
64 MB float32 arrays through the 'dist_sync_allreduce' store and prints, from
rank 0, a JSON line per size. Started by python -m loom.launch -n 2 -s 0 it
sums over the ring of the job's group (loom/kvstore/ranks.py); started by
mpirun -np 2, through Open MPI's MPI_Allreduce: the same store and the same
work over the two transports."""
import json
import sys
import time

import numpy as np

import loom as lm

quick = "--quick" in sys.argv
kv = lm.kv.create("dist_sync_allreduce")
for key, (mb, count) in enumerate([(4, 3 if quick else 30), (64, 1 if quick else 6)]):
    value = lm.nd.array(np.ones(mb * (1 << 20) // 4, np.float32))
    kv.init(key, value)
    kv.pushpull(key, value, out=value)  # warm-up
    kv.barrier()
    start = time.perf_counter()
    for _ in range(count):
        kv.pushpull(key, value, out=value)
    took = (time.perf_counter() - start) / count
    if kv.rank == 0:
        print(json.dumps({"bytes": mb << 20, "s_per_pushpull": took}), flush=True)
kv.close()
