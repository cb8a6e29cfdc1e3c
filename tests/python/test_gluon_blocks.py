"""Gluon blocks: parameters, deferred shapes, hybridize (same results and
gradients as the imperative run), export / SymbolBlock.imports, save/load,
losses against NumPy and the Trainer against hand-written updates."""
import numpy as np
import pytest

import loom as lm
from loom.gluon import nn

rng = np.random.default_rng(2)


def lenet():
    net = nn.HybridSequential()
    net.add(nn.Conv2D(6, 5, activation="relu"), nn.MaxPool2D(2), nn.Conv2D(16, 5), nn.BatchNorm(),
            nn.Activation("relu"), nn.MaxPool2D(2), nn.Flatten(), nn.Dense(32, activation="relu"), nn.Dense(10))
    return net


def batch(n=4):
    x = lm.nd.array(rng.standard_normal((n, 1, 28, 28)).astype(np.float32))
    y = lm.nd.array(rng.integers(0, 10, n), dtype="int64")
    return x, y


def test_structural_names_and_deferred_shapes():
    net = lenet()
    net.initialize()
    names = list(net.collect_params())
    assert names[:2] == ["0.weight", "0.bias"] and "3.running_mean" in names
    assert net.collect_params()["0.weight"].shape == (6, 0, 5, 5)   # learnt on first use
    net(batch()[0])
    assert net.collect_params()["0.weight"].shape == (6, 1, 5, 5)
    assert net.collect_params()["7.weight"].shape == (32, 256)
    assert list(net.collect_params("running")) == ["3.running_mean", "3.running_var"]
    with pytest.raises(lm.gluon.DeferredInitializationError):
        d = nn.Dense(3)
        d.initialize()
        d.weight.data()


def train_step(net, x, y, loss_fn):
    with lm.autograd.record():
        loss = loss_fn(net(x), y)
    loss.backward()
    return loss


def test_hybridized_equals_imperative_forward_and_gradients():
    x, y = batch()
    lm.random.seed(7)
    a = lenet()
    a.initialize(lm.gluon.init.Xavier())
    a(x)  # deferred init
    b = lenet()
    b.initialize()
    b(x)
    for pa, pb in zip(a.collect_params().values(), b.collect_params().values()):
        pb.set_data(pa.data())
    b.hybridize()
    loss_fn = lm.gluon.loss.SoftmaxCrossEntropyLoss()
    for _ in range(2):  # the second call replays the traced graph
        la, lb = train_step(a, x, y, loss_fn), train_step(b, x, y, loss_fn)
        assert np.array_equal(la.asnumpy(), lb.asnumpy())
        for (name, pa), pb in zip(a.collect_params().items(), b.collect_params().values()):
            if pa.grad_req != "null":
                assert np.array_equal(pa.grad().asnumpy(), pb.grad().asnumpy()), name
            else:  # running statistics move identically
                assert np.array_equal(pa.data().asnumpy(), pb.data().asnumpy()), name
    assert b._cached.num_traces == 1


def test_export_and_import_round_trip(tmp_path):
    x, _ = batch()
    net = lenet()
    net.initialize()
    net.hybridize()
    net(x)
    with lm.autograd.predict_mode():
        want = net(x).asnumpy()
    with lm.autograd.predict_mode():
        net(x)  # the predict-mode trace is the one exported
        sym_file, params_file = net.export(str(tmp_path / "lenet"))
    assert sym_file.endswith("lenet-symbol.json") and params_file.endswith("lenet-0000.params")
    loaded = nn.SymbolBlock.imports(sym_file, ["data"], params_file)
    got = loaded(x).asnumpy()
    assert np.array_equal(got, want)


def test_save_and_load_parameters_checks_names_and_shapes(tmp_path):
    x, _ = batch()
    net = lenet()
    net.initialize()
    net(x)
    path = str(tmp_path / "net.params")
    net.save_parameters(path)
    other = lenet()
    other.initialize()
    other(x)
    other.load_parameters(path)
    assert np.array_equal(other(x).asnumpy(), net(x).asnumpy())
    small = nn.HybridSequential()
    small.add(nn.Dense(4, in_units=3))
    small.initialize()
    with pytest.raises(ValueError, match=r"not in the block: \[.2.weight.*shapes differ: 0.weight: file \(6, 1, 5, 5\), block \(4, 3\)"):
        small.load_parameters(path)


