"""A worker of the distributed tests (run by python -m loom.launch): trains a
small MLP with a Gluon Trainer over a dist KVStore on its shard of a fixed
data set, then saves its final weights as <out>/worker<rank>.npz.

    train_worker.py OUT KVSTORE UPDATE_ON_KVSTORE STEPS_RANK0,STEPS_RANK1,... [die_at_step]"""
import os
import sys

import numpy as np

import loom as lm
from loom.gluon import nn

out, kvstore, on_kv, steps = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4]
die_at = int(sys.argv[5]) if len(sys.argv) > 5 else -1
if "LOOM_RANK" in os.environ:  # started by loom.launch
    rank, workers = int(os.environ["LOOM_RANK"]), int(os.environ["LOOM_NUM_WORKER"])
else:  # dist_sync_allreduce started by mpirun: MPI's rank and size
    rank, workers = int(os.environ["OMPI_COMM_WORLD_RANK"]), int(os.environ["OMPI_COMM_WORLD_SIZE"])
my_steps = int(steps.split(",")[rank])

rng = np.random.default_rng(0)
x_all = rng.standard_normal((64, 8)).astype(np.float32)
y_all = rng.integers(0, 3, 64)

lm.random.seed(rank)  # different initial weights per worker: the store's (worker 0's) must win
net = nn.Sequential()
net.add(nn.Dense(16, activation="relu", in_units=8), nn.Dense(3, in_units=16))
net.initialize(init="xavier")
if os.environ.get("RESUME_FROM"):  # before the Trainer, whose store takes worker 0's values
    net.load_parameters(os.path.join(os.environ["RESUME_FROM"], "net.params"))
trainer = lm.gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": float(os.environ.get("LR", "0.5")),
                                                        "momentum": float(os.environ.get("MOMENTUM", "0.9"))},
                           kvstore=kvstore, update_on_kvstore=on_kv)
if os.environ.get("COMPRESS"):
    trainer.kvstore.set_gradient_compression({"type": "2bit", "threshold": float(os.environ["COMPRESS"])})
loss_fn = lm.gluon.loss.SoftmaxCrossEntropyLoss()
batch = 8


def full_loss() -> float:
    return float(loss_fn(net(lm.nd.array(x_all)), lm.nd.array(y_all, dtype="int64")).mean().asnumpy())


first_step = int(os.environ.get("START_STEP", "0"))
if os.environ.get("RESUME_FROM"):  # a checkpoint: the optimizer's states (the parameters came before the Trainer)
    trainer.load_states(os.path.join(os.environ["RESUME_FROM"], "trainer.states"))
first_loss = None
init_loss = full_loss()  # the Trainer has synchronised the weights: worker 0's on every worker
for step in range(first_step, first_step + my_steps):
    if step == die_at and rank == 1:
        os._exit(9)  # killed mid-run: no goodbye
    if step == int(os.environ.get("RAISE_AT", "-1")) and rank == 1:
        raise RuntimeError("bad batch")  # an uncaught exception: the job must fail, not wait for this worker
    start = (step * workers + rank) * batch % len(x_all)
    x = lm.nd.array(x_all[start:start + batch])
    y = lm.nd.array(y_all[start:start + batch], dtype="int64")
    with lm.autograd.record():
        loss = loss_fn(net(x), y)
    loss.backward()
    trainer.step(batch)
    if first_loss is None:
        first_loss = full_loss()  # after the first step: every worker then holds worker 0's weights
if os.environ.get("SAVE_TO"):
    trainer.save_states(os.path.join(os.environ["SAVE_TO"], "trainer.states"))
    if rank == 0:
        net.save_parameters(os.path.join(os.environ["SAVE_TO"], "net.params"))
if kvstore == "dist_async":  # the servers hold the weights: take their final ones, after everyone's last push
    trainer.kvstore.barrier()
    for i, p in enumerate(net.collect_params().values()):
        trainer.kvstore.pull(i, p.list_data())
np.savez(os.path.join(out, f"worker{rank}.npz"), init_loss=init_loss, first_loss=first_loss, last_loss=full_loss(),
         **{name: p.data().asnumpy() for name, p in net.collect_params().items()})
