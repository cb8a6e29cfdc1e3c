"""python -m loom.launch: start a distributed job (a scheduler, servers and
workers) and end it as one.

    python -m loom.launch -n 2 -s 1 -- python train.py --epochs 3
    python -m loom.launch -n 4 -s 2 --launcher ssh -H hosts.txt -- python train.py
    mpirun -np 5 python -m loom.launch -n 3 -s 1 --launcher mpi --scheduler node0:9091 -- python train.py
    srun -n 5 python -m loom.launch -n 3 -s 1 --launcher slurm --scheduler node0:9091 -- python train.py

The workers run the command. The scheduler and the servers run loom's
own entry point (python -m loom.kvstore.server). Each process learns its
part from the environment (docs/distributed.md):
- LOOM_ROLE and LOOM_RANK;
- LOOM_NUM_WORKER and LOOM_NUM_SERVER;
- LOOM_SCHEDULER (host:port) and LOOM_NODE_HOST;
- LOOM_TIMEOUT and LOOM_HEARTBEAT.

local and ssh start every process themselves and watch them. When one
exits with an error, the others are stopped (SIGTERM, then SIGKILL after
a grace period). The launcher then exits with that process's code and a
line naming it. The processes also watch each other: a worker that dies
without an exit code (a lost host) fails the rest through the heartbeat
timeout.

Under mpirun or srun, every process runs this module. It reads its rank
from the cluster manager's environment and maps it to a part: rank 0 is
the scheduler, ranks 1..S are the servers, the rest are workers. It then
replaces itself with that part's command."""
from __future__ import annotations

import argparse
import os
import shlex
import signal
import socket
import subprocess
import sys
import time

SERVER_COMMAND = [sys.executable, "-m", "loom.kvstore.server"]
GRACE_S = 5.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def roles(num_workers: int, num_servers: int):
    """(role, rank) of every process, in node order."""
    return ([("scheduler", 0)] + [("server", s) for s in range(num_servers)]
            + [("worker", w) for w in range(num_workers)])


def environment(role: str, rank: int, args, scheduler: str, host: str) -> dict:
    return {"LOOM_ROLE": role, "LOOM_RANK": str(rank), "LOOM_NUM_WORKER": str(args.num_workers),
            "LOOM_NUM_SERVER": str(args.num_servers), "LOOM_SCHEDULER": scheduler, "LOOM_NODE_HOST": host,
            "LOOM_TIMEOUT": str(args.timeout), "LOOM_HEARTBEAT": str(args.heartbeat)}


def part_command(role: str, command: list[str]) -> list[str]:
    return command if role == "worker" else SERVER_COMMAND


class Job:
    """The processes of a job, watched until they all end or one fails."""

    def __init__(self):
        self.procs: list = []  # (name, Popen)

    def start(self, name: str, argv: list[str], env: dict, stdin=None) -> None:
        # Each process leads its own process group, so stopping it stops its children too.
        self.procs.append((name, subprocess.Popen(argv, env=env, start_new_session=True, stdin=stdin)))

    def stop_all(self) -> None:
        for _, p in self.procs:
            if p.poll() is None:
                _signal_group(p, signal.SIGTERM)
        deadline = time.monotonic() + GRACE_S
        for _, p in self.procs:
            try:
                p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(p, signal.SIGKILL)
                p.wait()

    def watch(self, finish_timeout: float) -> int:
        """0 when every worker ended well and the rest followed; otherwise
        the failing process's code, after stopping the others."""
        workers_done_at = None
        while True:
            for name, p in self.procs:
                code = p.poll()
                if code is not None and code != 0:
                    how = (f"exited with code {code}" if code > 0
                           else f"was killed by {signal.Signals(-code).name}")
                    print(f"loom.launch: {name} {how}; stopping the job", file=sys.stderr)
                    self.stop_all()
                    return code if code > 0 else 128 - code  # killed by a signal: 128 + its number
            running = [(n, p) for n, p in self.procs if p.poll() is None]
            if not running:
                return 0
            if all(not n.startswith("worker") for n, _ in running):
                workers_done_at = workers_done_at or time.monotonic()
                if time.monotonic() - workers_done_at > finish_timeout:
                    names = ", ".join(n for n, _ in running)
                    print(f"loom.launch: every worker finished, but {names} did not end within "
                          f"{finish_timeout:.0f} s; stopping it", file=sys.stderr)
                    self.stop_all()
                    return 1
            time.sleep(0.05)


