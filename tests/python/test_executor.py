"""Executors (Symbol.bind / simple_bind) against the imperative path: the
same ops, so outputs and gradients must be equal bit for bit."""
import numpy as np
import pytest

import loom as lm

sym = lm.sym
rng = np.random.default_rng(7)


def randn(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def mlp_symbol():
    data, label = sym.var("data"), sym.var("label", dtype="int64")
    h = sym.relu(sym.linear(data, b=sym.var("fc1_b"), name="fc1"))
    logits = sym.linear(h, b=sym.var("fc2_b"), name="fc2")
    return sym.mean(sym.softmax_cross_entropy(logits, label), name="loss")


def test_mlp_training_step_equals_imperative_bit_for_bit():
    net = mlp_symbol()
    values = {"data": randn(8, 20), "fc1_w": randn(16, 20), "fc1_b": randn(16),
              "fc2_w": randn(10, 16), "fc2_b": randn(10)}
    labels = rng.integers(0, 10, 8)
    ex = net.simple_bind(lm.cpu(), data=(8, 20), fc1_w=(16, 20), fc1_b=(16,), fc2_w=(10, 16), fc2_b=(10,),
                         label=(8,), type_dict={"label": "int64"})
    assert "label" not in ex.grad_dict  # integer arguments take no gradient
    for name, v in values.items():
        lm.nd.array(v).copyto(ex.arg_dict[name])
    loss = ex.forward(is_train=True, label=labels)[0]
    ex.backward()

    arrays = {k: lm.nd.array(v) for k, v in values.items()}
    for a in arrays.values():
        a.attach_grad()
    with lm.autograd.record():
        h = lm.nd.relu(lm.nd.linear(arrays["data"], arrays["fc1_w"], arrays["fc1_b"]))
        logits = lm.nd.linear(h, arrays["fc2_w"], arrays["fc2_b"])
        ref = lm.nd.mean(lm.nd.softmax_cross_entropy(logits, lm.nd.array(labels, dtype="int64")))
    ref.backward()
    assert np.array_equal(loss.asnumpy(), ref.asnumpy())
    for name, a in arrays.items():
        assert np.array_equal(ex.grad_dict[name].asnumpy(), a.grad.asnumpy()), name


def test_lenet_forward_and_gradients_equal_imperative():
    data = sym.var("data")
    c1 = sym.max_pool(sym.relu(sym.convolution(data, sym.var("c1_w"), sym.var("c1_b"), name="c1")), kernel=[2])
    c2 = sym.max_pool(sym.relu(sym.convolution(c1, sym.var("c2_w"), sym.var("c2_b"), name="c2")), kernel=[2])
    out = sym.linear(sym.flatten(c2), sym.var("fc_w"), sym.var("fc_b"), name="fc")
    values = {"data": randn(2, 1, 28, 28), "c1_w": randn(6, 1, 5, 5), "c1_b": randn(6),
              "c2_w": randn(16, 6, 5, 5), "c2_b": randn(16), "fc_w": randn(10, 256), "fc_b": randn(10)}
    args = {k: lm.nd.array(v) for k, v in values.items()}
    grads = {k: lm.nd.zeros(v.shape) for k, v in values.items()}
    ex = out.bind(lm.cpu(), args=args, args_grad=grads)
    head = randn(2, 10)
    y = ex.forward(is_train=True)[0]
    ex.backward(lm.nd.array(head))

    ref_args = {k: lm.nd.array(v) for k, v in values.items()}
    for a in ref_args.values():
        a.attach_grad()
    with lm.autograd.record():
        r = lm.nd.max_pool(lm.nd.relu(lm.nd.convolution(ref_args["data"], ref_args["c1_w"], ref_args["c1_b"])),
                           kernel=[2])
        r = lm.nd.max_pool(lm.nd.relu(lm.nd.convolution(r, ref_args["c2_w"], ref_args["c2_b"])), kernel=[2])
        r = lm.nd.linear(r.reshape((2, -1)), ref_args["fc_w"], ref_args["fc_b"])
    r.backward(lm.nd.array(head))
    assert np.array_equal(y.asnumpy(), r.asnumpy())
    for k in values:
        assert np.array_equal(grads[k].asnumpy(), ref_args[k].grad.asnumpy()), k


def test_grad_req_add_accumulates_and_null_skips():
    x, w = sym.var("x"), sym.var("w")
    y = sym.sum(x * w)
    xv, wv = randn(3, 4), randn(3, 4)
    gx, gw = lm.nd.zeros((3, 4)), lm.nd.zeros((3, 4))
    ex = y.bind(lm.cpu(), args={"x": lm.nd.array(xv), "w": lm.nd.array(wv)}, args_grad={"x": gx, "w": gw},
                grad_req={"x": "add", "w": "null"})
    for _ in range(3):
        ex.forward(is_train=True)
        ex.backward()
    np.testing.assert_allclose(gx.asnumpy(), 3 * wv, rtol=1e-6)
    assert not gw.asnumpy().any()
    assert ex.grad_req == {"x": "add", "w": "null"}


def test_forward_copies_inputs_and_inference_mode_records_nothing():
    x = sym.var("x")
    ex = sym.exp(x).simple_bind(lm.cpu(), x=(2, 3))
    v = randn(2, 3)
    out = ex.forward(x=v)[0]
    np.testing.assert_array_equal(out.asnumpy(), lm.nd.exp(lm.nd.array(v)).asnumpy())
    with pytest.raises(ValueError, match=r"run forward\(is_train=True\) first"):
        ex.backward()
    with pytest.raises(ValueError, match="no argument named 'nope'"):
        ex.forward(nope=v)
    with pytest.raises(ValueError, match=r"bound with shape \(2, 3\), got \(3, 3\)"):
        ex.forward(x=randn(3, 3))


def test_batch_norm_updates_its_auxiliary_states_like_the_imperative_op():
    x = sym.var("x")
    bn = sym.batch_norm(x, sym.var("gamma"), sym.var("beta"), sym.var("mean"), sym.var("var"), name="bn")
    xv, g, b = randn(4, 3, 5), randn(3), randn(3)
    ex = bn.simple_bind(lm.cpu(), x=(4, 3, 5), gamma=(3,), beta=(3,), mean=(3,), var=(3,))
    for name, v in (("x", xv), ("gamma", g), ("beta", b)):
        lm.nd.array(v).copyto(ex.arg_dict[name])
    lm.nd.ones((3,)).copyto(ex.aux_dict["var"])
    train_out = ex.forward(is_train=True)[0].asnumpy()

    rm, rv = lm.nd.zeros((3,)), lm.nd.ones((3,))
    ref = lm.nd.batch_norm(lm.nd.array(xv), lm.nd.array(g), lm.nd.array(b), rm, rv, training=True)
    assert np.array_equal(train_out, ref.asnumpy())
    assert np.array_equal(ex.aux_dict["mean"].asnumpy(), rm.asnumpy())
    assert np.array_equal(ex.aux_dict["var"].asnumpy(), rv.asnumpy())
    # is_train=False: the running statistics normalise, and stay as they are
    test_out = ex.forward(is_train=False)[0].asnumpy()
    ref = lm.nd.batch_norm(lm.nd.array(xv), lm.nd.array(g), lm.nd.array(b), rm, rv, training=False)
    assert np.array_equal(test_out, ref.asnumpy())
    assert np.array_equal(ex.aux_dict["mean"].asnumpy(), rm.asnumpy())


def test_reshape_for_a_new_batch_shares_the_weights():
    data = sym.var("data")
    net = sym.linear(data, name="fc")
    ex = net.simple_bind(lm.cpu(), data=(4, 5), fc_w=(3, 5))
    lm.nd.array(randn(3, 5)).copyto(ex.arg_dict["fc_w"])
    ex2 = ex.reshape(data=(7, 5))
    assert ex2.arg_dict["fc_w"] is ex.arg_dict["fc_w"]
    v = randn(7, 5)
    out = ex2.forward(data=v)[0]
    assert out.shape == (7, 3)
    ref = lm.nd.linear(lm.nd.array(v), ex.arg_dict["fc_w"])
    assert np.array_equal(out.asnumpy(), ref.asnumpy())
    with pytest.raises(ValueError, match="grows an array"):
        ex.reshape(allow_up_sizing=False, data=(9, 5))


def test_group_outputs_and_output_gradients():
    x = sym.var("x")
    g = sym.Group([sym.exp(x, name="e"), sym.sum(x, name="s")])
    xv = randn(2, 2)
    ex = g.simple_bind(lm.cpu(), x=(2, 2))
    outs = ex.forward(is_train=True, x=xv)
    assert list(ex.output_dict) == ["e_output", "s_output"]
    head_e = randn(2, 2)
    ex.backward([lm.nd.array(head_e), lm.nd.array(np.float32(2.0))])
    np.testing.assert_allclose(ex.grad_dict["x"].asnumpy(), head_e * np.exp(xv) + 2.0, rtol=1e-6)
    np.testing.assert_allclose(outs[1].asnumpy(), xv.sum(), rtol=1e-6)


def test_bind_errors_name_the_variable():
    x, w = sym.var("x", shape=(2, 3)), sym.var("w")
    y = sym.matmul(x, w)
    with pytest.raises(ValueError, match=r"has no array for \['w'\]"):
        y.bind(lm.cpu(), args={"x": lm.nd.zeros((2, 3))})
    with pytest.raises(ValueError, match="'x' is declared with shape"):
        y.bind(lm.cpu(), args=[lm.nd.zeros((3, 3)), lm.nd.zeros((3, 1))])
    with pytest.raises(ValueError, match="gradient array of 'w'"):
        y.bind(lm.cpu(), args=[lm.nd.zeros((2, 3)), lm.nd.zeros((3, 1))],
               args_grad={"w": lm.nd.zeros((2, 2))})
    ex = y.bind(lm.cpu(), args=[lm.nd.zeros((2, 3)), lm.nd.zeros((4, 1))])
    with pytest.raises(ValueError, match="node '.*' \\(matmul\\)"):
        ex.forward()[0].asnumpy()
    with pytest.raises(ValueError, match="simple_bind: cannot infer the shapes of w"):
        y.simple_bind(lm.cpu())
