"""The GPU half of the runtime, against the CPU and PyTorch: device moves,
casts, views, errors across devices, autograd and a training step, DLPack
with torch.cuda, memory stats and synchronisation. Each operator's CUDA
kernels are checked against its CPU kernels by the generated suites
(check_cuda_matches_cpu); this file covers what sits around them. Every test
skips without a GPU."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import loom as lm

pytestmark = pytest.mark.skipif(lm.num_gpus() == 0, reason="needs a GPU (none visible to this process)")

RNG = np.random.default_rng(3)


def gpu():
    return lm.gpu(0)


def test_round_trips_between_devices_keep_values_dtypes_and_shapes():
    for dtype in ("float32", "float64", "int32", "int64", "uint8", "bool"):
        x = (RNG.standard_normal((5, 7)) * 10).astype(dtype)
        g = lm.nd.array(x, ctx=gpu())
        assert g.device == gpu() and g.dtype == dtype and g.shape == (5, 7)
        np.testing.assert_array_equal(g.asnumpy(), x)
        np.testing.assert_array_equal(g.to(lm.cpu()).asnumpy(), x)
        np.testing.assert_array_equal(g.as_in_context(lm.cpu()).to(gpu()).asnumpy(), x)
    assert lm.nd.zeros((0, 3), ctx=gpu()).asnumpy().shape == (0, 3)
    assert lm.nd.array(2.5, ctx=gpu()).item() == 2.5


def test_views_casts_and_copies_on_the_gpu():
    x = RNG.standard_normal((6, 8)).astype(np.float32)
    g = lm.nd.array(x, ctx=gpu())
    np.testing.assert_array_equal(g[1:5:2, ::3].asnumpy(), x[1:5:2, ::3])
    np.testing.assert_array_equal(g.T.asnumpy(), x.T)
    np.testing.assert_array_equal(g.T.copy().asnumpy(), x.T)          # strided gather on the device
    np.testing.assert_array_equal(g.reshape((4, 12)).asnumpy(), x.reshape(4, 12))
    np.testing.assert_array_equal(g.astype("float64").asnumpy(), x.astype(np.float64))
    np.testing.assert_array_equal(g.astype("int32").asnumpy(), x.astype(np.int32))
    g[0] = 5.0
    x[0] = 5.0
    np.testing.assert_array_equal(g.asnumpy(), x)


def test_mixing_devices_is_a_clear_error():
    a = lm.nd.ones((3,), ctx=gpu())
    b = lm.nd.ones((3,))
    with pytest.raises(lm.LoomError, match=r"add.*(cpu|gpu).*(cpu|gpu)"):
        lm.nd.add(a, b)
    with pytest.raises(lm.LoomError, match="matmul"):
        lm.nd.matmul(lm.nd.ones((2, 2), ctx=gpu()), lm.nd.ones((2, 2)))


def test_matmul_on_the_gpu_matches_numpy_for_batches_vectors_and_views():
    for sa, sb in [((64, 33), (33, 17)), ((4, 64, 33), (33, 17)), ((2, 1, 5, 6), (3, 6, 4)), ((33,), (33, 8)),
                   ((8, 33), (33,)), ((0, 3), (3, 2)), ((3, 0), (0, 2))]:
        a, b = RNG.standard_normal(sa).astype(np.float32), RNG.standard_normal(sb).astype(np.float32)
        got = lm.nd.matmul(lm.nd.array(a, ctx=gpu()), lm.nd.array(b, ctx=gpu()))
        assert got.device == gpu()
        np.testing.assert_allclose(got.asnumpy(), a @ b, rtol=1e-4, atol=1e-4, err_msg=f"{sa} @ {sb}")
    a, b = RNG.standard_normal((30, 40)), RNG.standard_normal((40, 20))
    ga, gb = lm.nd.array(a.T.copy(), ctx=gpu()).T, lm.nd.array(b.T.copy(), ctx=gpu()).T  # transposed views
    np.testing.assert_allclose(lm.nd.matmul(ga, gb).asnumpy(), a @ b, rtol=1e-12)


def test_autograd_on_the_gpu_matches_the_cpu():
    x_np = RNG.standard_normal((16, 10))
    w_np = RNG.standard_normal((10, 4))
    grads = []
    for ctx in (lm.cpu(), gpu()):
        x, w = lm.nd.array(x_np, ctx=ctx), lm.nd.array(w_np, ctx=ctx)
        x.attach_grad()
        w.attach_grad()
        with lm.autograd.record():
            y = lm.nd.log_softmax(lm.nd.gelu(lm.nd.matmul(x, w)), dim=-1).sum()
        y.backward()
        assert x.grad.device == ctx
        grads.append((x.grad.asnumpy(), w.grad.asnumpy()))
    for c, g in zip(*grads):
        np.testing.assert_allclose(g, c, rtol=1e-10, atol=1e-12)


def test_second_derivatives_on_the_gpu():
    x = lm.nd.array([0.3, -1.2, 2.0], dtype="float64", ctx=gpu())
    x.attach_grad()
    with lm.autograd.record():
        y = lm.nd.tanh(x).sum()
        (g,) = lm.autograd.grad([y], [x], create_graph=True)
        z = g.sum()
    z.backward()
    t = np.tanh(np.array([0.3, -1.2, 2.0]))
    np.testing.assert_allclose(x.grad.asnumpy(), -2 * t * (1 - t ** 2), rtol=1e-12)


def test_training_steps_on_the_gpu_follow_the_cpu():
    """Five SGD steps of a two-layer MLP: the same weights on both devices."""
    x_np = RNG.standard_normal((64, 20)).astype(np.float32)
    labels = RNG.integers(0, 5, 64)
    onehot = np.eye(5, dtype=np.float32)[labels]
    w1_np = (RNG.standard_normal((20, 32)) * 0.2).astype(np.float32)
    w2_np = (RNG.standard_normal((32, 5)) * 0.2).astype(np.float32)
    finals = []
    for ctx in (lm.cpu(), gpu()):
        x, t = lm.nd.array(x_np, ctx=ctx), lm.nd.array(onehot, ctx=ctx)
        w1, w2 = lm.nd.array(w1_np, ctx=ctx), lm.nd.array(w2_np, ctx=ctx)
        for w in (w1, w2):
            w.attach_grad()
        for _ in range(5):
            with lm.autograd.record():
                logits = lm.nd.matmul(lm.nd.relu(lm.nd.matmul(x, w1)), w2)
                loss = -(lm.nd.log_softmax(logits, dim=-1) * t).sum() / 64
            loss.backward()
            for w in (w1, w2):
                w -= 0.5 * w.grad
        lm.nd.waitall()
        finals.append((w1.asnumpy(), w2.asnumpy(), loss.item()))
    for c, g in zip(*finals):
        np.testing.assert_allclose(g, c, rtol=1e-4, atol=1e-5)


def test_dlpack_shares_gpu_memory_with_torch_both_ways():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("this torch has no CUDA")
    t = torch.arange(12, dtype=torch.float32, device="cuda").reshape(3, 4)
    a = lm.nd.from_dlpack(t)
    assert a.device == gpu() and a.shape == (3, 4)
    t[0, 0] = 100.0  # the same memory
    torch.cuda.synchronize()
    assert a.asnumpy()[0, 0] == 100.0
    b = lm.nd.array(RNG.standard_normal((2, 5)).astype(np.float32), ctx=gpu())
    tb = torch.from_dlpack(b)
    assert tb.is_cuda
    np.testing.assert_array_equal(tb.cpu().numpy(), b.asnumpy())
    b += 1.0  # in place: torch sees the new values
    lm.nd.waitall()
    np.testing.assert_array_equal(tb.cpu().numpy(), b.asnumpy())


def test_gpu_memory_is_counted_and_cached():
    lm.nd.waitall()
    before = lm._C.memory_stats(gpu())
    x = lm.nd.zeros((1024, 1024), ctx=gpu())
    during = lm._C.memory_stats(gpu())
    assert during["in_use"] >= before["in_use"] + 4 * 1024 * 1024
    del x
    after = lm._C.memory_stats(gpu())
    assert after["in_use"] == before["in_use"]
    assert after["cached"] >= 4 * 1024 * 1024  # kept for reuse
    lm._C.release_cached()
    assert lm._C.memory_stats(gpu())["cached"] == 0


def test_an_out_of_range_gpu_is_a_clear_error():
    with pytest.raises(lm.LoomError, match=r"gpu\(64\)"):
        lm.nd.zeros((2,), ctx=lm.gpu(64))


def test_save_and_load_gpu_arrays(tmp_path):
    x = RNG.standard_normal((3, 4)).astype(np.float32)
    lm.nd.save(str(tmp_path / "a.loom"), {"x": lm.nd.array(x, ctx=gpu())})
    loaded = lm.nd.load(str(tmp_path / "a.loom"))
    np.testing.assert_array_equal(loaded["x"].asnumpy(), x)


def test_bad_indices_on_the_gpu_raise_the_cpu_errors():
    x = lm.nd.array(np.zeros((4, 3), dtype=np.float32), ctx=gpu())
    with pytest.raises(IndexError, match=r"take: index 4 is out of range for dim 0 of size 4"):
        lm.nd.take(x, lm.nd.array([0, 4], ctx=gpu()))
    with pytest.raises(IndexError, match=r"one_hot: index -1 is out of range for depth 3"):
        lm.nd.one_hot(lm.nd.array([0, -1], ctx=gpu()), 3)
    with pytest.raises(IndexError, match=r"index_add: index 9 is out of range"):
        lm.nd.index_add(x, lm.nd.array([9], ctx=gpu()), lm.nd.array(np.ones((1, 3), np.float32), ctx=gpu()))
    # and the device is still usable afterwards
    np.testing.assert_array_equal(lm.nd.take(x, lm.nd.array([3], ctx=gpu())).asnumpy(), np.zeros((1, 3)))


def test_fused_updates_on_the_gpu_match_the_cpu():
    w0, g, m0 = (RNG.standard_normal((300, 70)).astype(np.float32) for _ in range(3))
    v0 = RNG.uniform(0.5, 2.0, (300, 70)).astype(np.float32)  # away from 0: mean / sqrt(var) well conditioned
    results = []
    for ctx in (lm.cpu(), gpu()):
        w, m, v = lm.nd.array(w0, ctx=ctx), lm.nd.array(m0, ctx=ctx), lm.nd.array(v0, ctx=ctx)
        lm.nd.adam_update(w, lm.nd.array(g, ctx=ctx), m, v, lr=0.01, wd=0.01)
        lm.nd.sgd_mom_update(w, lm.nd.array(g, ctx=ctx), m, lr=0.1, momentum=0.9, nesterov=True)
        results.append((w.asnumpy(), m.asnumpy(), v.asnumpy()))
    for c, gg in zip(*results):  # FMA contraction differs between the two compilers
        np.testing.assert_allclose(gg, c, rtol=2e-5, atol=1e-5)


def test_gpu_casts_follow_the_host_rules():
    """astype on the GPU (a CUDA kernel) gives the CPU's values for every
    pair of dtypes: NaN -> 0 and saturation for integers, round-to-nearest-
    even for float16/bfloat16, != 0 for bool."""
    values = np.array([0.0, -0.0, 1.5, -2.5, 3e9, -3e9, 70000.0, 1e-8, np.nan, np.inf, -np.inf], np.float32)
    dtypes = ["float32", "float64", "float16", "bfloat16", "int8", "uint8", "int32", "int64", "bool"]
    for src in dtypes:
        cpu = lm.nd.array(values).astype(src)
        on_gpu = cpu.to(gpu())
        for dst in dtypes:
            want = cpu.astype(dst).astype("float64").asnumpy()
            got = on_gpu.astype(dst)
            assert got.device == gpu() and got.dtype == dst
            np.testing.assert_array_equal(got.astype("float64").asnumpy(), want, err_msg=f"{src} -> {dst}")


def _train_on(ctx, make_net, params_file, x_np, y_np, hybridize, steps=3, dtype="float32"):
    """`steps` momentum-SGD steps of make_net() on ctx from the parameters
    saved in params_file, in dtype; returns the parameters and the last loss."""
    from loom import gluon
    net = make_net()
    net.load_parameters(str(params_file), ctx=ctx)
    net.cast(dtype)
    x_np = x_np.astype(dtype) if x_np.dtype.kind == "f" else x_np
    if hybridize:
        net.hybridize()
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.05, "momentum": 0.9})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    x, y = lm.nd.array(x_np, ctx=ctx), lm.nd.array(y_np, ctx=ctx)
    for _ in range(steps):
        with lm.autograd.record():
            loss = loss_fn(net(x), y)
        loss.backward()
        trainer.step(x.shape[0])
    return {k: p.data(ctx).asnumpy() for k, p in net.collect_params().items()}, loss.mean().item()


def _lenet():
    from loom.gluon import nn
    net = nn.HybridSequential()
    net.add(nn.Conv2D(8, 5, padding=2, in_channels=1), nn.BatchNorm(in_channels=8), nn.Activation("relu"),
            nn.MaxPool2D(2), nn.Conv2D(16, 3, in_channels=8), nn.BatchNorm(in_channels=16), nn.Activation("relu"),
            nn.AvgPool2D(2), nn.Flatten(), nn.Dense(32, activation="relu", in_units=16 * 6 * 6),
            nn.Dense(10, in_units=32))
    return net


def _saved_lenet(path):
    """Initialises a _lenet(), saves its parameters at `path`, and returns a
    batch of 16 images and labels to train on."""
    net = _lenet()
    net.initialize()
    net(lm.nd.zeros((1, 1, 28, 28)))
    net.save_parameters(str(path))
    return RNG.standard_normal((16, 1, 28, 28)).astype(np.float32), RNG.integers(0, 10, 16)


# float32: the devices round differently (cuDNN picks the algorithm it
# measures fastest, which may change when other processes load the GPU),
# and a last-bit difference can move a discrete choice (a max-pool window's
# winner, a ReLU's side) that three momentum steps carry on. On the H200
# the parameters moved up to 4.6e-4 from the CPU's; wrong arithmetic moves
# them by 1e-2 and more. float64 leaves rounding no room, so it checks the
# same path tightly.
_TRAINING_TOLERANCE = {"float32": dict(rtol=1e-2, atol=2e-3), "float64": dict(rtol=1e-9, atol=1e-11)}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("hybridize", [False, True])
def test_gluon_convnet_trains_on_the_gpu_like_on_the_cpu(tmp_path, hybridize, dtype):
    """Convolution (cuDNN), BatchNorm, pooling, dense layers and the Trainer
    on the GPU: three steps from the same parameters end where the CPU does."""
    x_np, y_np = _saved_lenet(tmp_path / "p")
    cpu, cpu_loss = _train_on(lm.cpu(), _lenet, tmp_path / "p", x_np, y_np, hybridize, dtype=dtype)
    dev, dev_loss = _train_on(gpu(), _lenet, tmp_path / "p", x_np, y_np, hybridize, dtype=dtype)
    assert cpu.keys() == dev.keys()
    for k in cpu:
        assert dev[k].dtype == cpu[k].dtype == dtype, k
        np.testing.assert_allclose(dev[k], cpu[k], **_TRAINING_TOLERANCE[dtype], err_msg=k)
    assert abs(dev_loss - cpu_loss) < _TRAINING_TOLERANCE[dtype]["rtol"] * max(1.0, abs(cpu_loss))


def _lstm_classifier():
    from loom.gluon import nn

    class Net(lm.gluon.HybridBlock):
        def __init__(self):
            super().__init__()
            self.rnn = lm.gluon.rnn.LSTM(12, num_layers=2, layout="NTC", input_size=6)
            self.out = nn.Dense(10, in_units=12)

        def forward(self, x):
            return self.out(lm.nd.mean(self.rnn(x), 1))  # mean over time
    return Net()


@pytest.mark.parametrize("hybridize", [False, True])
def test_gluon_lstm_trains_on_the_gpu_like_on_the_cpu(tmp_path, hybridize):
    net = _lstm_classifier()
    net.initialize()
    net(lm.nd.zeros((1, 5, 6)))
    net.save_parameters(str(tmp_path / "p"))
    x_np = RNG.standard_normal((8, 5, 6)).astype(np.float32)
    y_np = RNG.integers(0, 10, 8)
    cpu, cpu_loss = _train_on(lm.cpu(), _lstm_classifier, tmp_path / "p", x_np, y_np, hybridize)
    dev, dev_loss = _train_on(gpu(), _lstm_classifier, tmp_path / "p", x_np, y_np, hybridize)
    for k in cpu:
        np.testing.assert_allclose(dev[k], cpu[k], rtol=1e-3, atol=1e-5, err_msg=k)
    assert abs(dev_loss - cpu_loss) < 1e-4 * max(1.0, abs(cpu_loss))


needs_nccl = pytest.mark.skipif(not lm._C.comm.nccl_available(), reason="built without NCCL")


@needs_nccl
def test_nccl_collectives_over_every_gpu():
    n = lm.num_gpus()
    xs = [(RNG.standard_normal((5, 7)) * (d + 1)).astype(np.float32) for d in range(n)]
    arrays = [lm.nd.array(x, ctx=lm.gpu(d)) for d, x in enumerate(xs)]
    for op, ref in (("sum", np.sum), ("max", np.max), ("min", np.min), ("avg", np.mean)):
        out = lm._C.comm.nccl_all_reduce(arrays, op)
        for d, o in enumerate(out):
            assert o.device == lm.gpu(d) and o.shape == (5, 7)
            np.testing.assert_allclose(o.asnumpy(), ref(np.stack(xs), axis=0), rtol=1e-6, err_msg=op)
    for d, o in enumerate(lm._C.comm.nccl_broadcast(arrays, n - 1)):
        np.testing.assert_array_equal(o.asnumpy(), xs[-1])
    ints = lm._C.comm.nccl_all_reduce([lm.nd.array(np.arange(6), dtype="int64", ctx=lm.gpu(0))])
    np.testing.assert_array_equal(ints[0].asnumpy(), np.arange(6))
    with pytest.raises(ValueError, match="two arrays are on gpu"):
        lm._C.comm.nccl_all_reduce([arrays[0], arrays[0]])
    with pytest.raises(ValueError, match="op must be"):
        lm._C.comm.nccl_all_reduce(arrays, "mean")


@needs_nccl
def test_nccl_all_gather_and_reduce_scatter_over_every_gpu():
    n = lm.num_gpus()
    xs = [(RNG.standard_normal((3, 4)) + d).astype(np.float32) for d in range(n)]
    gathered = lm._C.comm.nccl_all_gather([lm.nd.array(x, ctx=lm.gpu(d)) for d, x in enumerate(xs)])
    for d, g in enumerate(gathered):
        assert g.device == lm.gpu(d) and g.shape == (n, 3, 4)
        np.testing.assert_array_equal(g.asnumpy(), np.stack(xs))
    blocks = [(RNG.standard_normal((n, 5)) * (d + 1)).astype(np.float64) for d in range(n)]
    scattered = lm._C.comm.nccl_reduce_scatter([lm.nd.array(b, ctx=lm.gpu(d)) for d, b in enumerate(blocks)], "max")
    for d, s in enumerate(scattered):
        assert s.device == lm.gpu(d) and s.shape == (5,)
        np.testing.assert_array_equal(s.asnumpy(), np.max(np.stack(blocks), axis=0)[d])
    with pytest.raises(ValueError, match=r"shape \(1, \.\.\.\)"):
        lm._C.comm.nccl_reduce_scatter([lm.nd.zeros((2, 5), ctx=lm.gpu(0))] * 1)


@needs_nccl
def test_nccl_runs_on_the_comm_lane_in_order_with_the_kernels():
    """Collectives run on a stream of their own; the kernels queued after
    one must still see its result and must not overwrite its input while it
    reads. 64M floats keep NCCL busy long enough for a missing wait to show."""
    x_np = (np.arange(1 << 26) % 997).astype(np.float32)
    x = lm.nd.array(x_np, ctx=lm.gpu(0))
    for _ in range(3):
        total = lm._C.comm.nccl_all_reduce([x])[0]
        x *= 0  # in place, at once, on the kernel stream
        doubled = total * 2  # reads the result at once
        np.testing.assert_array_equal(doubled.asnumpy(), 2 * x_np)
        assert not x.asnumpy().any()
        x += lm.nd.array(x_np, ctx=lm.gpu(0))
    # results fed straight into the next collective
    out = [x]
    for _ in range(4):
        out = lm._C.comm.nccl_all_reduce(out)
    np.testing.assert_array_equal(out[0].asnumpy(), x_np)


@needs_nccl
def test_rank_collectives_take_their_nccl_id_from_a_python_share():
    """GroupRanks' NCCL path (kvstore/ranks.py) in a job of one: share() is
    called once with rank 0's drawn id and returns the bytes every rank
    uses; a wrong answer is an error naming the size NCCL needs."""
    shared = []
    ranks = lm._C.comm.RankCollectives(0, 1, lambda mine: shared.append(mine) or mine)
    x_np = np.arange(12, dtype=np.float32).reshape(3, 4)
    for _ in range(2):
        out = ranks.all_reduce(lm.nd.array(x_np, ctx=gpu()))
        assert out.device == gpu() and out.shape == (3, 4)
        np.testing.assert_array_equal(out.asnumpy(), x_np)
    assert len(shared) == 1 and len(shared[0]) == 128 and any(shared[0])
    assert ranks.device == 0
    x = lm.nd.array(x_np, ctx=gpu())
    np.testing.assert_array_equal(ranks.broadcast(x, 0).asnumpy(), x_np)
    gathered = ranks.all_gather(x)
    assert gathered.shape == (1, 3, 4)
    np.testing.assert_array_equal(gathered.asnumpy()[0], x_np)
    np.testing.assert_array_equal(ranks.reduce_scatter(x.reshape((1, 12)), "max").asnumpy(), x_np.reshape(12))
    assert len(shared) == 1
    bad = lm._C.comm.RankCollectives(0, 1, lambda mine: mine[:5])
    with pytest.raises(ValueError, match="share.. returned 5 bytes; NCCL's unique id has 128"):
        bad.all_reduce(lm.nd.ones((2,), ctx=gpu()))


@needs_nccl
def test_the_group_allreduce_store_sums_gpu_keys_through_nccl():
    """dist_sync_allreduce under loom.launch -n 1 -s 0, without ZeroMQ (one
    worker sends nothing): a GPU key takes the NCCL path, whose unique id
    GroupRanks hands over, and stays on its GPU."""
    from types import SimpleNamespace
    from loom.kvstore.allreduce import AllreduceKVStore
    from loom.kvstore.ranks import GroupRanks
    group = SimpleNamespace(rank=0, num_workers=1, barrier=lambda members: None, worker_node=lambda rank: 1 + rank)
    ranks = GroupRanks(group)
    store = AllreduceKVStore(ranks)
    try:
        x_np = np.arange(6, dtype=np.float32).reshape(2, 3)
        store.init("w", lm.nd.array(x_np, ctx=gpu()))
        store.push("w", [lm.nd.array(x_np * 2, ctx=gpu())])
        out = lm.nd.zeros((2, 3), ctx=gpu())
        store.pull("w", out)
        np.testing.assert_array_equal(out.asnumpy(), x_np * 2)
        assert store._through_nccl == {"w": True} and ranks._nccl.device == 0
    finally:
        store.close()


@needs_nccl
def test_trainer_with_the_nccl_store_trains_like_the_device_store(tmp_path, monkeypatch):
    """The Trainer's all-reduce through kvstore='nccl' ends where 'device'
    does (one GPU here: NCCL's group of one still runs the whole path).
    cuDNN keeps to deterministic algorithms: its fastest weight-gradient
    algorithm adds with atomics, which moved two identical runs 3e-5
    apart on an H200."""
    monkeypatch.setenv("LOOM_CUDNN_DETERMINISTIC", "1")
    x_np, y_np = _saved_lenet(tmp_path / "p")
    results = []
    for store in ("device", "nccl"):
        from loom import gluon
        model = _lenet()
        model.load_parameters(str(tmp_path / "p"), ctx=gpu())
        trainer = gluon.Trainer(model.collect_params(), "sgd", {"learning_rate": 0.05, "momentum": 0.9},
                                kvstore=lm.kv.create(store))  # a store object: used even for one device
        x, y = lm.nd.array(x_np, ctx=gpu()), lm.nd.array(y_np, ctx=gpu())
        for _ in range(3):
            with lm.autograd.record():
                loss = gluon.loss.SoftmaxCrossEntropyLoss()(model(x), y)
            loss.backward()
            trainer.step(16)
        assert trainer.kvstore.type == store
        results.append({k: p.data(gpu()).asnumpy() for k, p in model.collect_params().items()})
    for k in results[0]:
        np.testing.assert_allclose(results[1][k], results[0][k], rtol=1e-5, atol=1e-6, err_msg=k)


def _norm_on(ctx, fn, arrays, head):
    """fn's output, its gradients for every array and the arrays themselves
    afterwards (running statistics), on ctx."""
    ls = [lm.nd.array(a, ctx=ctx) for a in arrays]
    for a in ls[:3]:
        a.attach_grad()
    with lm.autograd.record():
        y = fn(*ls)
    y.backward(lm.nd.array(head, ctx=ctx))
    return [y.asnumpy()] + [a.grad.asnumpy() for a in ls[:3]] + [a.asnumpy() for a in ls[3:]]


def _batch_norm_reference(x, w, b, rm, rv, training, eps):
    """batch_norm before its ReLU, in float64 NumPy: batch statistics over
    every axis but 1 when training, the running ones otherwise."""
    axes = tuple(i for i in range(x.ndim) if i != 1)
    bshape = [1] * x.ndim
    bshape[1] = x.shape[1]
    x = x.astype(np.float64)
    mean, var = (x.mean(axes), x.var(axes)) if training else (rm.astype(np.float64), rv.astype(np.float64))
    scale = w.astype(np.float64) / np.sqrt(var + eps)
    return (x - mean.reshape(bshape)) * scale.reshape(bshape) + b.astype(np.float64).reshape(bshape)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(32, 4, 40, 40), (13, 5, 1001), (7, 3, 333), (2, 300, 9), (64, 1, 100, 100)])
@pytest.mark.parametrize("training, relu", [(True, False), (True, True), (False, False)])
def test_batch_norm_split_across_blocks_matches_the_cpu(shape, dtype, training, relu):
    """Few channels with many values each are split across blocks whose
    statistics are combined afterwards (batch_norm_cuda.cu): uneven slices,
    one slice, many channels, one channel at the cap of 128 slices, values
    far from zero (where a careless combine loses digits), the fused ReLU
    and inference."""
    c = shape[1]
    x = (RNG.standard_normal(shape) * 3 + 100).astype(dtype)
    w, b = RNG.uniform(0.5, 1.5, c).astype(dtype), RNG.standard_normal(c).astype(dtype)
    rm, rv = (RNG.standard_normal(c) + 100).astype(dtype), RNG.uniform(5, 12, c).astype(dtype)
    head = RNG.standard_normal(shape).astype(dtype)
    if relu:
        # Where the normalised value lies within float32 rounding of zero, the
        # CPU and the GPU may take opposite sides of the ReLU; each is right,
        # and dx there differs by the whole head value. A zero head at those
        # few places makes the mask's choice irrelevant to every gradient.
        head[np.abs(_batch_norm_reference(x, w, b, rm, rv, training, 1e-3)) < 1e-3] = 0

    def fn(x_, w_, b_, rm_, rv_):
        return lm.nd.batch_norm(x_, w_, b_, rm_, rv_, training=training, momentum=0.3, eps=1e-3, relu=relu)

    cpu, dev = (_norm_on(ctx, fn, [x, w, b, rm, rv], head) for ctx in (lm.cpu(), gpu()))
    tol = dict(rtol=5e-4, atol=5e-4) if dtype == "float32" else dict(rtol=1e-9, atol=1e-9)
    names = ["out", "dx", "dweight", "dbias", "running_mean", "running_var"]
    for name, want, got in zip(names, cpu, dev):
        np.testing.assert_allclose(got, want, **tol, err_msg=name)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(4096, 100), (50, 33), (3000, 7, 40), (100, 2049)])
def test_layer_norm_column_sums_split_across_blocks_match_the_cpu(shape, dtype):
    """The weight and bias gradients of layer_norm sum over rows in slices
    (layer_norm_cuda.cu): many rows, a few rows, columns not a multiple of
    the 32-column tile, one slice."""
    norm = shape[-1:]
    x = (RNG.standard_normal(shape) * 2 + 3).astype(dtype)
    w, b = RNG.standard_normal(norm).astype(dtype), RNG.standard_normal(norm).astype(dtype)
    head = RNG.standard_normal(shape).astype(dtype)
    fn = lambda x_, w_, b_: lm.nd.layer_norm(x_, w_, b_, axis=-1, eps=1e-5)  # noqa: E731
    cpu, dev = (_norm_on(ctx, fn, [x, w, b], head) for ctx in (lm.cpu(), gpu()))
    tol = dict(rtol=2e-4, atol=2e-3) if dtype == "float32" else dict(rtol=1e-9, atol=1e-9)
    for name, want, got in zip(["out", "dx", "dweight", "dbias"], cpu, dev):
        np.testing.assert_allclose(got, want, **tol, err_msg=name)


def test_torch_imported_after_a_loom_convolution_runs_its_own_cudnn():
    """loom opens cuDNN when a convolution first needs it (cudnn_api.cc),
    preferring the copy torch loads: a process that convolves with loom on
    the GPU and imports torch only afterwards can still run torch's cuDNN
    convolutions (torch refuses a cuDNN older than its own), and both agree."""
    pytest.importorskip("torch")
    if not lm._C.built_with_cudnn:
        pytest.skip("built without cuDNN: no GPU convolutions")
    code = textwrap.dedent("""
        import numpy as np
        import loom as lm
        x = np.random.default_rng(0).standard_normal((2, 3, 9, 9)).astype(np.float32)
        w = np.random.default_rng(1).standard_normal((4, 3, 3, 3)).astype(np.float32)
        got = lm.nd.convolution(lm.nd.array(x, ctx=lm.gpu(0)), lm.nd.array(w, ctx=lm.gpu(0)), None, padding=[1, 1])
        got = got.asnumpy()
        import torch
        torch.backends.cudnn.allow_tf32 = False
        want = torch.nn.functional.conv2d(torch.from_numpy(x).cuda(), torch.from_numpy(w).cuda(), padding=1)
        np.testing.assert_allclose(got, want.cpu().numpy(), rtol=1e-4, atol=1e-4)
        print("cudnn", torch.backends.cudnn.version())
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "cudnn" in done.stdout


def test_ctc_loss_on_the_gpu_matches_the_cpu():
    """Long targets with repeats (the skip transition is barred between
    equal labels), a sample with no labels, one with no frames, one that is
    infeasible (infinite loss, zero gradient), through log_softmax so the
    gradient reaches the logits; then the CPU's errors for bad labels."""
    T, N, C, S = 60, 6, 7, 25
    rng = np.random.default_rng(11)
    logits = rng.standard_normal((T, N, C))
    targets = rng.integers(1, C, (N, S))
    targets[0, 5:9] = 3  # repeats
    input_lengths = np.array([60, 55, 40, 60, 0, 10])
    target_lengths = np.array([25, 20, 0, 25, 0, 9])  # sample 5: 9 labels (+ repeats) cannot fit 10 frames
    targets[5, :9] = 2
    head = rng.standard_normal(N)
    results = []
    for ctx in (lm.cpu(), gpu()):
        lx = lm.nd.array(logits, ctx=ctx)
        lx.attach_grad()
        with lm.autograd.record():
            loss = lm.nd.ctc_loss(lm.nd.log_softmax(lx, -1), lm.nd.array(targets, ctx=ctx),
                                  lm.nd.array(input_lengths, ctx=ctx), lm.nd.array(target_lengths, ctx=ctx))
        loss.backward(lm.nd.array(head, ctx=ctx))
        results.append((loss.asnumpy(), lx.grad.asnumpy()))
    (cpu_loss, cpu_grad), (gpu_loss, gpu_grad) = results
    assert np.isinf(cpu_loss[5]) and np.isinf(gpu_loss[5]) and cpu_loss[4] == 0 == gpu_loss[4]
    np.testing.assert_allclose(gpu_loss, cpu_loss, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gpu_grad, cpu_grad, rtol=1e-10, atol=1e-12)
    assert not gpu_grad[:, 5].any()
    lp = lm.nd.log_softmax(lm.nd.array(logits[:3, :1], ctx=gpu()), -1)
    one = lm.nd.array(np.array([3]), ctx=gpu())
    with pytest.raises(IndexError, match=r"ctc_loss: targets\[0, 0\] = 0 is not a class in \[0, 7\) other than blank"):
        lm.nd.ctc_loss(lp, lm.nd.array(np.array([[0, 1, 2]]), ctx=gpu()), one, one).asnumpy()