def _signal_group(p, sig) -> None:
    try:
        os.killpg(p.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def launch_local(args, command: list[str]) -> int:
    scheduler = args.scheduler or f"127.0.0.1:{free_port()}"
    job = Job()
    for role, rank in roles(args.num_workers, args.num_servers):
        env = dict(os.environ, **environment(role, rank, args, scheduler, "127.0.0.1"))
        job.start(f"{role} {rank}" if role != "scheduler" else "the scheduler", part_command(role, command), env)
    return _watched(job, args)


def read_hosts(path: str) -> list[str]:
    with open(path) as f:
        hosts = [line.split()[0] for line in f if line.strip() and not line.lstrip().startswith("#")]
    if not hosts:
        raise SystemExit(f"loom.launch: the host file {path} lists no hosts")
    return hosts


def ssh_commands(args, command: list[str], hosts: list[str]) -> list[tuple[str, list[str]]]:
    """(name, argv) per process: the scheduler on the first host, then
    servers and workers round-robin over the hosts."""
    scheduler = args.scheduler or f"{hosts[0]}:{args.port}"
    cwd = os.getcwd()
    out = []
    for i, (role, rank) in enumerate(roles(args.num_workers, args.num_servers)):
        host = hosts[0] if role == "scheduler" else hosts[i % len(hosts)]
        env = environment(role, rank, args, scheduler, host)
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        remote = f"cd {shlex.quote(cwd)} && {exports} {shlex.join(part_command(role, command))}"
        name = f"{role} {rank}" if role != "scheduler" else "the scheduler"
        # -tt: the remote processes get a terminal, which closes (SIGHUP) when
        # this ssh is stopped, so stopping the job stops them too.
        ssh = ["ssh", "-tt", "-o", "BatchMode=yes", *shlex.split(args.ssh_options or "")]
        out.append((f"{name} on {host}", [*ssh, host, remote]))
    return out


def launch_ssh(args, command: list[str]) -> int:
    if not args.hostfile:
        raise SystemExit("loom.launch: --launcher ssh needs -H HOSTFILE (one host per line)")
    job = Job()
    for name, argv in ssh_commands(args, command, read_hosts(args.hostfile)):
        if args.dry_run:
            print(shlex.join(argv))
        else:
            job.start(name, argv, dict(os.environ), stdin=subprocess.DEVNULL)
    return 0 if args.dry_run else _watched(job, args)


RANK_VARIABLES = {"mpi": ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"), "slurm": ("SLURM_PROCID",)}
SIZE_VARIABLES = {"mpi": ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE"), "slurm": ("SLURM_NTASKS",)}


def managed_part(args, command: list[str], environ=os.environ) -> tuple[list[str], dict]:
    """Under mpirun / srun: this process's (argv, env) from the manager's rank."""
    def first(names):
        for n in names:
            if environ.get(n):
                return n, int(environ[n])
        raise SystemExit(f"loom.launch: --launcher {args.launcher} found none of {', '.join(names)}: run it "
                         f"under {'mpirun' if args.launcher == 'mpi' else 'srun'}")
    _, rank = first(RANK_VARIABLES[args.launcher])
    size_name, size = first(SIZE_VARIABLES[args.launcher])
    needed = 1 + args.num_servers + args.num_workers
    if size != needed:
        raise SystemExit(f"loom.launch: {size_name}={size}, but -n {args.num_workers} -s {args.num_servers} needs "
                         f"{needed} processes (1 scheduler + servers + workers)")
    if not args.scheduler:
        raise SystemExit("loom.launch: under a cluster manager give --scheduler HOST:PORT, the address of the "
                         "host that runs rank 0")
    role, part_rank = roles(args.num_workers, args.num_servers)[rank]
    host = socket.gethostname() if args.node_host is None else args.node_host
    env = dict(environ, **environment(role, part_rank, args, args.scheduler, host))
    return part_command(role, command), env


def _watched(job: Job, args) -> int:
    def forward(signum, frame):  # Ctrl-C or a scheduler's kill stops the whole job
        job.stop_all()
        sys.exit(128 + signum)
    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    return job.watch(finish_timeout=args.timeout + 10)


def parse(argv):
    p = argparse.ArgumentParser(prog="python -m loom.launch", description=__doc__.splitlines()[0])
    p.add_argument("-n", "--num-workers", type=int, required=True)
    p.add_argument("-s", "--num-servers", type=int, default=1)
    p.add_argument("--launcher", choices=["local", "ssh", "mpi", "slurm"], default="local")
    p.add_argument("-H", "--hostfile", help="ssh: one host per line; the first runs the scheduler")
    p.add_argument("--scheduler", help="HOST:PORT where the scheduler listens (local: a free local port)")
    p.add_argument("--port", type=int, default=9091, help="ssh: the scheduler's port on the first host")
    p.add_argument("--ssh-options", help="ssh: options added to every ssh command, as one string "
                                         "(e.g. \"-p 2222 -i ~/.ssh/cluster\")")
    p.add_argument("--node-host", help="mpi/slurm: the address other nodes reach this one at")
    p.add_argument("--timeout", type=float, default=30.0,
                   help="seconds before a silent node counts as dead (and start-up gives up)")
    p.add_argument("--heartbeat", type=float, default=1.0)
    p.add_argument("--dry-run", action="store_true", help="ssh: print the commands instead of running them")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- then the worker's command")
    args = p.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        p.error("give the workers' command after --")
    if args.num_workers < 1 or args.num_servers < 0:
        p.error("-n must be at least 1 and -s at least 0")
    return args, command


def main(argv=None) -> int:
    args, command = parse(argv)
    if args.launcher in ("mpi", "slurm"):
        argv_, env = managed_part(args, command)
        os.execvpe(argv_[0], argv_, env)
    if args.launcher == "ssh":
        return launch_ssh(args, command)
    return launch_local(args, command)


if __name__ == "__main__":
    sys.exit(main())
