"""Tracing imperative code into graphs (lm.cached_op, the core of hybridize):
the replay equals the imperative run bit for bit, gradients included, and
tracing refuses what it cannot capture instead of freezing it."""
import numpy as np
import pytest

import loom as lm
from loom.cached_op import CachedOp

rng = np.random.default_rng(3)


def arr(*shape):
    return lm.nd.array(rng.standard_normal(shape).astype(np.float32))


def mlp(x, w1, b1, w2):
    h = lm.nd.relu(lm.nd.linear(x, w1, b1))
    return lm.nd.linear(h, w2) * 0.5 + 1


def test_replay_equals_imperative_and_traces_once_per_signature():
    params = {"w1": arr(16, 8), "b1": arr(16), "w2": arr(4, 16)}
    op = CachedOp(lambda x: mlp(x, params["w1"], params["b1"], params["w2"]), "mlp")
    for _ in range(3):
        x = arr(5, 8)
        y = op([x], params)
        assert np.array_equal(y.asnumpy(), mlp(x, **params).asnumpy())
    assert op.num_traces == 1
    op([arr(7, 8)], params)
    assert op.num_traces == 2
    sym = op.symbol([arr(7, 8)], params)
    assert sym.list_arguments() == ["data", "w1", "b1", "w2", "_const0", "_const1"]
    assert [n for n in sym.tojson().split('"op":"')[1:]][0].startswith("linear")


def test_gradients_through_the_replay_equal_imperative():
    values = {"w1": rng.standard_normal((16, 8)), "b1": rng.standard_normal(16), "w2": rng.standard_normal((4, 16))}
    x = arr(5, 8)

    def run(replay):
        params = {k: lm.nd.array(v.astype(np.float32)) for k, v in values.items()}
        for p in params.values():
            p.attach_grad()
        op = CachedOp(lambda x: mlp(x, params["w1"], params["b1"], params["w2"]), "mlp")
        with lm.autograd.record():
            y = op([x], params) if replay else mlp(x, **params)
            loss = lm.nd.sum(y * y)
        loss.backward()
        return loss.asnumpy(), {k: p.grad.asnumpy() for k, p in params.items()}

    loss_r, grads_r = run(True)
    loss_i, grads_i = run(False)
    assert np.array_equal(loss_r, loss_i)
    for k in values:
        assert np.array_equal(grads_r[k], grads_i[k]), k


def test_lenet_body_and_composites_trace_as_single_nodes():
    w, b = arr(6, 1, 5, 5), arr(6)
    gamma, beta = arr(6), arr(6)

    def body(x):
        y = lm.nd.convolution(x, w, b, padding=[2])
        y = lm.nd.group_norm(y, gamma, beta, num_groups=2)
        y = lm.nd.max_pool(lm.nd.relu(y), kernel=[2])
        return y.reshape(x.shape[0], -1)

    op = CachedOp(body, "lenet")
    params = {"w": w, "b": b, "gamma": gamma, "beta": beta}
    x = arr(3, 1, 12, 12)
    assert np.array_equal(op([x], params).asnumpy(), body(x).asnumpy())
    ops = [n.split('"')[0] for n in op.symbol([x], params).tojson().split('"op":"')[1:]]
    # group_norm is a composite over layer_norm: one node, not its insides
    assert ops == ["convolution", "group_norm", "relu", "max_pool", "reshape"]


def test_multi_output_ops_and_several_outputs():
    def f(x):
        values, indices = lm.nd.topk(x, 2)
        return values * 2, indices

    op = CachedOp(f, "topk")
    x = arr(3, 6)
    v, i = op([x])
    rv, ri = f(x)
    assert np.array_equal(v.asnumpy(), rv.asnumpy()) and np.array_equal(i.asnumpy(), ri.asnumpy())


def test_batch_norm_running_statistics_update_on_replay():
    def make():
        return {"g": lm.nd.ones((3,)), "b": lm.nd.zeros((3,)), "m": lm.nd.zeros((3,)), "v": lm.nd.ones((3,))}

    x = arr(4, 3, 5)
    traced, eager = make(), make()
    op = CachedOp(lambda x: lm.nd.batch_norm(x, traced["g"], traced["b"], traced["m"], traced["v"],
                                             training=True), "bn")
    for _ in range(2):
        y = op([x], traced)
        r = lm.nd.batch_norm(x, eager["g"], eager["b"], eager["m"], eager["v"], training=True)
    assert np.array_equal(y.asnumpy(), r.asnumpy())
    assert np.array_equal(traced["m"].asnumpy(), eager["m"].asnumpy())
    assert np.array_equal(traced["v"].asnumpy(), eager["v"].asnumpy())


