"""The worker of bench/dist_scaling.py (run under python -m loom.launch):
trains the demo's LeNet on Fashion-MNIST-shaped batches with a dist_sync
Trainer and prints, from worker 0, samples/s of the whole job and the
share of each step spent all-reducing gradients."""
import json
import sys
import time

import numpy as np

import loom as lm
from bench.gluon_train import BATCH, images, loom_lenet

steps = int(sys.argv[1])
kv_type = sys.argv[2]
lm.random.seed(0)
net = loom_lenet()
net.initialize(lm.gluon.init.Xavier())
net.hybridize()
trainer = lm.gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.05, "momentum": 0.9}, kvstore=kv_type)
kv = trainer.kvstore
rank, workers = (kv.rank, kv.num_workers) if kv is not None else (0, 1)
x_np, y_np = images(BATCH * 4)
batches = [(lm.nd.array(x_np[i:i + BATCH]), lm.nd.array(y_np[i:i + BATCH], dtype="int64"))
           for i in range(0, len(x_np), BATCH)]
loss_fn = lm.gluon.loss.SoftmaxCrossEntropyLoss()
comm = 0.0
for step in range(steps + 3):
    if step == 3:  # after warm-up
        lm.nd.waitall()
        start, comm = time.perf_counter(), 0.0
    x, y = batches[step % len(batches)]
    with lm.autograd.record():
        loss = loss_fn(net(x), y)
    loss.backward()
    lm.nd.waitall()
    t = time.perf_counter()
    trainer.allreduce_grads()
    lm.nd.waitall()
    comm += time.perf_counter() - t
    trainer.update(BATCH)
lm.nd.waitall()
took = time.perf_counter() - start
if rank == 0:
    print(json.dumps({"workers": workers, "samples_per_s": steps * BATCH * workers / took,
                      "step_ms": took / steps * 1e3, "allreduce_ms": comm / steps * 1e3}), flush=True)
