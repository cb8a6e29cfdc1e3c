"""Multi-process jobs on this machine (TCP loopback), started by
python -m loom.launch: dist_sync training equals one process adding the
same gradients in the same order, bit for bit; a killed worker ends the
whole job, naming it, within the timeout; workers with uneven numbers of
batches end cleanly; dist_async converges. Skipped without ZeroMQ."""
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import loom as lm
from loom import launch
from loom.gluon import nn

pytestmark = pytest.mark.skipif(not lm._C.comm.available(), reason="built without ZeroMQ")

WORKER = Path(__file__).resolve().parent / "dist" / "train_worker.py"
MPIRUN = shutil.which("mpirun")


# The launcher's --timeout is how long a silent node may stay silent, start-up
# included. Jobs expected to succeed keep the launcher's default: five
# processes importing loom at once on a loaded 2-core CI machine can take
# over 10 s to start. Failure tests pass a short one.
def run_job(tmp_path, workers, servers, *worker_args, timeout=30, env=None):
    command = [sys.executable, "-m", "loom.launch", "-n", str(workers), "-s", str(servers), "--timeout", str(timeout),
               "--", sys.executable, str(WORKER), str(tmp_path), *worker_args]
    start = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=dict(os.environ, **(env or {})))
    return done, time.monotonic() - start


def single_process_reference(workers: int, steps: int):
    """The worker script's training in one process: each step, every
    worker's gradient from the same weights, summed in rank order (as the
    server does), then one SGD-momentum step scaled by 1 / (batch * workers)."""
    rng = np.random.default_rng(0)
    x_all = rng.standard_normal((64, 8)).astype(np.float32)
    y_all = rng.integers(0, 3, 64)
    lm.random.seed(0)
    net = nn.Sequential()
    net.add(nn.Dense(16, activation="relu", in_units=8), nn.Dense(3, in_units=16))
    net.initialize(init="xavier")
    params = list(net.collect_params().items())
    opt = lm.optimizer.SGD(learning_rate=0.5, momentum=0.9)
    opt.rescale_grad = 1.0 / (8 * workers)
    states = [opt.create_state(i, p.data()) for i, (_, p) in enumerate(params)]
    loss_fn = lm.gluon.loss.SoftmaxCrossEntropyLoss()
    for step in range(steps):
        grads = []
        for rank in range(workers):
            start = (step * workers + rank) * 8 % 64
            with lm.autograd.record():
                loss = loss_fn(net(lm.nd.array(x_all[start:start + 8])),
                               lm.nd.array(y_all[start:start + 8], dtype="int64"))
            loss.backward()
            grads.append([lm.nd.copy(p.grad()) for _, p in params])
        for i, (_, p) in enumerate(params):
            total = grads[0][i]
            for g in grads[1:]:
                total = total + g[i]
            opt.update(i, p.data(), total, states[i])
    return {name: p.data().asnumpy() for name, p in params}


@pytest.mark.parametrize("update_on_kvstore", ["0", "1"])
@pytest.mark.parametrize("split", [False, True])
def test_dist_sync_two_workers_two_servers_equal_one_process_bit_for_bit(tmp_path, update_on_kvstore, split):
    # split: every array of 10 elements or more is cut in two, a part on each server
    env = {"LOOM_KVSTORE_BIGARRAY_BOUND": "10"} if split else None
    done, _ = run_job(tmp_path, 2, 2, "dist_sync", update_on_kvstore, "6,6", env=env)
    assert done.returncode == 0, done.stderr
    w0, w1 = np.load(tmp_path / "worker0.npz"), np.load(tmp_path / "worker1.npz")
    want = single_process_reference(2, 6)
    for name, value in want.items():
        assert np.array_equal(w0[name], w1[name]), name
        assert np.array_equal(w0[name], value), name
    assert w0["last_loss"] < w0["first_loss"]


def test_a_killed_worker_ends_the_job_naming_it(tmp_path):
    done, took = run_job(tmp_path, 2, 1, "dist_sync", "0", "50,50", "2", timeout=5)
    assert done.returncode == 9
    assert "loom.launch: worker 1 exited with code 9; stopping the job" in done.stderr
    assert took < 30  # the launcher noticed; nothing waited for the 5 s timeout several times over
    assert not (tmp_path / "worker0.npz").exists()  # worker 0 was stopped, not left training