def test_a_freed_temporary_never_stands_for_a_later_array():
    """x.sum() is freed once gt has read it; the scalar 2 made next can get
    its storage's address. The trace once took 2 for the sum's node and
    computed data * sum: silently wrong."""
    x = lm.nd.array(np.array([0.5, 1.0], np.float32))
    for f in (lambda x: lm.nd.where(x.sum() > 0, x * 2, x),
              lambda x: lm.nd.where(lm.nd.ne(x.sum(), lm.nd.zeros(())), x * 2, x),
              lambda x: (x.mean() > 0).astype("float32") * x + 1):
        np.testing.assert_array_equal(CachedOp(f, "temporaries")([x]).asnumpy(), f(x).asnumpy())


def test_arrays_from_outside_are_constants_with_their_value_at_trace_time():
    c = arr(4)
    op = CachedOp(lambda x: x + c, "closure")
    x = arr(2, 4)
    assert np.array_equal(op([x]).asnumpy(), (x + c).asnumpy())
    assert op.symbol([x]).list_arguments() == ["data", "_const0"]


def test_reading_values_while_tracing_names_the_function_and_line():
    def branchy(x):
        if lm.nd.sum(x).item() > 0:  # a Python branch on data
            return x
        return -x

    with pytest.raises(lm.LoomError, match=r"branchy: item reads an array's value .*test_cached_op.py:\d+"):
        CachedOp(branchy, "branchy")([arr(3)])
    with pytest.raises(ValueError, match="asnumpy reads an array's value"):
        CachedOp(lambda x: x.asnumpy(), "peek")([arr(3)])
    # the guard is off again afterwards, and ops run for real again (the
    # exception info pytest keeps holds the tracer, which must not matter)
    assert arr(2).asnumpy().shape == (2,)
    np.testing.assert_allclose(lm.nd.exp(lm.nd.array([0.0])).asnumpy(), [1.0])
    # an exception kept alive (as a test runner keeps a failure's) holds the
    # tracer through its frames: the trace still ended when it was raised
    try:
        CachedOp(branchy, "branchy")([arr(3)])
    except lm.LoomError as kept:
        assert kept.__traceback__ is not None
        assert lm.nd.zeros((2,)).asnumpy().tolist() == [0.0, 0.0]


def test_mutation_and_untraceable_arrays_are_refused():
    def inplace(x):
        y = lm.nd.exp(x)
        y += 1
        return y

    with pytest.raises(ValueError, match="in-place calls cannot be traced"):
        CachedOp(inplace, "inplace")([arr(3)])

    def indexed(x):
        return lm.nd.exp(x[0])

    with pytest.raises(ValueError, match="computed during tracing by an operation that cannot be traced"):
        CachedOp(indexed, "indexed")([arr(2, 3)])

    def dropout(x):
        return lm.nd.dropout(x, 0.5)

    # outside training dropout is the identity, which traces
    x = arr(4)
    assert np.array_equal(CachedOp(dropout, "dropout")([x]).asnumpy(), x.asnumpy())


def test_dropout_draws_a_fresh_mask_on_every_replay_like_the_imperative_run():
    def net(x):
        return lm.nd.dropout(lm.nd.relu(x), 0.5) * 2 + lm.nd.dropout(x, 0.25)

    x = arr(64, 32)
    op = CachedOp(net, "dropout")
    with lm.autograd.train_mode():
        lm.random.seed(11)
        eager = [net(x).asnumpy() for _ in range(3)]
        lm.random.seed(11)
        replay = [op([x]).asnumpy() for _ in range(3)]
    assert op.num_traces == 1
    for e, r in zip(eager, replay):
        assert np.array_equal(e, r)
    assert not np.array_equal(replay[1], replay[2])  # not a frozen mask


def test_traced_symbol_exports_and_reloads():
    w = arr(3, 4)
    op = CachedOp(lambda x: lm.nd.tanh(lm.nd.linear(x, w)), "export")
    x = arr(2, 4)
    sym = op.symbol([x], {"w": w})
    back = lm.sym.load_json(sym.tojson())
    ex = back.bind(lm.cpu(), args={"data": x, "w": w})
    assert np.array_equal(ex.forward()[0].asnumpy(), op([x], {"w": w}).asnumpy())


