"""Data parallelism in one process: Parameters on several devices, the
local KVStores, split_and_load and the Trainer's all-reduce. cpu(0) and
cpu(1) are distinct logical devices (as in MXNet), so everything here runs
without a GPU and means the same on gpu(0), gpu(1)."""
import numpy as np
import pytest

import loom as lm
from loom.gluon import nn

rng = np.random.default_rng(5)
DEVICES = [lm.cpu(0), lm.cpu(1)]


def arr(*shape, ctx=None):
    return lm.nd.array(rng.standard_normal(shape).astype(np.float32), ctx=ctx)


# ---------------------------------------------------------------- KVStore
@pytest.mark.parametrize("kind", ["local", "device"])
def test_push_sums_the_devices_values_and_pull_copies_back(kind):
    kv = lm.kv.create(kind)
    assert (kv.type, kv.rank, kv.num_workers) == (kind, 0, 1)
    a, b = arr(3, 4, ctx=DEVICES[0]), arr(3, 4, ctx=DEVICES[1])
    kv.init(3, lm.nd.zeros((3, 4)))
    kv.init("w", lm.nd.zeros((2,), ctx=DEVICES[1]))
    kv.push(3, [a, b])
    outs = [lm.nd.zeros((3, 4), ctx=d) for d in DEVICES]
    kv.pull(3, out=outs)
    want = a.asnumpy() + b.asnumpy()
    for o, d in zip(outs, DEVICES):
        assert o.device == d
        np.testing.assert_allclose(o.asnumpy(), want, rtol=1e-6)
    # a list of keys, each with its own list of values; pushpull is an all-reduce in place
    grads = [lm.nd.array([1.0, 2.0], ctx=DEVICES[0]), lm.nd.array([10.0, 20.0], ctx=DEVICES[1])]
    a_before = a.asnumpy()
    kv.pushpull([3, "w"], [[a, a], grads])
    np.testing.assert_array_equal(grads[0].asnumpy(), [11.0, 22.0])
    np.testing.assert_array_equal(grads[1].asnumpy(), [11.0, 22.0])
    out = lm.nd.zeros((3, 4))
    kv.pull(3, out=out)
    np.testing.assert_allclose(out.asnumpy(), 2 * a_before, rtol=1e-6)
    np.testing.assert_array_equal(a.asnumpy(), out.asnumpy())


def test_kvstore_errors_name_the_key_and_shapes():
    kv = lm.kv.create("local")
    kv.init(0, lm.nd.zeros((2, 2)))
    with pytest.raises(ValueError, match="key 0 is already initialised"):
        kv.init(0, lm.nd.zeros((2, 2)))
    with pytest.raises(KeyError, match="key 'missing' was never init"):
        kv.push("missing", lm.nd.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"key 0 holds \(2, 2\) float32, got \(3,\) float32"):
        kv.push(0, lm.nd.zeros((3,)))
    with pytest.raises(ValueError, match="2 keys need a list of 2 values"):
        kv.push([0, 1], lm.nd.zeros((2, 2)))
    with pytest.raises(TypeError, match="keys are int or str"):
        kv.init(1.5, lm.nd.zeros(1))
    with pytest.raises(ValueError, match="unknown KVStore type 'lcoal'"):
        lm.kv.create("lcoal")


def test_the_nccl_store_sums_host_values_as_the_device_store_does():
    """'nccl' all-reduces GPU values through NCCL (test_gpu.py); host values,
    as here, take the 'device' store's sum, so a script runs anywhere."""
    if not lm._C.comm.nccl_available():
        with pytest.raises(NotImplementedError, match="built without NCCL"):
            lm.kv.create("nccl")
        return
    kv = lm.kv.create("nccl")
    assert kv.type == "nccl"
    kv.init("w", lm.nd.zeros((3,), ctx=DEVICES[0]))
    grads = [arr(3, ctx=d) for d in DEVICES]
    kv.push("w", grads)
    outs = [lm.nd.zeros((3,), ctx=d) for d in DEVICES]
    kv.pull("w", out=outs)
    want = sum(g.asnumpy() for g in grads)
    for o in outs:
        np.testing.assert_allclose(o.asnumpy(), want, rtol=1e-6)
    with pytest.raises(ValueError, match="is on the host"):
        lm._C.comm.nccl_all_reduce(grads)


