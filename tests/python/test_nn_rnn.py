"""LSTM against PyTorch's nn.LSTM given identical weights: outputs, final
states and every gradient (input, initial states, weights, biases), for
one and two layers, one and two directions."""
import numpy as np
import pytest

import loom as lm

torch = pytest.importorskip("torch")


def _param_names(num_layers, bidirectional):
    """nn.LSTM/GRU/RNN's parameter names per layer and direction, in lm.nd's weights order."""
    return [[f"{w}_l{layer}{suffix}" for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            for layer in range(num_layers) for suffix in ([""] + (["_reverse"] if bidirectional else []))]


def _loom_weights(net, names):
    weights = [[lm.nd.array(getattr(net, n).detach().numpy()) for n in group] for group in names]
    for group in weights:
        for w in group:
            w.attach_grad()
    return weights


def _check_weight_grads(net, names, weights, tol):
    for group, lgroup in zip(names, weights):
        for n, lp in zip(group, lgroup):
            np.testing.assert_allclose(lp.grad.asnumpy(), getattr(net, n).grad.numpy(), **tol, err_msg=n)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("num_layers, bidirectional", [(1, False), (2, False), (2, True)])
def test_lstm_matches_torch_nn_lstm(num_layers, bidirectional, dtype):
    torch.manual_seed(0)
    steps, batch, inputs, hidden = 7, 3, 5, 6
    net = torch.nn.LSTM(inputs, hidden, num_layers=num_layers, bidirectional=bidirectional)
    net = net.double() if dtype == "float64" else net
    directions = 2 if bidirectional else 1
    rng = np.random.default_rng(1)
    x = rng.standard_normal((steps, batch, inputs)).astype(dtype)
    h0 = rng.standard_normal((num_layers * directions, batch, hidden)).astype(dtype)
    c0 = rng.standard_normal((num_layers * directions, batch, hidden)).astype(dtype)
    names = _param_names(num_layers, bidirectional)
    lweights = _loom_weights(net, names)
    lx, lh, lc = lm.nd.array(x), lm.nd.array(h0), lm.nd.array(c0)
    for a in (lx, lh, lc):
        a.attach_grad()
    with lm.autograd.record():
        y, (hn, cn) = lm.nd.lstm(lx, lweights, lh, lc, num_layers=num_layers, bidirectional=bidirectional)
        loss = (y * y).sum() + (hn * 2.0).sum() + (cn * cn).sum()
    loss.backward()

    tx, th, tc = (torch.tensor(a, requires_grad=True) for a in (x, h0, c0))
    ty, (thn, tcn) = net(tx, (th, tc))
    ((ty * ty).sum() + (thn * 2.0).sum() + (tcn * tcn).sum()).backward()

    tol = dict(rtol=1e-4, atol=1e-5) if dtype == "float32" else dict(rtol=1e-10, atol=1e-11)
    np.testing.assert_allclose(y.asnumpy(), ty.detach().numpy(), **tol)
    np.testing.assert_allclose(hn.asnumpy(), thn.detach().numpy(), **tol)
    np.testing.assert_allclose(cn.asnumpy(), tcn.detach().numpy(), **tol)
    np.testing.assert_allclose(lx.grad.asnumpy(), tx.grad.numpy(), **tol, err_msg="dx")
    np.testing.assert_allclose(lh.grad.asnumpy(), th.grad.numpy(), **tol, err_msg="dh0")
    np.testing.assert_allclose(lc.grad.asnumpy(), tc.grad.numpy(), **tol, err_msg="dc0")
    _check_weight_grads(net, names, lweights, tol)


def test_lstm_shape_errors_name_the_op():
    x = lm.nd.zeros((4, 2, 3))
    with pytest.raises(ValueError, match=r"lstm_layer: w_ih must be \(4 \* hidden, input\) = \(20, 3\)"):
        lm.nd.lstm_layer(x, lm.nd.zeros((20, 4)), lm.nd.zeros((20, 5)))
    with pytest.raises(ValueError, match=r"lstm_layer: h0 must be \(batch, hidden\) = \(2, 5\)"):
        lm.nd.lstm_layer(x, lm.nd.zeros((20, 3)), lm.nd.zeros((20, 5)), h0=lm.nd.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"lstm: expected 4 \(w_ih, w_hh, b_ih, b_hh\) tuples"):
        lm.nd.lstm(x, [], num_layers=2, bidirectional=True)


def test_lstm_second_derivative_is_refused_clearly():
    x = lm.nd.array(np.ones((2, 1, 3)))
    w_ih, w_hh = lm.nd.array(np.full((8, 3), 0.1)), lm.nd.array(np.full((8, 2), 0.1))
    x.attach_grad()
    with lm.autograd.record():
        y, _, _ = lm.nd.lstm_layer(x, w_ih, w_hh)
        with pytest.raises(NotImplementedError, match="lstm_layer: gradients of gradients are not supported"):
            lm.autograd.grad([y.sum()], [x], create_graph=True)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("num_layers, bidirectional", [(1, False), (2, True)])
def test_gru_matches_torch_nn_gru(num_layers, bidirectional, dtype):
    torch.manual_seed(1)
    steps, batch, inputs, hidden = 6, 3, 4, 5
    net = torch.nn.GRU(inputs, hidden, num_layers=num_layers, bidirectional=bidirectional)
    net = net.double() if dtype == "float64" else net
    directions = 2 if bidirectional else 1
    rng = np.random.default_rng(2)
    x = rng.standard_normal((steps, batch, inputs)).astype(dtype)
    h0 = rng.standard_normal((num_layers * directions, batch, hidden)).astype(dtype)
    names = _param_names(num_layers, bidirectional)
    lweights = _loom_weights(net, names)
    lx, lh = lm.nd.array(x), lm.nd.array(h0)
    for a in (lx, lh):
        a.attach_grad()
    with lm.autograd.record():
        y, hn = lm.nd.gru(lx, lweights, lh, num_layers=num_layers, bidirectional=bidirectional)
        loss = (y * y).sum() + (hn * 3.0).sum()
    loss.backward()
    tx, th = torch.tensor(x, requires_grad=True), torch.tensor(h0, requires_grad=True)
    ty, thn = net(tx, th)
    ((ty * ty).sum() + (thn * 3.0).sum()).backward()
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == "float32" else dict(rtol=1e-10, atol=1e-11)
    np.testing.assert_allclose(y.asnumpy(), ty.detach().numpy(), **tol)
    np.testing.assert_allclose(hn.asnumpy(), thn.detach().numpy(), **tol)
    np.testing.assert_allclose(lx.grad.asnumpy(), tx.grad.numpy(), **tol, err_msg="dx")
    np.testing.assert_allclose(lh.grad.asnumpy(), th.grad.numpy(), **tol, err_msg="dh0")
    _check_weight_grads(net, names, lweights, tol)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_matches_torch_nn_rnn(nonlinearity):
    torch.manual_seed(2)
    net = torch.nn.RNN(4, 5, num_layers=2, bidirectional=True, nonlinearity=nonlinearity).double()
    rng = np.random.default_rng(3)
    x, h0 = rng.standard_normal((6, 3, 4)), rng.standard_normal((4, 3, 5))
    names = _param_names(2, True)
    lweights = _loom_weights(net, names)
    lx, lh = lm.nd.array(x), lm.nd.array(h0)
    for a in (lx, lh):
        a.attach_grad()
    with lm.autograd.record():
        y, hn = lm.nd.rnn(lx, lweights, lh, num_layers=2, bidirectional=True, nonlinearity=nonlinearity)
        loss = (y * y).sum() + (hn * 3.0).sum()
    loss.backward()
    tx, th = torch.tensor(x, requires_grad=True), torch.tensor(h0, requires_grad=True)
    ty, thn = net(tx, th)
    ((ty * ty).sum() + (thn * 3.0).sum()).backward()
    tol = dict(rtol=1e-10, atol=1e-11)
    np.testing.assert_allclose(y.asnumpy(), ty.detach().numpy(), **tol)
    np.testing.assert_allclose(hn.asnumpy(), thn.detach().numpy(), **tol)
    np.testing.assert_allclose(lx.grad.asnumpy(), tx.grad.numpy(), **tol, err_msg="dx")
    np.testing.assert_allclose(lh.grad.asnumpy(), th.grad.numpy(), **tol, err_msg="dh0")
    _check_weight_grads(net, names, lweights, tol)


@pytest.mark.parametrize("name", ["lstm", "gru", "rnn"])
def test_initial_states_need_one_entry_per_layer_and_direction(name):
    rng = np.random.default_rng(7)
    fn = getattr(lm.nd, name)
    gates = {"lstm": 4, "gru": 3, "rnn": 1}[name]
    weights = [[lm.nd.array(rng.standard_normal(s).astype(np.float32))
                for s in ((gates * 4, 3), (gates * 4, 4), (gates * 4,), (gates * 4,))],
               [lm.nd.array(rng.standard_normal(s).astype(np.float32))
                for s in ((gates * 4, 4), (gates * 4, 4), (gates * 4,), (gates * 4,))]]
    x = lm.nd.array(rng.standard_normal((5, 2, 3)).astype(np.float32))
    one = lm.nd.zeros((1, 2, 4))  # one entry where two layers need two
    states = (one, lm.nd.zeros((2, 2, 4))) if name == "lstm" else (one,)
    with pytest.raises(ValueError, match=rf"{name}: h0 must be \(num_layers \* directions, batch, hidden\) "
                                         r"with 2 x 1 = 2 leading entries, got shape \(1, 2, 4\)"):
        fn(x, weights, *states, num_layers=2)
    with pytest.raises(ValueError, match=f"{name}: num_layers must be a positive int, got 0"):
        fn(x, [], num_layers=0)