def test_constants_fold_once_and_equal_nodes_merge():
    c = arr(4)
    op = CachedOp(lambda x: x + lm.nd.exp(c * 2) + lm.nd.exp(c * 2), "fold")
    x = arr(3, 4)
    assert np.array_equal(op([x]).asnumpy(), (x + lm.nd.exp(c * 2) + lm.nd.exp(c * 2)).asnumpy())
    sym = op.symbol([x])
    ops = [n.split('"')[0] for n in sym.tojson().split('"op":"')[1:]]
    assert ops == ["add", "add"]  # c*2 and both exps ran once, at trace time
    assert [n for n in sym.list_arguments() if n.startswith("_folded")]

    a = lm.sym.var("a")
    twice = lm.sym.exp(a) * lm.sym.exp(a)
    merged = lm.symbol.Symbol(lm._C.graph.eliminate_common_subexpressions(twice._h))
    ops = [n.split('"')[0] for n in merged.tojson().split('"op":"')[1:]]
    assert ops == ["exp", "mul"]
    av = arr(5)
    out = twice.bind(lm.cpu(), args={"a": av}).forward()[0]
    np.testing.assert_array_equal(out.asnumpy(), (lm.nd.exp(av) * lm.nd.exp(av)).asnumpy())


def test_batch_norm_calls_are_never_merged():
    x = lm.sym.var("x")
    g, b, m, v = (lm.sym.var(n) for n in ("g", "b", "m", "v"))
    two = lm.sym.batch_norm(x, g, b, m, v, name="bn0") + lm.sym.batch_norm(x, g, b, m, v, name="bn1")
    merged = lm.symbol.Symbol(lm._C.graph.eliminate_common_subexpressions(two._h))
    assert [n.split('"')[0] for n in merged.tojson().split('"op":"')[1:]].count("batch_norm") == 2


def _ops(symbol):
    return [n.split('"')[0] for n in symbol.tojson().split('"op":"')[1:]]


def test_a_relu_reading_batch_norm_alone_folds_into_it():
    """batch_norm absorbs relu (its YAML `absorbs`): one fused node, with
    the same output, running statistics and gradients as the two ops."""
    g0, b0 = arr(3).asnumpy(), arr(3).asnumpy()

    def make():
        return {"g": lm.nd.array(g0), "b": lm.nd.array(b0), "m": lm.nd.zeros((3,)), "v": lm.nd.ones((3,))}

    traced, eager = make(), make()
    op = CachedOp(lambda x: lm.nd.relu(lm.nd.batch_norm(x, traced["g"], traced["b"], traced["m"], traced["v"])),
                  "bn_relu")
    x = arr(4, 3, 5)
    assert _ops(op.symbol([x], traced)) == ["batch_norm"]
    assert '"relu":true' in op.symbol([x], traced).tojson().replace(" ", "")
    for p in (traced, eager):
        p["g"].attach_grad()
    for params in (traced, eager):
        xg = lm.nd.array(x.asnumpy())
        xg.attach_grad()
        with lm.autograd.record():
            if params is traced:
                y = op([xg], traced)
            else:
                y = lm.nd.relu(lm.nd.batch_norm(xg, eager["g"], eager["b"], eager["m"], eager["v"]))
        y.backward(lm.nd.array(np.linspace(-1, 1, y.size).reshape(y.shape).astype(np.float32)))
        params["y"], params["dx"] = y.asnumpy(), xg.grad.asnumpy()
    for k in ("y", "dx", "m", "v"):
        a, b = traced[k], eager[k]
        np.testing.assert_allclose(a if isinstance(a, np.ndarray) else a.asnumpy(),
                                   b if isinstance(b, np.ndarray) else b.asnumpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(traced["g"].grad.asnumpy(), eager["g"].grad.asnumpy(), rtol=1e-5, atol=1e-6)


def test_batch_norm_keeps_its_relu_when_its_output_is_read_elsewhere():
    x = lm.sym.var("x")
    bn = lm.sym.batch_norm(x, name="bn")
    shared = lm.sym.relu(bn) + bn  # the normalised values are read twice
    assert _ops(lm.symbol.Symbol(lm._C.graph.fold_epilogues(shared._h))) == ["batch_norm", "relu", "add"]
    both = lm.sym.Group([lm.sym.relu(bn), bn])  # and as a head
    assert sorted(_ops(lm.symbol.Symbol(lm._C.graph.fold_epilogues(both._h)))) == ["batch_norm", "relu"]
    alone = lm.sym.relu(lm.sym.relu(lm.sym.batch_norm(x, name="bn2")))  # the second relu stays
    assert _ops(lm.symbol.Symbol(lm._C.graph.fold_epilogues(alone._h))) == ["batch_norm", "relu"]


def test_unused_parameters_are_fine():
    w, unused = arr(3), arr(7)
    op = CachedOp(lambda x: x * w, "unused")
    x = arr(3)
    assert np.array_equal(op([x], {"w": w, "unused": unused}).asnumpy(), (x * w).asnumpy())
