"""lm.profiler: the engine's per-op records, from Python."""
import json

import numpy as np

import loom as lm


def test_scope_records_the_ops_it_ran_and_dumps_a_chrome_trace(tmp_path):
    a = lm.nd.array(np.ones((64, 64), np.float32))
    with lm.profiler.scope():
        for _ in range(3):
            b = lm.nd.relu(lm.nd.matmul(a, a))
    assert not lm.profiler.running()
    rows = {line.split()[0]: line.split() for line in lm.profiler.summary().splitlines()[1:] if line.strip()}
    assert int(rows["matmul"][1]) == 3 and int(rows["relu"][1]) == 3
    np.testing.assert_array_equal(b.asnumpy(), np.full((64, 64), 64.0, np.float32))
    path = tmp_path / "trace.json"
    lm.profiler.dump(str(path))
    events = json.loads(path.read_text())
    events = events["traceEvents"] if isinstance(events, dict) else events
    assert sum(1 for e in events if e.get("name") == "matmul") == 3
    lm.profiler.clear()
    assert lm._C.profiler.record_count() == 0


def test_nothing_is_recorded_while_stopped():
    lm.profiler.clear()
    lm.nd.relu(lm.nd.array([1.0, -1.0])).asnumpy()
    assert lm._C.profiler.record_count() == 0