def test_update_on_the_store_applies_the_optimizer_and_saves_its_states(tmp_path):
    kv = lm.kv.create("local")
    w0 = rng.standard_normal((4,)).astype(np.float32)
    kv.init("w", lm.nd.array(w0))
    kv.set_optimizer(lm.optimizer.SGD(learning_rate=0.1, momentum=0.9))
    g = [arr(4, ctx=d) for d in DEVICES]
    total = g[0].asnumpy() + g[1].asnumpy()
    kv.push("w", g)
    kv.push("w", g)
    out = lm.nd.zeros((4,), ctx=DEVICES[1])
    kv.pull("w", out=out)
    mom1 = -0.1 * total
    mom2 = 0.9 * mom1 - 0.1 * total
    np.testing.assert_allclose(out.asnumpy(), w0 + mom1 + mom2, rtol=1e-5)
    kv.save_optimizer_states(str(tmp_path / "kv.states"))
    other = lm.kv.create("local")
    other.init("w", out)
    other.set_optimizer(lm.optimizer.SGD(learning_rate=0.1, momentum=0.9))
    other.load_optimizer_states(str(tmp_path / "kv.states"))
    kv.push("w", g)
    other.push("w", g)
    a, b = lm.nd.zeros((4,)), lm.nd.zeros((4,))
    kv.pull("w", out=a)
    other.pull("w", out=b)
    np.testing.assert_array_equal(a.asnumpy(), b.asnumpy())


# ---------------------------------------------------------------- Parameters
def test_parameters_on_several_devices():
    net = nn.Dense(3, in_units=4)
    net.initialize(ctx=DEVICES)
    w = net.weight
    assert w.list_ctx() == DEVICES
    copies = w.list_data()
    assert [c.device for c in copies] == DEVICES
    np.testing.assert_array_equal(copies[0].asnumpy(), copies[1].asnumpy())
    assert w.data(DEVICES[1]).device == DEVICES[1]
    x = arr(2, 4, ctx=DEVICES[1])
    assert net(x).device == DEVICES[1]  # the call picks the copy on its input's device
    np.testing.assert_allclose(net(x).asnumpy(), net(x.as_in_context(DEVICES[0])).asnumpy(), rtol=1e-6)
    with pytest.raises(RuntimeError, match=r"initialised on \[cpu\(0\), cpu\(1\)\], not on cpu\(2\)"):
        w.data(lm.cpu(2))
    value = rng.standard_normal((3, 4)).astype(np.float32)
    w.set_data(value)
    for c in w.list_data():
        np.testing.assert_array_equal(c.asnumpy(), value)
    w.reset_ctx(lm.cpu(2))
    assert w.list_ctx() == [lm.cpu(2)]
    np.testing.assert_array_equal(w.data().asnumpy(), value)
    with pytest.raises(ValueError, match="lists a device twice"):
        nn.Dense(2, in_units=2).initialize(ctx=[lm.cpu(0), lm.cpu(0)])


def test_deferred_initialisation_on_several_devices():
    net = nn.Dense(3)
    net.initialize(ctx=DEVICES)
    assert net.weight.list_ctx() == DEVICES
    net(arr(2, 5, ctx=DEVICES[0]))
    assert [c.shape for c in net.weight.list_data()] == [(3, 5), (3, 5)]


def test_split_and_load():
    x = np.arange(10 * 3, dtype=np.float32).reshape(10, 3)
    parts = lm.gluon.utils.split_and_load(x, DEVICES)
    assert [p.device for p in parts] == DEVICES
    np.testing.assert_array_equal(np.concatenate([p.asnumpy() for p in parts]), x)
    parts = lm.gluon.utils.split_and_load(lm.nd.array(x), DEVICES + [lm.cpu(2)], batch_axis=0, even_split=False)
    assert [p.shape[0] for p in parts] == [4, 3, 3]
    cols = lm.gluon.utils.split_data(lm.nd.array(x[:, :2]), 2, batch_axis=1)
    np.testing.assert_array_equal(cols[1].asnumpy(), x[:, 1:2])
    with pytest.raises(ValueError, match="does not split evenly into 3 slices"):
        lm.gluon.utils.split_and_load(x, DEVICES + [lm.cpu(2)])


