"""This process as a worker of a job started by python -m loom.launch.

A process is one node of the job: it joins the job's ZeroMQ group once,
through the one dist store it creates. While that store is open, an
uncaught exception fails the whole job, so the other nodes stop waiting
for this worker and are told why, instead of taking it for a finished one."""
from __future__ import annotations

import atexit
import sys

from loom import _C

_OPEN = []  # (store, the excepthook before it, its own hook) while the process's dist store is open


def join_as_worker(kind: str):
    """The job's group, joined as the worker the launcher's LOOM_* variables
    name; an error if this process already joined or is not a worker."""
    if _OPEN:
        raise RuntimeError(f"kv.create({kind!r}): this process already has a {_OPEN[0][0].type} store; a process "
                           "is one node of the job, so pass that store to every Trainer (kvstore=store) and "
                           "give their parameters distinct keys")
    group = _C.comm.Group.from_env()
    if group.role != "worker":
        raise RuntimeError(f"kv.create({kind!r}): this process is the {group.role}; the launcher starts "
                           "servers and the scheduler with loom's own entry point, and only workers create a "
                           "KVStore (python -m loom.launch -n W -s S -- python train.py)")
    return group


def watch(store) -> None:
    """`store` is the process's open dist store: closed at exit, and failed
    (store.fail) by an uncaught exception."""
    previous_hook = sys.excepthook

    def fail_then_report(kind_, value, tb):
        store.fail(f"{kind_.__name__}: {value}")
        previous_hook(kind_, value, tb)
    _OPEN.append((store, previous_hook, fail_then_report))
    atexit.register(store.close)
    sys.excepthook = fail_then_report


def forget(store) -> None:
    """`store` is closed: its exit call and exception hook go, and the
    process may create another store."""
    for i, (open_store, previous_hook, hook) in enumerate(_OPEN):
        if open_store is store:
            del _OPEN[i]
            atexit.unregister(store.close)
            if sys.excepthook is hook:
                sys.excepthook = previous_hook
            return
