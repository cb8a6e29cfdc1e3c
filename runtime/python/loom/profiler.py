"""lm.profiler: which ops the engine ran and for how long (MXNet's
mx.profiler). It records every CPU op, including the ones that run in the
calling thread: while it records, those pass through the engine, which
still runs them at once. Off, it costs one atomic load per op. GPU
kernels are not timed yet.

    lm.profiler.start()
    ... train a few steps ...
    lm.nd.waitall(); lm.profiler.stop()
    print(lm.profiler.summary())          # op, calls, total, mean, max
    lm.profiler.dump("trace.json")        # open in ui.perfetto.dev"""
from contextlib import contextmanager

from loom import _C

start = _C.profiler.start
stop = _C.profiler.stop
running = _C.profiler.running
clear = _C.profiler.clear
dump = _C.profiler.dump
summary = _C.profiler.summary


@contextmanager
def scope(clear_first: bool = True):
    """Records the ops the block pushes, waiting for them before it stops."""
    from loom import nd
    if clear_first:
        clear()
    start()
    try:
        yield
    finally:
        nd.waitall()
        stop()