def test_losses_match_numpy():
    pred = rng.standard_normal((5, 4)).astype(np.float32)
    label = rng.integers(0, 4, 5)
    logp = pred - np.log(np.exp(pred).sum(1, keepdims=True))
    got = lm.gluon.loss.SoftmaxCrossEntropyLoss()(lm.nd.array(pred), lm.nd.array(label, dtype="int64"))
    np.testing.assert_allclose(got.asnumpy(), -logp[np.arange(5), label], rtol=1e-5)
    dense = np.eye(4, dtype=np.float32)[label]
    got = lm.gluon.loss.SoftmaxCrossEntropyLoss(sparse_label=False)(lm.nd.array(pred), lm.nd.array(dense))
    np.testing.assert_allclose(got.asnumpy(), -logp[np.arange(5), label], rtol=1e-5)
    target = rng.standard_normal((5, 4)).astype(np.float32)
    w = rng.random((5, 1)).astype(np.float32)
    got = lm.gluon.loss.L2Loss()(lm.nd.array(pred), lm.nd.array(target), lm.nd.array(w))
    np.testing.assert_allclose(got.asnumpy(), (0.5 * (pred - target) ** 2 * w).mean(1), rtol=1e-5)


@pytest.mark.parametrize("optimizer, params", [("sgd", {"learning_rate": 0.1, "wd": 0.01}),
                                               ("sgd", {"learning_rate": 0.1, "momentum": 0.9}),
                                               ("adam", {"learning_rate": 0.01})])
def test_trainer_applies_the_update_rule(optimizer, params):
    d = nn.Dense(3, in_units=4)
    d.initialize()
    w0 = d.weight.data().asnumpy().copy()
    x = lm.nd.array(rng.standard_normal((8, 4)).astype(np.float32))
    trainer = lm.gluon.Trainer(d.collect_params(), optimizer, params)
    with lm.autograd.record():
        loss = lm.nd.sum(d(x) ** 2)
    loss.backward()
    g = d.weight.grad().asnumpy() / 8
    trainer.step(8)
    lr = params["learning_rate"]
    if optimizer == "sgd":
        want = w0 - lr * (g + params.get("wd", 0.0) * w0)  # the first momentum step is plain SGD
    else:
        m, v = 0.1 * g, 0.001 * g * g
        want = w0 - lr * np.sqrt(1 - 0.999) / (1 - 0.9) * m / (np.sqrt(v) + 1e-8)
    np.testing.assert_allclose(d.weight.data().asnumpy(), want, rtol=1e-4, atol=1e-6)


def test_hybridized_dropout_in_training_matches_imperative():
    def make():
        net = nn.HybridSequential()
        net.add(nn.Dense(32, activation="relu", in_units=20), nn.Dropout(0.5), nn.Dense(5, in_units=32))
        net.initialize()
        return net

    x = lm.nd.array(rng.standard_normal((8, 20)).astype(np.float32))
    y = lm.nd.array(rng.integers(0, 5, 8), dtype="int64")
    a, b = make(), make()
    for pa, pb in zip(a.collect_params().values(), b.collect_params().values()):
        pb.set_data(pa.data())
    b.hybridize()
    loss_fn = lm.gluon.loss.SoftmaxCrossEntropyLoss()
    for step in range(3):
        lm.random.seed(step)
        la = train_step(a, x, y, loss_fn)
        lm.random.seed(step)
        lb = train_step(b, x, y, loss_fn)
        assert np.array_equal(la.asnumpy(), lb.asnumpy())
        for pa, pb in zip(a.collect_params().values(), b.collect_params().values()):
            assert np.array_equal(pa.grad().asnumpy(), pb.grad().asnumpy())


def test_load_parameters_checks_the_dims_a_deferred_block_knows():
    a = nn.Dense(5, in_units=20, use_bias=False)
    a.initialize()
    path = "/tmp/loom_test_deferred_load.params"
    a.save_parameters(path)
    b = nn.Dense(10, use_bias=False)  # (10, ?) cannot take (5, 20)
    b.initialize()
    with pytest.raises(ValueError, match=r"shapes differ: weight: file \(5, 20\), block \(10, 0\)"):
        b.load_parameters(path)
    c = nn.Dense(5, use_bias=False)
    c.initialize()
    c.load_parameters(path)
    assert c(lm.nd.ones((2, 20))).shape == (2, 5)


