"""python -m loom.launch --launcher ssh, for real: a private sshd on a free
loopback port (its own host key, one authorised client key, this user
only) stands for the cluster's hosts; the host file names it twice, as
127.0.0.1 and localhost. The dist_sync job it starts must give the weights
the same job gives under the local launcher (and one process computes),
bit for bit; a worker that fails over ssh must end the job, naming it.
Skipped without sshd (Debian's openssh-server) or ZeroMQ."""
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import loom as lm

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)
pytestmark = [
    pytest.mark.skipif(not lm._C.comm.available(), reason="built without ZeroMQ"),
    pytest.mark.skipif(SSHD is None or shutil.which("ssh") is None or shutil.which("ssh-keygen") is None,
                       reason="needs sshd, ssh and ssh-keygen (apt-get install openssh-server openssh-client)"),
]

WORKER = Path(__file__).resolve().parent / "dist" / "train_worker.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    d = tmp_path_factory.mktemp("sshd")
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True)
    (d / "authorized_keys").write_text((d / "client_key.pub").read_text())
    os.chmod(d / "authorized_keys", 0o600)
    port = _free_port()
    config = d / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {d / 'host_key'}",
        f"AuthorizedKeysFile {d / 'authorized_keys'}", f"PidFile {d / 'sshd.pid'}",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no", "PubkeyAuthentication yes",
        "PermitRootLogin prohibit-password", "UsePAM no", "StrictModes no", "LogLevel ERROR", ""]))
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
    log = open(d / "sshd.log", "w")
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"sshd did not start: {(d / 'sshd.log').read_text()}")
            time.sleep(0.05)
    options = (f"-p {port} -i {d / 'client_key'} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
               "-o LogLevel=ERROR")
    hosts = d / "hosts"
    hosts.write_text("127.0.0.1\nlocalhost\n")
    yield {"options": options, "hosts": hosts, "dir": d}
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


def _ssh_job(sshd, tmp_path, *worker_args, workers=2, servers=2):
    command = [sys.executable, "-m", "loom.launch", "-n", str(workers), "-s", str(servers), "--launcher", "ssh",
               "-H", str(sshd["hosts"]), "--port", str(_free_port()), "--ssh-options", sshd["options"],
               "--timeout", "10", "--", sys.executable, str(WORKER), str(tmp_path), *worker_args]
    return subprocess.run(command, capture_output=True, text=True, timeout=180)


def test_dist_sync_over_ssh_equals_one_process_bit_for_bit(sshd, tmp_path):
    from test_distributed import single_process_reference
    done = _ssh_job(sshd, tmp_path, "dist_sync", "0", "6,6")
    assert done.returncode == 0, done.stderr + (sshd["dir"] / "sshd.log").read_text()
    w0, w1 = np.load(tmp_path / "worker0.npz"), np.load(tmp_path / "worker1.npz")
    for name, value in single_process_reference(2, 6).items():
        assert np.array_equal(w0[name], w1[name]), name
        assert np.array_equal(w0[name], value), name


def test_a_worker_failing_over_ssh_ends_the_job_naming_it(sshd, tmp_path):
    start = time.monotonic()
    # worker 1 (the fifth process, on the second host) exits with 9 at its step 2; ssh passes the code on
    done = _ssh_job(sshd, tmp_path, "dist_sync", "0", "50,50", "2")
    assert done.returncode == 9, done.stderr
    assert "worker 1 on 127.0.0.1 exited with code 9; stopping the job" in done.stderr, done.stderr
    assert not (tmp_path / "worker0.npz").exists()  # worker 0 was stopped over its ssh, not left training
    assert time.monotonic() - start < 60
