"""Which path dist_sync_allreduce takes per key (loom/kvstore/allreduce.py):
GPU keys through NCCL when every rank can, host keys through the host
all-reduce (MPI's or the launcher group's ring), and an error on every rank
when the ranks disagree. The job's ranks are replaced by a stand-in that
plays the other ranks' votes; the real paths run under mpirun and
loom.launch (test_distributed.py) and on a GPU (nccl_test.cc, test_gpu.py)."""
from types import SimpleNamespace

import numpy as np
import pytest

import loom as lm
from loom.kvstore import allreduce


class _Ranks:
    """Rank 0 of `size`; the other ranks' votes come from `other_votes`."""

    def __init__(self, size, other_votes):
        self.rank, self.size, self.other_votes = 0, size, other_votes
        self.calls = {"all_reduce": 0, "nccl": 0}

    def broadcast(self, array, root):
        return array

    def all_reduce(self, a):
        self.calls["all_reduce"] += 1
        if a.dtype == "float64":  # votes: this rank's plus the others'
            return lm.nd.array(a.asnumpy() + self.other_votes, dtype="float64")
        return a

    def all_reduce_flat(self, flat):
        return self.all_reduce(lm.nd.array(flat)).asnumpy()

    def nccl_all_reduce(self, a):
        self.calls["nccl"] += 1
        return a


def _store(monkeypatch, size, other_votes):
    monkeypatch.setattr(allreduce, "_C", SimpleNamespace(comm=SimpleNamespace(nccl_available=lambda: True)))
    ranks = _Ranks(size, other_votes)
    return allreduce.AllreduceKVStore(ranks), ranks


def _uses_nccl(store, key, stored):
    """The store's first-push vote for `key`, then its verdict."""
    store._vote([(key, stored)])
    return store._through_nccl[key]


def _on(kind):
    return SimpleNamespace(device=SimpleNamespace(type=SimpleNamespace(name=kind)))


def test_a_gpu_key_goes_through_nccl_when_every_rank_votes_for_it(monkeypatch):
    store, ranks = _store(monkeypatch, size=3, other_votes=2)
    assert _uses_nccl(store, "w", _on("gpu"))
    assert _uses_nccl(store, "w", _on("gpu"))
    assert ranks.calls["all_reduce"] == 1  # the vote is taken once per key


def test_a_host_key_goes_through_mpi(monkeypatch):
    store, calls = _store(monkeypatch, size=2, other_votes=0)
    assert not _uses_nccl(store, "b", _on("cpu"))


def test_ranks_that_disagree_all_raise_instead_of_hanging(monkeypatch):
    store, _ = _store(monkeypatch, size=4, other_votes=1)  # this rank and one other on a GPU
    with pytest.raises(ValueError, match=r"key 'w' is stored on a GPU with NCCL on 2 of 4 ranks"):
        _uses_nccl(store, "w", _on("gpu"))
    store, _ = _store(monkeypatch, size=2, other_votes=1)  # the other rank alone on a GPU
    with pytest.raises(ValueError, match=r"on 1 of 2 ranks"):
        _uses_nccl(store, "w", _on("cpu"))


@pytest.mark.parametrize("through_nccl", [True, False])
def test_reduce_sums_the_pushed_values_then_takes_the_voted_path(monkeypatch, through_nccl):
    store, ranks = _store(monkeypatch, size=1, other_votes=0)
    store._through_nccl["w"] = through_nccl
    stored = lm.nd.zeros((3,))
    (total,) = store._reduce_keys([("w", stored, [lm.nd.array([1.0, 2.0, 3.0]), lm.nd.array([0.5, 0.5, 0.5])])])
    np.testing.assert_array_equal(total.asnumpy(), [1.5, 2.5, 3.5])
    assert ranks.calls["nccl"] == (1 if through_nccl else 0)
    assert ranks.calls["all_reduce"] == (0 if through_nccl else 1)


def test_a_push_sums_its_host_keys_in_one_all_reduce_per_dtype_and_bucket(monkeypatch):
    """The Trainer pushes every parameter at once: one round of messages
    per bucket, not per key; each key gets its own part back, in its shape."""
    store, ranks = _store(monkeypatch, size=2, other_votes=0)
    sums = []

    def all_reduce(a):  # the other rank pushed the same values: the sum doubles them
        ranks.calls["all_reduce"] += 1
        if a.dtype == "float64" and a.shape == (4,):
            return a  # the votes: nobody on a GPU
        sums.append((a.shape, a.dtype))
        return lm.nd.array(a.asnumpy() * 2, dtype=a.dtype)
    ranks.all_reduce = all_reduce
    values = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(4, np.float32),
              "c": np.arange(3, dtype=np.float64), "d": np.full((2, 2), 3.0, np.float32)}
    for k, v in values.items():
        store.init(k, lm.nd.array(v, dtype=str(v.dtype)))
    store.push(list(values), [lm.nd.array(v, dtype=str(v.dtype)) for v in values.values()])
    assert sums == [((14,), "float32"), ((3,), "float64")]
    for k, v in values.items():
        got = lm.nd.zeros(v.shape, dtype=str(v.dtype))
        store.pull(k, got)
        np.testing.assert_array_equal(got.asnumpy(), 2 * v, err_msg=k)
    monkeypatch.setattr(allreduce, "BUCKET_VALUES", 8)  # a: 6, b: 4, d: 4 -> [a], [b, d]
    sums.clear()
    store.push(list(values), [lm.nd.array(v, dtype=str(v.dtype)) for v in values.values()])
    assert sums == [((6,), "float32"), ((8,), "float32"), ((3,), "float64")]


