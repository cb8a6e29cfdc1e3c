"""Ops run asynchronously on the engine: a call returns before its kernel
has run, later ops on the same memory are ordered after it (readers before
an in-place write, writes before reads), and errors a kernel finds surface at
the next wait on its result, with the op's message. Checked against NumPy."""
import threading
import time

import numpy as np
import pytest

import loom as lm

BIG = 1 << 20  # above the in-place limit the fixture sets: these kernels go to the engine's worker


def _big(values=None, n=BIG):
    rng = np.random.default_rng(0)
    host = rng.standard_normal(n).astype(np.float32) if values is None else values
    return host, lm.nd.array(host)


@pytest.fixture(autouse=True)
def _threaded_engine():
    if lm._C.engine_kind() != "threaded":
        pytest.skip("LOOM_ENGINE=naive runs every op inside the call")
    # By default a kernel with nothing pending runs on the calling thread at
    # any size; these tests queue large ones (the CI's LOOM_INLINE_WORK=0
    # pass queues every kernel, and keeps doing so here).
    previous = lm._C.set_inline_work_limit(min(lm._C.inline_work_limit(), BIG - 1))
    yield
    lm.nd.waitall()
    lm._C.set_inline_work_limit(previous)


def test_by_default_a_ready_kernel_of_any_size_runs_on_the_calling_thread():
    import subprocess
    import sys
    code = ("import loom as lm, numpy as np\n"
            "print(lm._C.inline_work_limit())\n"
            "a = lm.nd.ones((1024, 1024)); b = lm.nd.ones((1024, 1024))\n"
            "c = lm.nd.matmul(a, b); c += 1\n"
            "print(lm._C.pending_ops())\n")
    env = {k: v for k, v in __import__("os").environ.items() if k != "LOOM_INLINE_WORK"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    limit, pending = out.stdout.split()
    assert int(limit) == 2**63 - 1 and int(pending) == 0
    previous = lm._C.set_inline_work_limit(-1)  # negative: no limit
    assert lm._C.inline_work_limit() == 2**63 - 1
    assert lm._C.set_inline_work_limit(previous) == 2**63 - 1


def test_a_large_call_returns_before_its_kernel_has_run():
    a = lm.nd.array(np.ones((1024, 1024), np.float32))
    start = time.perf_counter()
    c = lm.nd.matmul(a, a)  # ~2 GFLOP
    for _ in range(8):
        c = lm.nd.matmul(c, a) * (1.0 / 1024)
    returned = time.perf_counter() - start
    assert lm._C.pending_ops() > 0
    c.wait_to_read()
    finished = time.perf_counter() - start
    assert returned < 0.5 * finished, (returned, finished)
    np.testing.assert_allclose(c.asnumpy(), np.full((1024, 1024), 1024.0), rtol=1e-5)


def test_an_in_place_write_waits_for_earlier_readers():
    host, x = _big()
    doubled = x * 2        # pending read of x
    total = x.sum()        # another reader
    x += 1                 # must not overtake them
    x *= 3
    np.testing.assert_allclose(doubled.asnumpy(), host * 2, rtol=1e-6)
    np.testing.assert_allclose(total.item(), host.astype(np.float64).sum(), rtol=1e-4, atol=1e-2)
    np.testing.assert_allclose(x.asnumpy(), (host + 1) * 3, rtol=1e-6)


def test_setitem_and_out_are_ordered_with_pending_ops():
    host, x = _big()
    y = lm.nd.exp(x)
    x[: BIG // 2] = 0.0     # a write into x while exp still reads it
    out = lm.nd.empty((BIG,))
    lm.nd.add(y, x, out=out)
    want_x = host.copy()
    want_x[: BIG // 2] = 0
    np.testing.assert_allclose(out.asnumpy(), np.exp(host) + want_x, rtol=1e-5, atol=1e-6)


def test_a_long_dependent_chain_matches_numpy():
    host, x = _big(np.random.default_rng(1).standard_normal(BIG))  # float64: no rounding drift
    want = host
    for i in range(30):
        x = lm.nd.tanh(x * 1.5 + i * 0.01)
        want = np.tanh(want * 1.5 + i * 0.01)
    np.testing.assert_allclose(x.asnumpy(), want, rtol=1e-10, atol=1e-12)


def test_gradients_of_large_arrays_are_ordered_with_the_forward():
    host, x = _big()
    x.attach_grad()
    with lm.autograd.record():
        y = (lm.nd.sigmoid(x) * x).sum()
    y.backward()
    s = 1 / (1 + np.exp(-host.astype(np.float64)))
    np.testing.assert_allclose(x.grad.asnumpy(), s + host * s * (1 - s), rtol=1e-4, atol=1e-6)


def test_a_kernel_error_surfaces_at_the_wait_with_the_op_message():
    _, x = _big()
    idx = np.zeros(BIG, np.int64)
    idx[-1] = BIG + 5  # found only when the kernel reads the indices
    bad = lm.nd.take(x, lm.nd.array(idx))  # returns: the error is not known yet
    with pytest.raises(IndexError, match=rf"take: index {BIG + 5} is out of range for dim 0 of size {BIG}"):
        bad.asnumpy()
    with pytest.raises(IndexError, match="take: index"):
        (bad + 1).wait_to_read()   # what depends on it fails with the same error
    lm.nd.waitall()                # already reported at the waits above: not raised again
    np.testing.assert_array_equal((x * 0).asnumpy(), np.zeros(BIG, np.float32))  # others unaffected


def test_an_error_nobody_waited_for_is_raised_by_waitall():
    _, x = _big()
    idx = np.full(BIG, -(BIG + 1), np.int64)
    lm.nd.take(x, lm.nd.array(idx))  # result dropped
    with pytest.raises(IndexError, match="take: index"):
        lm.nd.waitall()
    lm.nd.waitall()  # once


def test_dropping_results_of_pending_ops_frees_their_memory_after_they_run():
    before = lm._C.memory_stats(lm.cpu())["in_use"]
    _, x = _big()
    for _ in range(20):
        lm.nd.exp(x)  # results dropped at once, kernels still pending
    del x
    lm.nd.waitall()
    assert lm._C.memory_stats(lm.cpu())["in_use"] == before


def test_waiting_releases_the_gil():
    a = lm.nd.array(np.ones((1024, 1024), np.float32))
    ticks = [0]
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            ticks[0] += 1

    c = a
    for _ in range(6):
        c = lm.nd.matmul(c, a) * (1.0 / 1024)
    worker = threading.Thread(target=spin)
    worker.start()
    try:
        seen = ticks[0]
        c.wait_to_read()
        during = ticks[0] - seen
    finally:
        stop.set()
        worker.join()
    assert during > 0  # the Python thread ran while this one waited


def test_a_dlpack_import_last_held_by_a_queued_kernel_is_released_without_a_deadlock():
    import weakref
    host = np.ones(BIG, np.float32)
    alive = weakref.ref(host)
    x = lm.nd.from_dlpack(host)
    del host
    y = lm.nd.exp(x)   # queued on the worker, which now holds the only reference to x's memory
    del x
    y.wait_to_read()   # the worker drops it without the GIL; the interpreter releases it next
    for _ in range(1000):
        if alive() is None:
            break
        time.sleep(0.001)
    assert alive() is None
    np.testing.assert_allclose(y.asnumpy(), np.full(BIG, np.e, np.float32), rtol=1e-6)


def test_a_fast_producer_waits_for_queued_outputs_instead_of_allocating_them_all():
    """Backpressure (runtime/dispatch/pending_bytes.h): a loop that queues
    copies of a 16 MiB array and never reads a result is held at about
    LOOM_MAX_PENDING_BYTES of queued outputs (without it, 300 copies held
    4.9 GB before the first one ran), and every copy still happens."""
    import os
    import subprocess
    import sys
    import textwrap
    child = textwrap.dedent("""
        import numpy as np, loom as lm
        g = lm.nd.array(np.arange(4 * 2**20, dtype=np.float32))
        for i in range(300):
            y = lm.nd.copy(g)
        np.testing.assert_array_equal(y.asnumpy(), np.arange(4 * 2**20, dtype=np.float32))
        print(lm._C.memory_stats(lm.cpu())["peak"])
    """)
    env = dict(os.environ, LOOM_MAX_PENDING_BYTES=str(64 << 20), LOOM_INLINE_WORK="0")
    run = subprocess.run([sys.executable, "-c", child], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    peak = int(run.stdout.split()[-1])
    assert peak < 160 << 20, f"peak {peak / 2**20:.0f} MiB with a 64 MiB limit on queued outputs"