# ---------------------------------------------------------------- training
def make_net(ctx, hybrid):
    lm.random.seed(0)
    net = nn.HybridSequential()
    net.add(nn.Dense(16, activation="relu", in_units=6), nn.Dense(4, in_units=16))
    net.initialize(init="xavier", ctx=ctx)
    if hybrid:
        net.hybridize()
    return net


def train(net, ctx, trainer, x, y, steps=3):
    loss_fn = lm.gluon.loss.SoftmaxCrossEntropyLoss()
    for _ in range(steps):
        xs = lm.gluon.utils.split_and_load(x, ctx)
        ys = lm.gluon.utils.split_and_load(y, ctx)
        with lm.autograd.record():
            losses = [loss_fn(net(a), b) for a, b in zip(xs, ys)]
        for loss in losses:
            loss.backward()
        trainer.step(x.shape[0])


@pytest.mark.parametrize("optimizer, params", [("sgd", {"learning_rate": 0.2, "momentum": 0.9}),
                                               ("adam", {"learning_rate": 0.01, "wd": 0.01})])
@pytest.mark.parametrize("hybrid", [False, True])
@pytest.mark.parametrize("update_on_kvstore", [False, True])
def test_two_devices_train_like_one_device_on_the_whole_batch(optimizer, params, hybrid, update_on_kvstore):
    x = rng.standard_normal((8, 6)).astype(np.float32)
    y = rng.integers(0, 4, 8).astype(np.int64)
    one = make_net([lm.cpu(0)], hybrid)
    train(one, [lm.cpu(0)], lm.gluon.Trainer(one.collect_params(), optimizer, params), lm.nd.array(x),
          lm.nd.array(y, dtype="int64"))
    two = make_net(DEVICES, hybrid)
    trainer = lm.gluon.Trainer(two.collect_params(), optimizer, params, kvstore="local",
                               update_on_kvstore=update_on_kvstore)
    train(two, DEVICES, trainer, lm.nd.array(x), lm.nd.array(y, dtype="int64"))
    assert trainer.kvstore is not None and trainer.kvstore.type == "local"
    for name, p in two.collect_params().items():
        a, b = p.list_data()
        np.testing.assert_array_equal(a.asnumpy(), b.asnumpy())  # the copies never drift apart
        np.testing.assert_allclose(a.asnumpy(), one.collect_params()[name].data().asnumpy(), rtol=1e-5, atol=1e-6)


def test_one_device_needs_no_store_and_trainer_states_round_trip(tmp_path):
    x = lm.nd.array(rng.standard_normal((8, 6)).astype(np.float32))
    y = lm.nd.array(rng.integers(0, 4, 8), dtype="int64")
    net = make_net(DEVICES, False)
    trainer = lm.gluon.Trainer(net.collect_params(), "adagrad", {"learning_rate": 0.1})
    train(net, DEVICES, trainer, x, y, steps=2)
    trainer.save_states(str(tmp_path / "t.states"))
    clone = make_net(DEVICES, False)
    for p, q in zip(net.collect_params().values(), clone.collect_params().values()):
        q.set_data(p.data())
    other = lm.gluon.Trainer(clone.collect_params(), "adagrad", {"learning_rate": 0.1})
    other.load_states(str(tmp_path / "t.states"))
    assert other.optimizer.num_update == 2
    train(net, DEVICES, trainer, x, y, steps=1)
    train(clone, DEVICES, other, x, y, steps=1)
    for p, q in zip(net.collect_params().values(), clone.collect_params().values()):
        np.testing.assert_array_equal(p.data().asnumpy(), q.data().asnumpy())
    single = make_net([lm.cpu(0)], False)
    assert lm.gluon.Trainer(single.collect_params(), "sgd").kvstore is None