def test_export_after_one_call_and_a_symbol_block_of_another_batch_size(tmp_path):
    """The first call ran imperatively (deferred initialisation), yet export
    works; Flatten is the flatten op, so the graph keeps no batch size."""
    net = nn.HybridSequential()
    net.add(nn.Conv2D(2, 3), nn.Flatten(), nn.Dense(3))
    net.initialize()
    net.hybridize()
    net(lm.nd.ones((2, 1, 5, 5)))
    prefix = str(tmp_path / "net")
    net.export(prefix)
    back = nn.SymbolBlock.imports(prefix + "-symbol.json", ["data"], prefix + "-0000.params")
    x4 = lm.nd.array(rng.standard_normal((4, 1, 5, 5)).astype(np.float32))
    np.testing.assert_allclose(back(x4).asnumpy(), net(x4).asnumpy(), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match=r"SymbolBlock: input\(s\) \['input'\] are not variables of the symbol"):
        nn.SymbolBlock.imports(prefix + "-symbol.json", ["input"], prefix + "-0000.params")


def test_an_imported_batch_norm_trains_under_record(tmp_path):
    """An export traced in predict mode has batch_norm(training=False);
    under autograd.record() the SymbolBlock runs it in training mode, as the
    native block does, and updates the running statistics."""
    net = nn.HybridSequential()
    net.add(nn.Conv2D(2, 3, in_channels=1), nn.BatchNorm())
    net.initialize()
    net.hybridize()
    x = lm.nd.array(rng.standard_normal((4, 1, 6, 6)).astype(np.float32) * 3 + 5)
    net(x)
    prefix = str(tmp_path / "bn")
    net.export(prefix)
    back = nn.SymbolBlock.imports(prefix + "-symbol.json", ["data"], prefix + "-0000.params")
    with lm.autograd.record():
        got = back(x)
        want = net(x)
    np.testing.assert_allclose(got.asnumpy(), want.asnumpy(), rtol=1e-5, atol=1e-5)
    running = [p for n, p in back.collect_params().items() if n.endswith("running_mean")][0]
    np.testing.assert_allclose(running.data().asnumpy(), net[1].running_mean.data().asnumpy(), rtol=1e-6)


def test_hybridized_trace_key_reads_numpy_arguments_by_content():
    """Two NumPy arrays whose reprs agree (the middle elided) are different
    values: each gets its own trace."""
    class Scale(nn.HybridBlock):
        def forward(self, x, k):
            return x * lm.nd.array(k)

    a1 = np.zeros((2, 2000), np.float32)
    a2 = a1.copy()
    a2[0, 1000] = 1
    assert repr(a1) == repr(a2)
    block = Scale()
    block.hybridize()
    x = lm.nd.ones((2, 2000))
    assert block(x, a1).sum().item() == 0.0 and block(x, a2).sum().item() == 1.0


def test_a_parameter_shared_by_two_layers_is_stepped_once():
    """collect_params() lists a tied weight under both layers' names; the
    Trainer stepped it twice, doubling every update (torch's parameters()
    removes the duplicate too)."""
    class Tied(nn.HybridBlock):
        def __init__(self):
            super().__init__()
            self.a = nn.Dense(4, in_units=4, use_bias=False)
            self.b = nn.Dense(4, in_units=4, use_bias=False)
            self.b.weight = self.a.weight

        def forward(self, x):
            return self.b(self.a(x))

    net = Tied()
    net.initialize()
    assert len(net.collect_params()) == 2
    trainer = lm.gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1})
    before = net.a.weight.data().asnumpy()
    with lm.autograd.record():
        loss = net(lm.nd.array(rng.standard_normal((3, 4)).astype(np.float32))).sum()
    loss.backward()
    grad = net.a.weight.grad().asnumpy()
    trainer.step(1)
    np.testing.assert_allclose(net.a.weight.data().asnumpy(), before - 0.1 * grad, rtol=1e-6, atol=1e-7)
