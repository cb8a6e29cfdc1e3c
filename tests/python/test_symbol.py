"""lm.sym: building graphs, their structure, shape/dtype inference and JSON."""
import json

import numpy as np
import pytest

import loom as lm

sym = lm.sym


def mlp():
    data = sym.var("data")
    h = sym.relu(sym.linear(data, name="fc1"), name="relu1")
    return sym.linear(h, name="fc2")


def test_missing_weights_become_variables_named_after_the_node():
    net = mlp()
    assert net.list_arguments() == ["data", "fc1_w", "fc2_w"]
    assert net.list_outputs() == ["fc2_output"]
    assert net.name == "fc2"
    # an optional array left out is absent, given it is an argument
    b = sym.var("fc3_bias")
    net3 = sym.linear(net, b=b, name="fc3")
    assert net3.list_arguments() == ["data", "fc1_w", "fc2_w", "fc3_w", "fc3_bias"]


def test_auto_names_are_unique_per_op():
    x = sym.var("x")
    a, b = sym.exp(x), sym.exp(x)
    assert a.name != b.name and a.name.startswith("exp") and b.name.startswith("exp")


def test_group_internals_and_indexing():
    net = mlp()
    internals = net.get_internals()
    assert internals.list_outputs() == ["data", "fc1_w", "fc1_output", "relu1_output", "fc2_w", "fc2_output"]
    hidden = internals["relu1_output"]
    assert hidden.list_arguments() == ["data", "fc1_w"]
    g = sym.Group([net, hidden])
    assert g.list_outputs() == ["fc2_output", "relu1_output"]
    assert len(g) == 2 and g[1].list_outputs() == ["relu1_output"] and g[-1].name == "relu1"
    with pytest.raises(KeyError, match="no output named"):
        internals["nope"]
    with pytest.raises(IndexError):
        g[5]


def test_multi_output_op_and_picking_one():
    x = sym.var("x")
    t = sym.topk(x, k=2, name="top")
    assert t.list_outputs() == ["top_values", "top_indices"]
    with pytest.raises(ValueError, match="pick one with sym"):
        sym.relu(t)
    y = sym.relu(t[0])
    _, out, _ = y.infer_shape(x=(3, 5))
    assert out == [(3, 2)]
    shaped = t(x=sym.var("x", shape=(3, 5), dtype="float64"))
    assert shaped.infer_type()[1] == ["float64", "int64"]


def test_list_op_takes_any_number_of_symbols():
    a, b, c = sym.var("a"), sym.var("b"), sym.var("c")
    cat = sym.concat(a, b, c, dim=0)
    assert cat.list_arguments() == ["a", "b", "c"]
    _, out, _ = cat.infer_shape(a=(1, 4), b=(2, 4), c=(3, 4))
    assert out == [(6, 4)]
    assert sym.concat([a, b], dim=1).infer_shape(a=(2, 1), b=(2, 3))[1] == [(2, 4)]


def test_composition_replaces_variables():
    net = mlp()
    x = sym.var("x")
    scaled = x * 2.0
    composed = net(data=scaled)
    assert composed.list_arguments() == ["x", "fc1_w", "fc2_w"]
    # the original is unchanged
    assert net.list_arguments() == ["data", "fc1_w", "fc2_w"]
    positional = net(sym.var("y"))
    assert positional.list_arguments()[0] == "y"
    with pytest.raises(ValueError, match="no argument named 'nope'"):
        net(nope=x)
    with pytest.raises(TypeError, match="must be a Symbol"):
        net(data=3)


def test_infer_shape_full_and_partial():
    net = mlp()
    args, outs, aux = net.infer_shape(data=(8, 20), fc1_w=(16, 20), fc2_w=(10, 16))
    assert args == [(8, 20), (16, 20), (10, 16)] and outs == [(8, 10)] and aux == []
    args, outs, _ = net.infer_shape(data=(8, 20), fc1_w=(16, 20))
    assert args == [(8, 20), (16, 20), None] and outs == [None]
    # positional, in list_arguments order
    assert net.infer_shape((8, 20), (16, 20), (10, 16))[1] == [(8, 10)]


