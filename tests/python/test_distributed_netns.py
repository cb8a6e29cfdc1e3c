"""A job across two "hosts": two network namespaces joined by a veth pair,
each with its own address. The scheduler, the server and worker 0 run on
host A and worker 1 on host B, so nodes must listen on real interfaces
and reach each other by the advertised LOOM_NODE_HOST, as on a cluster.

- dist_sync across the hosts equals one process, bit for bit.
- Cutting the link mid-run (a lost host, where no process exits) ends
  every process with an error within the heartbeat timeout, never a hang.

Needs root and `ip netns`; skipped otherwise."""
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import loom as lm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_distributed import WORKER, single_process_reference  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def _netns_works() -> bool:
    if os.geteuid() != 0 or not lm._C.comm.available():
        return False
    name = f"loomprobe{os.getpid()}"
    try:
        if _ip("netns", "add", name, check=False).returncode != 0:
            return False
        _ip("netns", "del", name, check=False)
        return True
    except FileNotFoundError:
        return False


pytestmark = pytest.mark.skipif(not _netns_works(), reason="needs root and `ip netns` (network namespaces)")


@pytest.fixture
def two_hosts():
    tag = os.getpid() % 100000
    a, b = f"loomA{tag}", f"loomB{tag}"
    va, vb = f"lva{tag}", f"lvb{tag}"
    _ip("netns", "add", a)
    _ip("netns", "add", b)
    try:
        _ip("link", "add", va, "type", "veth", "peer", "name", vb)
        _ip("link", "set", va, "netns", a)
        _ip("link", "set", vb, "netns", b)
        _ip("-n", a, "addr", "add", "10.77.0.1/24", "dev", va)
        _ip("-n", b, "addr", "add", "10.77.0.2/24", "dev", vb)
        for ns, dev in ((a, va), (b, vb)):
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        yield {"A": (a, "10.77.0.1"), "B": (b, "10.77.0.2"), "link_B": vb}
    finally:
        _ip("netns", "del", a, check=False)  # takes the veth pair with it
        _ip("netns", "del", b, check=False)


def start(host, role, rank, out_dir, worker_args, timeout=3.0, env=None):
    ns, address = host
    variables = {"LOOM_ROLE": role, "LOOM_RANK": str(rank), "LOOM_NUM_WORKER": "2", "LOOM_NUM_SERVER": "1",
                 "LOOM_SCHEDULER": "10.77.0.1:9123", "LOOM_NODE_HOST": address, "LOOM_TIMEOUT": str(timeout),
                 "LOOM_HEARTBEAT": "0.2", **(env or {})}
    argv = ([sys.executable, str(WORKER), str(out_dir), *worker_args] if role == "worker"
            else [sys.executable, "-m", "loom.kvstore.server"])
    command = ["ip", "netns", "exec", ns, "env", *[f"{k}={v}" for k, v in variables.items()],
               f"PATH={os.environ['PATH']}", *argv]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)


def test_a_job_across_two_hosts_equals_one_process(tmp_path, two_hosts):
    args = ["dist_sync", "0", "6,6"]
    procs = [start(two_hosts["A"], "scheduler", 0, tmp_path, args), start(two_hosts["A"], "server", 0, tmp_path, args),
             start(two_hosts["A"], "worker", 0, tmp_path, args), start(two_hosts["B"], "worker", 1, tmp_path, args)]
    results = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0, err
    w0, w1 = np.load(tmp_path / "worker0.npz"), np.load(tmp_path / "worker1.npz")
    for name, value in single_process_reference(2, 6).items():
        assert np.array_equal(w0[name], value) and np.array_equal(w1[name], value), name


def test_cutting_a_host_off_ends_every_process_within_the_timeout(tmp_path, two_hosts):
    args = ["dist_sync", "0", "100000,100000"]  # trains until stopped
    procs = [start(two_hosts["A"], "scheduler", 0, tmp_path, args), start(two_hosts["A"], "server", 0, tmp_path, args),
             start(two_hosts["A"], "worker", 0, tmp_path, args), start(two_hosts["B"], "worker", 1, tmp_path, args)]
    time.sleep(4.0)  # the job is training
    assert all(p.poll() is None for p in procs), [p.communicate()[1] for p in procs if p.poll() is not None]
    _ip("-n", two_hosts["B"][0], "link", "set", two_hosts["link_B"], "down")  # host B is gone; nobody exits
    cut = time.monotonic()
    errors = []
    for p in procs:
        try:
            _, err = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            pytest.fail("a process was still running 30 s after its peer was cut off (a hang)")
        assert p.returncode != 0, err
        errors.append(err)
    assert time.monotonic() - cut < 20  # the 3 s timeout, plus start-up of the error paths
    assert "worker 1 (node 3) stopped answering" in errors[0]  # the scheduler names the lost node
    assert "worker 1 (node 3) stopped answering" in errors[2]  # and worker 0 learns it
    assert "the scheduler (node 0) stopped answering" in errors[3]  # the cut-off worker fails on its own
