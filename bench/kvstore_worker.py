"""The worker of bench_comm's KVStore rows (run under python -m loom.launch
-n 1 -s 1): times push + pull of 4 MB and 64 MB arrays through dist_sync
and prints a JSON line per size."""
import json
import sys
import time

import numpy as np

import loom as lm

quick = "--quick" in sys.argv
kv = lm.kv.create("dist_sync")
for key, (mb, count) in enumerate([(4, 5 if quick else 50), (64, 2 if quick else 8)]):
    value = lm.nd.array(np.ones(mb * (1 << 20) // 4, np.float32))
    kv.init(key, value)
    kv.pushpull(key, value)  # warm-up
    start = time.perf_counter()
    for _ in range(count):
        kv.pushpull(key, value)
    took = (time.perf_counter() - start) / count
    print(json.dumps({"bytes": mb << 20, "s_per_pushpull": took}), flush=True)
kv.close()
