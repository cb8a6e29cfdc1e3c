"""More Gluon layers, losses, initialisers, schedulers and optimisers,
against NumPy or PyTorch given the same weights."""
import numpy as np
import pytest

import loom as lm
from loom.gluon import nn

rng = np.random.default_rng(4)


def arr(*shape):
    return lm.nd.array(rng.standard_normal(shape).astype(np.float32))


def test_norm_layers_match_numpy():
    x = arr(2, 6, 5)
    ln = nn.LayerNorm()
    ln.initialize()
    xs = x.asnumpy()
    want = (xs - xs.mean(-1, keepdims=True)) / np.sqrt(xs.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(ln(x).asnumpy(), want, rtol=1e-4, atol=1e-5)
    gn = nn.GroupNorm(num_groups=3)
    gn.initialize()
    g = xs.reshape(2, 3, -1)
    want = ((g - g.mean(-1, keepdims=True)) / np.sqrt(g.var(-1, keepdims=True) + 1e-5)).reshape(xs.shape)
    np.testing.assert_allclose(gn(x).asnumpy(), want, rtol=1e-4, atol=1e-5)
    inorm = nn.InstanceNorm()
    inorm.initialize()
    want = (xs - xs.mean(-1, keepdims=True)) / np.sqrt(xs.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(inorm(x).asnumpy(), want, rtol=1e-4, atol=1e-5)


def test_embedding_prelu_gelu():
    emb = nn.Embedding(10, 4)
    emb.initialize()
    idx = lm.nd.array([[1, 2], [9, 0]], dtype="int64")
    np.testing.assert_array_equal(emb(idx).asnumpy(), emb.weight.data().asnumpy()[[[1, 2], [9, 0]]])
    pr = nn.PReLU(0.1)
    pr.initialize()
    x = arr(3, 4)
    np.testing.assert_allclose(pr(x).asnumpy(), np.where(x.asnumpy() > 0, x.asnumpy(), 0.1 * x.asnumpy()), rtol=1e-6)


def test_lstm_matches_torch():
    torch = pytest.importorskip("torch")
    layer = lm.gluon.rnn.LSTM(8, num_layers=2, bidirectional=True, input_size=5)
    layer.initialize()
    ref = torch.nn.LSTM(5, 8, num_layers=2, bidirectional=True)
    for layer_k in range(2):
        for d, suffix in enumerate(("", "_reverse")):
            tag = f"l{layer_k}" + suffix
            for mine, theirs in (("i2h_weight", "weight_ih"), ("h2h_weight", "weight_hh"), ("i2h_bias", "bias_ih"),
                                 ("h2h_bias", "bias_hh")):
                getattr(layer, f"{tag}_{mine}").set_data(
                    lm.nd.array(getattr(ref, f"{theirs}_l{layer_k}{suffix}").detach().numpy()))
    x = arr(7, 3, 5)
    y, (h, c) = layer(x, layer.begin_state(3))
    ty, (th, tc) = ref(torch.from_numpy(x.asnumpy()))
    np.testing.assert_array_equal(layer(x).asnumpy(), y.asnumpy())  # no states in: the output alone
    np.testing.assert_allclose(y.asnumpy(), ty.detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(h.asnumpy(), th.detach().numpy(), rtol=1e-4, atol=1e-5)
    cell = lm.gluon.rnn.GRUCell(6, input_size=5)
    cell.initialize()
    out, states = cell(arr(3, 5), cell.begin_state(3))
    assert out.shape == (3, 6) and states[0].shape == (3, 6)


def test_attention_and_transformer_layer_hybridize_consistently():
    mha = nn.MultiHeadAttention(8, 2, in_units=8)
    mha.initialize()
    x = arr(2, 5, 8)
    q = mha.query(x).asnumpy().reshape(2, 5, 2, 4).transpose(0, 2, 1, 3)
    k = mha.key(x).asnumpy().reshape(2, 5, 2, 4).transpose(0, 2, 1, 3)
    v = mha.value(x).asnumpy().reshape(2, 5, 2, 4).transpose(0, 2, 1, 3)
    s = q @ k.transpose(0, 1, 3, 2) / 2.0
    p = np.exp(s - s.max(-1, keepdims=True))
    heads = (p / p.sum(-1, keepdims=True)) @ v
    want = mha.out(lm.nd.array(heads.transpose(0, 2, 1, 3).reshape(2, 5, 8).astype(np.float32))).asnumpy()
    np.testing.assert_allclose(mha(x).asnumpy(), want, rtol=1e-4, atol=1e-5)
    enc = nn.TransformerEncoderLayer(8, 2, 16)
    enc.initialize()
    eager = enc(x).asnumpy()
    enc.hybridize()
    enc(x)
    assert np.array_equal(enc(x).asnumpy(), eager)


def test_more_losses_match_numpy():
    pred, label = rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal((4, 3)).astype(np.float32)
    d = np.abs(pred - label)
    huber = lm.gluon.loss.HuberLoss(rho=0.5)(lm.nd.array(pred), lm.nd.array(label)).asnumpy()
    np.testing.assert_allclose(huber, np.where(d < 0.5, d * d, d - 0.25).mean(1), rtol=1e-5)
    sign = np.sign(label)
    hinge = lm.gluon.loss.HingeLoss()(lm.nd.array(pred), lm.nd.array(sign)).asnumpy()
    np.testing.assert_allclose(hinge, np.maximum(0, 1 - pred * sign).mean(1), rtol=1e-5)
    p = np.exp(label) / np.exp(label).sum(1, keepdims=True)
    logq = pred - np.log(np.exp(pred).sum(1, keepdims=True))
    kl = lm.gluon.loss.KLDivLoss(from_logits=False)(lm.nd.array(pred), lm.nd.array(p.astype(np.float32))).asnumpy()
    np.testing.assert_allclose(kl, (p * (np.log(p) - logq)).mean(1), rtol=1e-4)


def test_ctc_loss_matches_torch():
    torch = pytest.importorskip("torch")
    logits = rng.standard_normal((2, 12, 5)).astype(np.float32)  # NTC
    labels = np.array([[1, 2, 2, -1], [3, 1, 4, 2]])
    got = lm.gluon.loss.CTCLoss()(lm.nd.array(logits), lm.nd.array(labels, dtype="int64")).asnumpy()
    logp = torch.log_softmax(torch.from_numpy(logits).transpose(0, 1), -1)
    want = torch.nn.functional.ctc_loss(logp, torch.tensor([[1, 2, 2, 0], [3, 1, 4, 2]]), torch.tensor([12, 12]),
                                        torch.tensor([3, 4]), reduction="none").numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4)


def test_orthogonal_init_schedulers_and_clipping():
    w = lm.gluon.init.Orthogonal(scale=1.0)("weight", (4, 6))
    np.testing.assert_allclose(w @ w.T, np.eye(4), atol=1e-6)
    s = lm.gluon.lr_scheduler.FactorScheduler(step=10, factor=0.5, base_lr=1.0)
    assert [s(0), s(10), s(25)] == [1.0, 0.5, 0.25]
    m = lm.gluon.lr_scheduler.MultiFactorScheduler([5, 8], factor=0.1, base_lr=1.0, warmup_steps=2)
    assert m(1) == pytest.approx(0.5) and m(6) == pytest.approx(0.1) and m(9) == pytest.approx(0.01)
    c = lm.gluon.lr_scheduler.CosineScheduler(100, base_lr=1.0, final_lr=0.0)
    assert c(0) == pytest.approx(1.0) and c(50) == pytest.approx(0.5) and c(100) == pytest.approx(0.0)
    g = [lm.nd.array([3.0, 0.0]), lm.nd.array([4.0])]
    norm = lm.gluon.utils.clip_global_norm(g, 1.0)
    assert norm == pytest.approx(5.0)
    np.testing.assert_allclose(np.concatenate([a.asnumpy() for a in g]), [0.6, 0.0, 0.8], rtol=1e-5)


def test_trainer_scheduler_and_lamb():
    d = nn.Dense(2, in_units=3)
    d.initialize()
    sched = lm.gluon.lr_scheduler.FactorScheduler(step=1, factor=0.5, base_lr=0.4)
    trainer = lm.gluon.Trainer(d.collect_params(), "lamb", {"learning_rate": 0.4, "lr_scheduler": sched})
    x = arr(4, 3)
    w0 = d.weight.data().asnumpy().copy()
    with lm.autograd.record():
        loss = lm.nd.sum(d(x))
    loss.backward()
    g = d.weight.grad().asnumpy() / 4
    trainer.step(4)
    m, v = 0.1 * g, 0.001 * g * g
    update = (m / 0.1) / (np.sqrt(v / 0.001) + 1e-8)
    ratio = min(max(np.linalg.norm(w0), 1e-3), 10.0) / np.linalg.norm(update)
    np.testing.assert_allclose(d.weight.data().asnumpy(), w0 - 0.4 * ratio * update, rtol=1e-4, atol=1e-6)
    with lm.autograd.record():
        loss = lm.nd.sum(d(x))
    loss.backward()
    trainer.step(4)
    assert trainer.learning_rate == pytest.approx(0.2)


POOL_LAYERS = [  # (loom layer, its kwargs, torch functional, its kwargs, input shape)
    (nn.MaxPool1D, {"pool_size": 3, "strides": 2, "padding": 1}, "max_pool1d",
     {"kernel_size": 3, "stride": 2, "padding": 1}, (2, 3, 9)),
    (nn.MaxPool2D, {"pool_size": 2}, "max_pool2d", {"kernel_size": 2}, (2, 3, 6, 7)),
    (nn.MaxPool3D, {"pool_size": 2, "ceil_mode": True}, "max_pool3d", {"kernel_size": 2, "ceil_mode": True},
     (1, 2, 5, 4, 5)),
    (nn.AvgPool1D, {"pool_size": 2}, "avg_pool1d", {"kernel_size": 2}, (2, 3, 8)),
    (nn.AvgPool2D, {"pool_size": 3, "strides": 2, "padding": 1, "count_include_pad": False}, "avg_pool2d",
     {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False}, (2, 3, 7, 7)),
    (nn.AvgPool3D, {"pool_size": (1, 2, 2)}, "avg_pool3d", {"kernel_size": (1, 2, 2)}, (1, 2, 3, 4, 6)),
    (nn.GlobalMaxPool1D, {}, "adaptive_max_pool1d", {"output_size": 1}, (2, 3, 9)),
    (nn.GlobalMaxPool2D, {}, "adaptive_max_pool2d", {"output_size": 1}, (2, 3, 5, 6)),
    (nn.GlobalMaxPool3D, {}, "adaptive_max_pool3d", {"output_size": 1}, (1, 2, 3, 4, 5)),
    (nn.GlobalAvgPool1D, {}, "adaptive_avg_pool1d", {"output_size": 1}, (2, 3, 9)),
    (nn.GlobalAvgPool2D, {}, "adaptive_avg_pool2d", {"output_size": 1}, (2, 3, 5, 6)),
    (nn.GlobalAvgPool3D, {}, "adaptive_avg_pool3d", {"output_size": 1}, (1, 2, 3, 4, 5)),
]


@pytest.mark.parametrize("layer, kwargs, tfn, tkwargs, shape", POOL_LAYERS, ids=lambda v: getattr(v, "__name__", None))
@pytest.mark.parametrize("hybridize", [False, True])
def test_pooling_layers_match_torch(layer, kwargs, tfn, tkwargs, shape, hybridize):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal(shape)
    block = layer(**kwargs)
    if hybridize:
        block.hybridize()
    lx = lm.nd.array(x)
    lx.attach_grad()
    with lm.autograd.record():
        y = block(lx)
    y.backward(lm.nd.array(np.arange(y.size, dtype=np.float64).reshape(y.shape)))
    tx = torch.tensor(x, requires_grad=True)
    ty = getattr(torch.nn.functional, tfn)(tx, **tkwargs)
    ty.backward(torch.arange(ty.numel(), dtype=torch.float64).reshape(ty.shape))
    np.testing.assert_allclose(y.asnumpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(lx.grad.asnumpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("transpose", [False, True])
def test_convolution_layers_match_torch(dims, transpose):
    """ConvND and ConvNDTranspose with strides, padding, dilation and groups,
    in_channels learnt from the first input, against torch's layers holding
    the same weights."""
    torch = pytest.importorskip("torch")
    cls = getattr(nn, f"Conv{dims}D" + ("Transpose" if transpose else ""))
    extra = {"output_padding": 1} if transpose else {}
    block = cls(6, kernel_size=3, strides=2, padding=1, dilation=1 if transpose else 2, groups=2, **extra)
    block.initialize()
    x = rng.standard_normal((2, 4) + (7,) * dims)
    y = block(lm.nd.array(x))
    tcls = getattr(torch.nn, f"Conv{'Transpose' if transpose else ''}{dims}d")
    tblock = tcls(4, 6, 3, stride=2, padding=1, dilation=1 if transpose else 2, groups=2, **extra).double()
    assert tuple(tblock.weight.shape) == block.weight.shape
    with torch.no_grad():
        tblock.weight.copy_(torch.tensor(block.weight.data().asnumpy()))
        tblock.bias.copy_(torch.tensor(block.bias.data().asnumpy()))
    np.testing.assert_allclose(y.asnumpy(), tblock(torch.tensor(x)).detach().numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_hybridized_rnn_layers_take_and_return_states(kind):
    """A hybridized layer called with a list of states traces them as graph
    inputs and gives back (output, [states]) as the imperative call does;
    the states are inputs, not constants frozen into the first trace."""
    layer = getattr(lm.gluon.rnn, kind)(5, num_layers=2, input_size=3)
    layer.initialize()
    x = arr(6, 2, 3)
    states = [arr(*s.shape) for s in layer.begin_state(2)]
    y_imp, s_imp = layer(x, states)
    layer.hybridize()
    for _ in range(2):  # the first call traces, the second replays
        y_hyb, s_hyb = layer(x, states)
        assert isinstance(s_hyb, list) and len(s_hyb) == len(s_imp)
        np.testing.assert_allclose(y_hyb.asnumpy(), y_imp.asnumpy(), rtol=1e-5, atol=1e-6)
        for a, b in zip(s_hyb, s_imp):
            np.testing.assert_allclose(a.asnumpy(), b.asnumpy(), rtol=1e-5, atol=1e-6)
    other = [arr(*s.shape) for s in states]
    y_other, _ = layer(x, other)
    layer.hybridize(False)
    np.testing.assert_allclose(y_other.asnumpy(), layer(x, other)[0].asnumpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(y_other.asnumpy(), y_imp.asnumpy())


def test_sample_weight_of_shape_n1_weighs_each_sample_once():
    """MXNet's losses keep the reduced axis, so its documented (N, 1)
    weights scale each sample; multiplied into an (N,) loss they made (N, N)
    and gave every sample its weight times the batch's mean loss."""
    from loom.gluon import loss
    p, y = arr(3, 5), lm.nd.array(np.array([1, 0, 4]), dtype="int64")
    sw = np.array([[1.0], [0.0], [2.5]], np.float32)
    onehot = lm.nd.array(np.eye(5, dtype=np.float32)[[1, 0, 4]])
    for fn, args in ((loss.SoftmaxCrossEntropyLoss(), (p, y)),
                     (loss.SoftmaxCrossEntropyLoss(sparse_label=False), (p, onehot)),
                     (loss.CTCLoss(), (arr(3, 6, 4), lm.nd.array(np.array([[1, 2, -1], [3, 3, 1], [2, -1, -1]])))),
                     (loss.L2Loss(), (p, p * 0))):
        plain = fn(*args).asnumpy()
        # (N,) too where the loss itself is (N,); numpy's broadcasting
        # (MXNet's) lines weights up with pred's last dims otherwise
        for weights in (sw, sw[:, 0]) if not isinstance(fn, loss.L2Loss) else (sw,):
            got = fn(*args, sample_weight=lm.nd.array(weights)).asnumpy()
            np.testing.assert_allclose(got, plain * sw[:, 0], rtol=1e-6, err_msg=type(fn).__name__)


def test_ctc_loss_hybridizes_and_matches_torch():
    """Operators only: it used to read the labels back with asnumpy(), which a trace refuses."""
    torch = pytest.importorskip("torch")
    from loom.gluon import loss
    pred = arr(2, 6, 4)
    labels = np.array([[1, 2, -1], [3, 3, 1]])
    fn = loss.CTCLoss()
    imperative = fn(pred, lm.nd.array(labels)).asnumpy()
    fn.hybridize()
    for _ in range(2):
        np.testing.assert_allclose(fn(pred, lm.nd.array(labels)).asnumpy(), imperative, rtol=1e-6)
    logp = torch.log_softmax(torch.from_numpy(pred.asnumpy()).transpose(0, 1), -1)
    want = torch.nn.functional.ctc_loss(logp, torch.tensor([[1, 2, 0], [3, 3, 1]]), [6, 6], [2, 3], blank=0,
                                        reduction="none")
    np.testing.assert_allclose(imperative, want.numpy(), rtol=1e-5)


def test_a_layers_own_bias_initializer_applies():
    """Gluon's name rules (biases 0, gammas 1) are for a block-wide
    initializer; a parameter's own one applies as given, as in MXNet."""
    from loom.gluon import init
    d = nn.Dense(4, in_units=3, bias_initializer=init.Normal(1.0))
    d.initialize()
    assert np.abs(d.bias.data().asnumpy()).max() > 0
    d = nn.Dense(4, in_units=3)
    d.initialize(init.Normal(1.0))
    assert np.abs(d.bias.data().asnumpy()).max() == 0 and np.abs(d.weight.data().asnumpy()).max() > 0
    p = lm.gluon.Parameter("my_bias", shape=(3,), init=init.Constant(2.0))
    p.initialize()
    np.testing.assert_array_equal(p.data().asnumpy(), [2, 2, 2])


def test_layer_norm_over_a_middle_axis():
    """MXNet's axis is one dim, gamma and beta of its size; the op normalises
    from its axis to the end, so the layer moves the axis last and back."""
    x = arr(2, 4, 3)
    ln = nn.LayerNorm(axis=1)
    ln.initialize()
    gamma = np.arange(1, 5, dtype=np.float32)
    ln.gamma.set_data(lm.nd.array(gamma))
    xs = x.asnumpy()
    want = (xs - xs.mean(1, keepdims=True)) / np.sqrt(xs.var(1, keepdims=True) + 1e-5) * gamma.reshape(1, 4, 1)
    np.testing.assert_allclose(ln(x).asnumpy(), want, rtol=1e-5, atol=1e-6)
    ln.hybridize()
    np.testing.assert_allclose(ln(x).asnumpy(), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_nets_keep_batch_norm_in_float32(dtype):
    net = nn.HybridSequential()
    net.add(nn.Conv2D(4, 3), nn.BatchNorm())
    net.initialize()
    net.cast(dtype)
    x = arr(2, 3, 6, 6).astype(dtype)
    with lm.autograd.record():
        y = net(x)
    assert y.dtype == dtype and net[0].weight.data().dtype == dtype
    assert net[1].running_mean.data().dtype == "float32" and net[1].gamma.data().dtype == "float32"
    assert np.abs(net[1].running_mean.data().asnumpy()).max() > 0  # the statistics did update
    assert nn.BatchNorm(dtype=dtype).gamma.dtype == "float32"


def test_convolution_layers_refuse_channels_that_groups_do_not_divide():
    with pytest.raises(ValueError, match=r"Conv2DTranspose: channels \(5\) must be divisible by groups \(2\)"):
        nn.Conv2DTranspose(5, 3, groups=2)  # its weight kept 2 x 2 channels: 4 outputs, silently
    conv = nn.Conv2D(4, 3, groups=2)
    conv.initialize()
    with pytest.raises(ValueError, match=r"Conv2D: the input's 3 channels .* must be divisible by groups \(2\)"):
        conv(arr(1, 3, 5, 5))


def test_rnn_layers_take_mxnets_arguments_in_mxnets_order():
    layer = lm.gluon.rnn.LSTM(4, 2, "TNC", 0.2, input_size=3)  # 4th positional: dropout, not bidirectional
    layer.initialize()
    x = arr(5, 2, 3)
    first = layer(x).asnumpy()
    assert first.shape == (5, 2, 4)
    np.testing.assert_array_equal(layer(x).asnumpy(), first)  # predict mode: no dropout
    with lm.autograd.record():
        trained = layer(x).asnumpy()
    assert not np.allclose(trained, first)  # dropout between the layers while training
    assert lm.gluon.rnn.RNN(4)._mode == "rnn_relu"  # MXNet's default activation
    with pytest.raises(ValueError, match=r"LSTM: x must be 3-D \(time, batch, features\) for layout 'TNC', "
                                         r"got shape \(3, 4\)"):
        lm.gluon.rnn.LSTM(4)(arr(3, 4))
    mha = nn.MultiHeadAttention(8, 2)
    mha.initialize()
    with pytest.raises(ValueError, match=r"MultiHeadAttention: the query must be 3-D"):
        mha(arr(5, 8))


def test_nested_results_survive_an_export_between_calls(tmp_path):
    """Each trace keeps its result format: export() traced a predict-mode
    signature whose format the next training call took, and the following
    evaluation call got a flat [y, h, c] back."""
    layer = lm.gluon.rnn.LSTM(4, input_size=3)
    layer.initialize()
    layer.hybridize()
    x = arr(5, 2, 3)
    states = layer.begin_state(2)
    with lm.autograd.record():
        layer(x, states)
    layer.export(str(tmp_path / "lstm"))
    with lm.autograd.record():
        y, s = layer(x, states)
    y, s = layer(x, states)
    assert isinstance(s, list) and len(s) == 2 and y.shape == (5, 2, 4)


def test_arrays_inside_mixed_containers_are_refused_by_a_hybridized_call():
    class Pair(nn.HybridBlock):
        def forward(self, x, extra):
            return x if extra[1] is None else x + extra[1]

    block = Pair()
    block.hybridize()
    with pytest.raises(TypeError, match="lists and tuples holding only arrays"):
        block(arr(2), [arr(2), None])


def test_gluon_layers_mxnet_edge_cases():
    # a NaN float label is an IndexError, not class 0 (the loss cast labels to int64 itself)
    fn = lm.gluon.loss.SoftmaxCrossEntropyLoss()
    with pytest.raises(IndexError, match="NaN"):
        fn(arr(2, 4), lm.nd.array(np.array([1.0, np.nan], np.float32))).asnumpy()
    # MXNet's InstanceNorm gives beta where each channel has one value
    inorm = nn.InstanceNorm(in_channels=3)
    inorm.initialize()
    inorm.beta.set_data(lm.nd.array(np.array([1.0, 2.0, 3.0], np.float32)))
    np.testing.assert_allclose(inorm(arr(2, 3, 1, 1)).asnumpy()[0, :, 0, 0], [1, 2, 3])
    # begin_state follows the layer's precision
    layer = lm.gluon.rnn.GRU(4, input_size=3, dtype="float64")
    assert all(s.dtype == "float64" for s in layer.begin_state(2))