def test_a_worker_that_raises_fails_the_job(tmp_path):
    done, took = run_job(tmp_path, 2, 1, "dist_sync", "0", "50,50", timeout=30, env={"RAISE_AT": "2"})
    assert done.returncode == 1
    # whichever process the launcher sees exit first, the cause reached the others, named
    assert "worker 1 (node 3) failed: RuntimeError: bad batch" in done.stderr
    assert "; stopping the job" in done.stderr
    assert took < 25  # not the 30 s heartbeat timeout: the failure was reported, not discovered


PUSH_TWICE = """
import os, numpy as np, loom as lm
kv = lm.kv.create("dist_sync")
rank = kv.rank
kv.init(0, lm.nd.zeros((3,)))
kv.push(0, lm.nd.array(np.full(3, 1.0 + rank, np.float32)))   # round 1
kv.push(0, lm.nd.array(np.full(3, 10.0 * (1 + rank), np.float32)))  # round 2, before round 1 closed
out = lm.nd.zeros((3,))
kv.pull(0, out=out)
assert out.asnumpy().tolist() == [30.0, 30.0, 30.0], out.asnumpy()
kv.close()
"""


def test_a_worker_may_push_twice_before_a_round_closes(tmp_path):
    script = tmp_path / "push_twice.py"
    script.write_text(PUSH_TWICE)
    command = [sys.executable, "-m", "loom.launch", "-n", "2", "-s", "1", "--timeout", "10", "--", sys.executable,
               str(script)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_workers_with_uneven_numbers_of_batches_end_cleanly(tmp_path):
    done, _ = run_job(tmp_path, 2, 1, "dist_sync", "0", "3,6")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "worker0.npz").exists() and (tmp_path / "worker1.npz").exists()


def test_dist_async_converges(tmp_path):
    # Plain SGD: momentum and asynchrony together are unstable (each push
    # meets weights that moved since its gradient was taken).
    done, _ = run_job(tmp_path, 2, 1, "dist_async", "1", "100,100", env={"MOMENTUM": "0"})
    assert done.returncode == 0, done.stderr
    results = [np.load(tmp_path / f"worker{rank}.npz") for rank in range(2)]
    assert results[0]["init_loss"] == results[1]["init_loss"]  # both started from worker 0's weights
    assert results[0]["last_loss"] == results[1]["last_loss"]  # and both end with the servers' final weights
    assert results[0]["last_loss"] < 0.8 * results[0]["init_loss"]