def test_infer_shape_conflict_names_the_node_and_the_shapes():
    net = mlp()
    with pytest.raises(ValueError) as err:
        net.infer_shape(data=(8, 20), fc1_w=(16, 21), fc2_w=(10, 16))
    msg = str(err.value)
    assert "node 'fc1' (linear)" in msg and "(8, 20)" in msg and "(16, 21)" in msg
    declared = sym.relu(sym.var("x", shape=(2, 3)))
    with pytest.raises(ValueError, match=r"'x' is declared with shape \(2, 3\) but given \(4, 3\)"):
        declared.infer_shape(x=(4, 3))
    with pytest.raises(ValueError, match="no variable named 'nope'"):
        declared.infer_shape(nope=(1,))


def test_declared_shapes_and_dtypes_are_used():
    x = sym.var("x", shape=(2, 3), dtype="float64")
    y = sym.exp(x) + 1
    assert y.infer_shape()[1] == [(2, 3)]
    assert y.infer_type()[1] == ["float64"]


def test_infer_type_follows_the_ops_dtype_rules():
    a, b = sym.var("a"), sym.var("b")
    s = a + b
    shaped = s(a=sym.var("a", shape=(2,)), b=sym.var("b", shape=(2,)))
    args, outs, _ = shaped.infer_type(a="float64", b="float32")
    assert args == ["float64", "float32"] and outs == ["float64"]
    cmp = sym.lt(sym.var("p", shape=(3,)), sym.var("q", shape=(3,)))
    assert cmp.infer_type()[1] == ["bool"]


def test_infer_type_needs_no_shapes():
    """Without a single shape, the dtypes follow from each op's YAML dtype
    rule (MXNet's infer_type with partial information): promotion, fixed
    result dtypes (bool, int64), same-as rules through views, and unknown
    where an input's dtype is."""
    x, w, i = sym.var("x"), sym.var("w"), sym.var("i")
    y = sym.relu(sym.matmul(x, w))
    assert y.infer_type(x="float64")[:2] == (["float64", "float32"], ["float64"])  # w: float32 by default
    assert sym.argmax(y).infer_type(x="float16", w="float16")[1] == ["int64"]
    assert sym.sum(sym.var("n")).infer_type(n="int32")[1] == ["int64"]  # sum widens integers
    values, indices = sym.topk(x, 2)[0], sym.topk(x, 2)[1]
    assert sym.Group([values, indices]).infer_type(x="float64")[1] == ["float64", "int64"]
    assert sym.concat(x, w, dim=0).infer_type(x="float64", w="float32")[1] == ["float64"]
    assert sym.take(w, i).infer_type(w="float64", i="int64")[1] == ["float64"]  # the index takes no part
    assert sym.reshape(x, shape=(-1,)).infer_type(x="int32")[1] == ["int32"]
    assert (x > w).infer_type()[1] == ["bool"]
    # a cast or a fill names its dtype in an attribute (traced graphs hold both)
    from loom.symbol import _apply
    cast = sym.cast(x, dtype="float64")
    assert _apply("cast", [x], {"dtype": 1}, None).infer_type(x="int32")[1] == ["float64"]  # a traced graph's form
    assert cast.infer_type(x="int32")[1] == ["float64"]
    fill = _apply("full", [], {"shape": [2], "value": 1.0, "dtype": 6}, None)  # int32
    assert (cast + fill).infer_type(x="int32")[1] == ["float64"]  # float64 + int32


def test_scalar_operands_follow_the_weak_scalar_rule():
    x64 = sym.var("x", shape=(3,), dtype="float64")
    assert (x64 + 1).infer_type()[1] == ["float64"]
    assert (2.5 * x64).infer_type()[1] == ["float64"]
    xi = sym.var("i", shape=(3,), dtype="int32")
    assert (xi + 1).infer_type()[1] == ["int32"]
    assert (xi * 0.5).infer_type()[1] == ["float32"]
    assert (-x64).infer_shape()[1] == [(3,)]


def test_operator_argument_errors():
    x = sym.var("x")
    with pytest.raises(TypeError, match="unexpected argument .nope."):
        sym.sum(x, nope=1)
    with pytest.raises(TypeError, match="attribute 'kernel'.*is required"):
        sym.max_pool(x)
    with pytest.raises(TypeError, match="expects int, got 0.5"):
        sym.topk(x, k=0.5)
    with pytest.raises(TypeError, match="must be a Symbol"):
        sym.relu(np.zeros(3))