def test_init_keeps_each_key_on_its_values_device(monkeypatch):
    """The ranks' broadcast hands back a host copy; the key must go back to
    the value's device, or a GPU key would never take the NCCL path."""
    store, ranks = _store(monkeypatch, size=1, other_votes=0)
    moved_to = []
    host_copy = SimpleNamespace(as_in_context=lambda device: moved_to.append(device) or "on the device")
    ranks.broadcast = lambda array, root: host_copy
    value = lm.nd.array([1.0, 2.0])
    store.init("w", value)
    assert moved_to == [value.device]
    assert store._store["w"] == "on the device"


@pytest.mark.skipif(not lm._C.comm.nccl_available(), reason="built without NCCL")
def test_rank_collectives_refuse_host_arrays_and_bad_ranks_before_sharing_an_id():
    """The NCCL path of GroupRanks (its id goes over the launcher's group):
    a host array or an impossible rank is refused before any rank is asked
    to rendezvous."""
    shared = []
    ranks = lm._C.comm.RankCollectives(0, 2, lambda mine: shared.append(mine) or mine)
    assert (ranks.rank, ranks.size, ranks.device) == (0, 2, -1)
    with pytest.raises(lm.LoomError, match=r"all_reduce across ranks: .* is on the host; NCCL works on GPU arrays"):
        ranks.all_reduce(lm.nd.ones((3,)))
    with pytest.raises(lm.LoomError, match=r"reduce_scatter across ranks: .* must have shape \(2, ...\)"):
        ranks.reduce_scatter(lm.nd.ones((3, 2)))
    with pytest.raises(lm.LoomError, match="broadcast across ranks: root 2 is outside a job of 2"):
        ranks.broadcast(lm.nd.ones((3,)), 2)
    with pytest.raises(lm.LoomError, match="rank 2 is outside a job of 2"):
        lm._C.comm.RankCollectives(2, 2, lambda mine: mine)
    assert shared == []


def _one_worker_group():
    """A loom.launch group of one worker, with nothing to send to: what
    GroupRanks sees in `loom.launch -n 1 -s 0`."""
    return SimpleNamespace(rank=0, num_workers=1, barrier=lambda members: None, worker_node=lambda rank: 1 + rank)


def test_a_one_worker_group_store_trains_like_the_local_store():
    """The store over GroupRanks (no ZeroMQ needed for one worker): init,
    bucketed pushes, the optimizer on the store, and closing it lets the
    process open another."""
    from loom.kvstore import job
    from loom.kvstore.ranks import GroupRanks
    store = allreduce.AllreduceKVStore(GroupRanks(_one_worker_group()))
    try:
        local = lm.kv.create("local")
        for kv in (store, local):
            kv.init(["w", "b"], [lm.nd.array(np.arange(6, dtype=np.float32).reshape(2, 3)), lm.nd.array([0.5, -0.5])])
            kv.set_optimizer(lm.optimizer.SGD(learning_rate=0.1, momentum=0.9))
            for step in range(3):
                kv.push(["w", "b"], [lm.nd.ones((2, 3)) * (step + 1), lm.nd.array([1.0, 2.0])])
        for key, shape in (("w", (2, 3)), ("b", (2,))):
            got, want = lm.nd.zeros(shape), lm.nd.zeros(shape)
            store.pull(key, got)
            local.pull(key, want)
            np.testing.assert_array_equal(got.asnumpy(), want.asnumpy(), err_msg=key)
        assert store.rank == 0 and store.num_workers == 1 and store._through_nccl == {"w": False, "b": False}
    finally:
        store.close()
    assert not job._OPEN
    with pytest.raises(RuntimeError, match="this store was closed"):
        store.barrier()


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "int64", "int32"])
def test_host_keys_of_every_dtype_are_summed_in_a_wire_dtype_and_come_back_in_theirs(monkeypatch, dtype):
    """NumPy has no bfloat16 and MPI sums only float32/float64: half keys
    travel as float32, integer keys as float64, and return in their dtype."""
    store, ranks = _store(monkeypatch, size=2, other_votes=0)
    sent = []

    def all_reduce(a):
        if a.shape == (1,) and a.dtype == "float64" and not sent:
            sent.append("vote")
            return a
        sent.append(a.dtype)
        return lm.nd.array(a.asnumpy() * 2, dtype=a.dtype)  # the other rank pushed the same
    ranks.all_reduce = all_reduce
    value = lm.nd.array(np.arange(-3, 3, dtype=np.float32)).astype(dtype)
    store.init("k", value)
    store.push("k", value)
    out = lm.nd.zeros((6,), dtype=dtype)
    store.pull("k", out)
    assert out.dtype == dtype
    assert sent[1] == ("float32" if dtype.endswith("16") else "float64")
    np.testing.assert_array_equal(out.astype("float64").asnumpy(), 2 * np.arange(-3, 3))