@pytest.mark.skipif(MPIRUN is None or not lm._C.comm.mpi_available(), reason="no MPI (openmpi-bin, libopenmpi-dev)")
@pytest.mark.parametrize("update_on_kvstore", ["0", "1"])
def test_mpi_allreduce_store_equals_one_process_bit_for_bit(tmp_path, update_on_kvstore):
    """dist_sync_allreduce under mpirun: no servers, the same weights."""
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    command = [MPIRUN, "--oversubscribe", "-np", "2", "--mca", "btl", "self,tcp", sys.executable, str(WORKER),
               str(tmp_path), "dist_sync_allreduce", update_on_kvstore, "6,6"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    w0, w1 = np.load(tmp_path / "worker0.npz"), np.load(tmp_path / "worker1.npz")
    for name, value in single_process_reference(2, 6).items():
        assert np.array_equal(w0[name], w1[name]), name
        assert np.array_equal(w0[name], value), name


@pytest.mark.parametrize("update_on_kvstore", ["0", "1"])
def test_the_allreduce_store_under_the_launcher_equals_one_process_bit_for_bit(tmp_path, update_on_kvstore):
    """dist_sync_allreduce started by loom.launch -s 0: no MPI and no servers;
    the workers sum over the job's ZeroMQ group (a ring)."""
    done, _ = run_job(tmp_path, 2, 0, "dist_sync_allreduce", update_on_kvstore, "6,6")
    assert done.returncode == 0, done.stderr
    w0, w1 = np.load(tmp_path / "worker0.npz"), np.load(tmp_path / "worker1.npz")
    for name, value in single_process_reference(2, 6).items():
        assert np.array_equal(w0[name], w1[name]), name
        assert np.array_equal(w0[name], value), name
    assert w0["last_loss"] < w0["first_loss"]


def test_three_allreduce_workers_stay_equal_and_match_one_process(tmp_path):
    """With three ranks the ring adds each chunk starting at a different
    rank, so the sum may round apart from one process's rank-order sum;
    the workers still hold the same bits."""
    done, _ = run_job(tmp_path, 3, 0, "dist_sync_allreduce", "0", "6,6,6")
    assert done.returncode == 0, done.stderr
    results = [np.load(tmp_path / f"worker{r}.npz") for r in range(3)]
    for name, value in single_process_reference(3, 6).items():
        for other in results[1:]:
            assert np.array_equal(results[0][name], other[name]), name
        np.testing.assert_allclose(results[0][name], value, rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("workers", [2, 3])
def test_the_group_ring_sums_and_broadcasts_like_numpy(tmp_path, workers):
    """The ring all-reduce and the broadcast over the group (kvstore/ranks.py)
    on sizes from 0 to past the number of ranks, float and int dtypes."""
    command = [sys.executable, "-m", "loom.launch", "-n", str(workers), "-s", "0", "--timeout", "10", "--",
               sys.executable, str(Path(__file__).resolve().parent / "dist" / "collectives_worker.py"), str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    got = [np.load(tmp_path / f"collectives{r}.npz") for r in range(workers)]
    for key in got[0].files:
        for other in got[1:]:
            assert np.array_equal(got[0][key], other[key]), key
    for size in [0, 1, 2, 3, 7, 1001]:
        for dtype in ["float32", "float64", "int64"]:
            want = sum((np.arange(size) * (r + 1) + r * 0.25).astype(dtype) for r in range(workers))
            value = got[0][f"sum_{dtype}_{size}"]
            assert value.dtype == dtype and value.shape == (size,)
            np.testing.assert_array_equal(value, want.astype(dtype), err_msg=f"{dtype} {size}")
    np.testing.assert_array_equal(got[0]["sum_matrix"], np.full((4, 5), sum(range(1, workers + 1)), np.float32))
    np.testing.assert_array_equal(got[0]["broadcast"], np.zeros((2, 3)))
    np.testing.assert_array_equal(got[0]["broadcast_from_last"], [workers - 1.0])


def test_workers_calling_different_collectives_fail_at_once(tmp_path):
    command = [sys.executable, "-m", "loom.launch", "-n", "2", "-s", "0", "--timeout", "10", "--",
               sys.executable, str(Path(__file__).resolve().parent / "dist" / "collectives_worker.py"), str(tmp_path),
               "mismatch"]
    start = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "sent 'all_reduce#1/add0' while this worker waits for 'broadcast#1'" in done.stderr, done.stderr
    assert time.monotonic() - start < 30  # not the 600 s receive timeout


def test_a_killed_allreduce_worker_ends_the_job_naming_it(tmp_path):
    done, elapsed = run_job(tmp_path, 2, 0, "dist_sync_allreduce", "0", "6,6", "3", timeout=3)
    assert done.returncode != 0
    assert "worker 1" in done.stderr, done.stderr
    assert elapsed < 60


def test_the_allreduce_store_refuses_a_job_with_servers(tmp_path):
    done, _ = run_job(tmp_path, 1, 1, "dist_sync_allreduce", "0", "2")
    assert done.returncode != 0
    assert "the job has 1 server(s), which this store does not use; start it with -s 0" in done.stderr


@pytest.mark.parametrize("update_on_kvstore", ["0", "1"])
def test_a_checkpoint_resumes_training_bit_for_bit(tmp_path, update_on_kvstore):
    """3 steps, save the parameters and the optimizer's states (on the
    servers, with update_on_kvstore), a new job resumes for 3 more: the
    weights equal an uninterrupted 6-step run."""
    whole, first, second = tmp_path / "whole", tmp_path / "first", tmp_path / "second"
    for d in (whole, first, second):
        d.mkdir()
    assert run_job(whole, 2, 2, "dist_sync", update_on_kvstore, "6,6")[0].returncode == 0
    done, _ = run_job(first, 2, 2, "dist_sync", update_on_kvstore, "3,3", env={"SAVE_TO": str(first)})
    assert done.returncode == 0, done.stderr
    done, _ = run_job(second, 2, 2, "dist_sync", update_on_kvstore, "3,3",
                      env={"RESUME_FROM": str(first), "START_STEP": "3"})
    assert done.returncode == 0, done.stderr
    a, b = np.load(whole / "worker0.npz"), np.load(second / "worker1.npz")
    for name in ("0.weight", "0.bias", "1.weight", "1.bias"):
        assert np.array_equal(a[name], b[name]), name


def test_two_bit_compression_keeps_workers_equal_and_training(tmp_path):
    done, _ = run_job(tmp_path, 2, 2, "dist_sync", "0", "20,20", env={"COMPRESS": "1.0",
                                                                      "LOOM_KVSTORE_BIGARRAY_BOUND": "10"})
    assert done.returncode == 0, done.stderr
    w0, w1 = np.load(tmp_path / "worker0.npz"), np.load(tmp_path / "worker1.npz")
    for name in ("0.weight", "0.bias", "1.weight", "1.bias"):
        assert np.array_equal(w0[name], w1[name])
    assert w0["last_loss"] < 0.9 * w0["init_loss"]  # deterministic: sync rounds quantize alike every run


def test_the_launcher_maps_cluster_ranks_and_builds_ssh_commands(tmp_path):
    args, command = launch.parse(["-n", "2", "-s", "1", "--launcher", "mpi", "--scheduler", "h0:9000",
                                  "--node-host", "h1", "--", "python", "train.py"])
    argv, env = launch.managed_part(args, command, {"OMPI_COMM_WORLD_RANK": "3", "OMPI_COMM_WORLD_SIZE": "4"})
    assert argv == ["python", "train.py"]
    assert (env["LOOM_ROLE"], env["LOOM_RANK"], env["LOOM_SCHEDULER"], env["LOOM_NODE_HOST"]) == ("worker", "1", "h0:9000", "h1")
    argv, env = launch.managed_part(args, command, {"OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_SIZE": "4"})
    assert argv[-2:] == ["-m", "loom.kvstore.server"] and env["LOOM_ROLE"] == "server"
    with pytest.raises(SystemExit, match="OMPI_COMM_WORLD_SIZE=5, but -n 2 -s 1 needs 4 processes"):
        launch.managed_part(args, command, {"OMPI_COMM_WORLD_RANK": "0", "OMPI_COMM_WORLD_SIZE": "5"})
    args, command = launch.parse(["-n", "2", "-s", "1", "--launcher", "slurm", "--scheduler", "h0:9000", "--",
                                  "python", "t.py"])
    with pytest.raises(SystemExit, match="found none of SLURM_PROCID: run it under srun"):
        launch.managed_part(args, command, {})
    hosts = tmp_path / "hosts"
    hosts.write_text("# the cluster\nnodeA slots=2\nnodeB\n")
    args, command = launch.parse(["-n", "2", "-s", "1", "--launcher", "ssh", "-H", str(hosts), "--", "python", "t.py"])
    cmds = launch.ssh_commands(args, command, launch.read_hosts(str(hosts)))
    assert [name for name, _ in cmds] == ["the scheduler on nodeA", "server 0 on nodeB", "worker 0 on nodeA",
                                          "worker 1 on nodeB"]
    assert cmds[3][1][:5] == ["ssh", "-tt", "-o", "BatchMode=yes", "nodeB"]
    assert "LOOM_ROLE=worker LOOM_RANK=1" in cmds[3][1][5] and "LOOM_SCHEDULER=nodeA:9091" in cmds[3][1][5]
    assert cmds[3][1][5].endswith("python t.py")


def test_a_dist_store_outside_a_launched_job_says_how_to_start_one(monkeypatch):
    monkeypatch.delenv("LOOM_ROLE", raising=False)
    with pytest.raises(ValueError, match="LOOM_ROLE is not set .python -m loom.launch sets it"):
        lm.kv.create("dist_sync")



@pytest.mark.skipif(not os.path.exists("/usr/share/datasets/fashion-mnist"), reason="dataset-fashion-mnist is not installed")
def test_the_demo_trains_data_parallel_under_the_launcher(tmp_path):
    pytest.importorskip("tqdm")
    pytest.importorskip("matplotlib")
    demo = Path(__file__).resolve().parents[2] / "examples" / "fashion_mnist.py"
    command = [sys.executable, "-m", "loom.launch", "-n", "2", "-s", "1", "--", sys.executable, str(demo),
               "--epochs", "1", "--limit", "2048", "--batch", "32", "--kvstore", "dist_sync", "--out",
               str(tmp_path / "run")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "(2 workers)" in done.stdout
    accuracy = float(done.stdout.split("final test accuracy ")[1].split()[0])
    assert accuracy > 0.5  # one epoch on 2048 samples, as the single-process smoke test
    assert (tmp_path / "run.params").stat().st_size > 0