def test_json_round_trip_is_exact():
    x = sym.var("data", shape=(2, 1, 8, 8))
    w = sym.var("w")
    c = sym.convolution(x, w, stride=[2], padding=1, name="conv")
    p = sym.max_pool(sym.relu(c), kernel=[2], name="pool")
    net = sym.Group([sym.flatten(p, name="flat"), c])
    text = net.tojson()
    doc = json.loads(text)
    assert doc["format"] == "loom-symbol" and doc["version"] == 1
    conv = next(n for n in doc["nodes"] if n["name"] == "conv")
    # every attribute is stored, defaults included
    assert conv["attrs"] == {"dilation": [1], "groups": 1, "padding": [1], "stride": [2]}
    back = sym.load_json(text)
    assert back.tojson() == text
    assert back.list_outputs() == net.list_outputs()
    assert back.infer_shape(w=(4, 1, 3, 3))[1] == net.infer_shape(w=(4, 1, 3, 3))[1]


def test_save_and_load_file(tmp_path):
    net = mlp()
    path = tmp_path / "net-symbol.json"
    net.save(str(path))
    assert sym.load(str(path)).tojson() == net.tojson()


@pytest.mark.parametrize("text, match", [
    ("not json", "not valid JSON"),
    ('{"nodes": []}', "not a loom symbol"),
    ('{"format": "loom-symbol", "version": 99, "nodes": [], "heads": []}', "version 99 is not supported"),
    ('{"format": "loom-symbol", "version": 1, "nodes": [{"name": "a", "op": "frobnicate", "attrs": {}, '
     '"inputs": []}], "heads": []}', "unknown operator 'frobnicate'"),
    ('{"format": "loom-symbol", "version": 1, "nodes": [{"name": "r", "op": "relu", "attrs": {}, '
     '"inputs": [[3, 0]]}], "heads": []}', "does not come before it"),
    ('{"format": "loom-symbol", "version": 1, "nodes": [{"name": "x", "op": null}, {"name": "r", "op": "relu", '
     '"attrs": {}, "inputs": [[0, 0], [0, 0]]}], "heads": [[1, 0]]}', "takes 1 array inputs"),
    ('{"format": "loom-symbol", "version": 1, "nodes": [{"name": "x", "op": null}, {"name": "r", "op": "relu", '
     '"attrs": {}, "inputs": [null]}], "heads": [[1, 0]]}', "is required"),
    ('{"format": "loom-symbol", "version": 1, "nodes": [{"name": "x", "op": null}, {"name": "s", "op": "sum", '
     '"attrs": {"keepdim": "yes"}, "inputs": [[0, 0]]}], "heads": [[1, 0]]}', "unsupported attribute value"),
])
def test_malformed_json_is_rejected_with_a_reason(text, match):
    with pytest.raises((ValueError, TypeError), match=match):
        sym.load_json(text)


def test_auxiliary_states_are_the_arrays_an_op_updates():
    x = sym.var("x")
    names = ["gamma", "beta", "moving_mean", "moving_var"]
    g, b, m, v = (sym.var(n) for n in names)
    bn = sym.batch_norm(x, g, b, m, v, name="bn")
    assert bn.list_arguments() == ["x", "gamma", "beta"]
    assert bn.list_auxiliary_states() == ["moving_mean", "moving_var"]
    args, outs, aux = bn.infer_shape(x=(4, 3, 5), gamma=(3,), beta=(3,), moving_mean=(3,), moving_var=(3,))
    assert outs == [(4, 3, 5)] and aux == [(3,), (3,)]


def test_every_nd_operator_has_a_symbolic_twin():
    skipped = {"dropout", "lstm", "gru", "rnn"}  # Python composites of lm.nd, not operators
    for name in lm._C.list_ops():
        assert hasattr(sym, name), name
    assert not any(hasattr(sym, n) for n in skipped)


def test_keyword_only_attributes_in_nd_and_sym():
    q = lm.nd.zeros((1, 2, 4))
    with pytest.raises(TypeError):
        lm.nd.scaled_dot_product_attention(q, q, q, None, False, 0.5)
    with pytest.raises(TypeError, match="by keyword only"):
        lm.sym.scaled_dot_product_attention(*[lm.sym.var(n) for n in "qkv"], None, False, 0.5)
    s = lm.sym.scaled_dot_product_attention(*[lm.sym.var(n) for n in "qkv"], scale=0.5)
    assert s.infer_shape(q=(1, 2, 4), k=(1, 3, 4), v=(1, 3, 4))[1] == [(1, 2, 4)]


def test_infer_shape_refuses_negative_dims_by_variable():
    s = sym.relu(sym.var("data"))
    with pytest.raises(ValueError, match=r"infer_shape: data's shape \(1, 1, -4, 4\) has a negative dim"):
        s.infer_shape(data=(1, 1, -4, 4))
