"""An op whose output is a list of arrays (`Tensor[]` with a count
attribute: split) through every path an op takes: imperative calls and
autograd, symbols (output names, shape inference, JSON), executors,
traced replay (hybridize) and argument errors. The generated
generated/tests/test_split.py checks its values against NumPy."""
import json

import numpy as np
import pytest

import loom as lm
from loom.cached_op import CachedOp

sym = lm.sym
rng = np.random.default_rng(11)


def test_returns_a_list_of_views_in_order():
    x = rng.standard_normal((2, 6, 3)).astype(np.float32)
    parts = lm.nd.split(lm.nd.array(x), 3, axis=1)
    assert isinstance(parts, list) and len(parts) == 3
    for got, want in zip(parts, np.split(x, 3, axis=1)):
        assert got.shape == want.shape and not got.is_contiguous()
        np.testing.assert_array_equal(got.asnumpy(), want)
    # MXNet's defaults: axis 1; squeeze_axis drops it from parts of size 1
    rows = lm.nd.array(x).split(6, squeeze_axis=True)
    assert [r.shape for r in rows] == [(2, 3)] * 6
    np.testing.assert_array_equal(rows[4].asnumpy(), x[:, 4, :])


def test_gradient_reaches_only_the_parts_used():
    x = lm.nd.array(rng.standard_normal((4, 6)))
    x.attach_grad()
    with lm.autograd.record():
        a, _, c = lm.nd.split(x, 3, axis=1)
        loss = (a * 2.0).sum() + (c * c).sum()
    loss.backward()
    want = np.zeros((4, 6))
    want[:, 0:2] = 2.0
    want[:, 4:6] = 2.0 * x.asnumpy()[:, 4:6]
    np.testing.assert_allclose(x.grad.asnumpy(), want, rtol=1e-12)


def test_squeezed_parts_gradient_stacks_back():
    x = lm.nd.array(rng.standard_normal((3, 4)))
    x.attach_grad()
    with lm.autograd.record():
        cols = lm.nd.split(x, 4, axis=-1, squeeze_axis=True)
        loss = sum(((k + 1.0) * c).sum() for k, c in enumerate(cols))
    loss.backward()
    np.testing.assert_allclose(x.grad.asnumpy(), np.tile([1.0, 2.0, 3.0, 4.0], (3, 1)))


@pytest.mark.parametrize("kwargs, match", [
    (dict(num_outputs=0), r"split: num_outputs must be in \[1, 16777216\], got 0"),
    (dict(num_outputs=10**10, axis=0), "split: num_outputs must be in"),
    (dict(num_outputs=4, axis=1), r"split: axis 1 of shape \(2, 6\) has 6 elements, which num_outputs = 4 does not"),
    (dict(num_outputs=2, axis=1, squeeze_axis=True), "split: squeeze_axis needs parts of size 1"),
    (dict(num_outputs=2, axis=2), "split"),
])
def test_bad_arguments_raise_value_errors_naming_split(kwargs, match):
    with pytest.raises((ValueError, IndexError), match=match):
        lm.nd.split(lm.nd.zeros((2, 6)), **kwargs)


def test_split_with_sizes_cuts_parts_of_the_given_sizes():
    x = rng.standard_normal((2, 6, 3))
    parts = lm.nd.array(x).split_with_sizes([1, 2, 0, 3], dim=-2)
    assert [p.shape for p in parts] == [(2, 1, 3), (2, 2, 3), (2, 0, 3), (2, 3, 3)]
    np.testing.assert_array_equal(parts[3].asnumpy(), x[:, 3:, :])
    with pytest.raises(ValueError, match=r"split_with_sizes: sizes \(2, 2\) add up to 4, but dim 1 of shape "
                                         r"\(2, 6, 3\) has 6 elements"):
        lm.nd.split_with_sizes(lm.nd.array(x), [2, 2], dim=1)
    with pytest.raises(ValueError, match="split_with_sizes: sizes .* has a negative size"):
        lm.nd.split_with_sizes(lm.nd.array(x), [7, -1], dim=1)
    with pytest.raises(ValueError, match=r"split_with_sizes: len\(sizes\) must be in \[1, 16777216\], got 0"):
        lm.nd.split_with_sizes(lm.nd.array(x), [], dim=1)
    with pytest.raises(TypeError, match="split_with_sizes: sizes is required"):
        lm.nd.split_with_sizes(lm.nd.array(x), None, dim=1)
    s = sym.split_with_sizes(sym.var("x"), sizes=[4, 1], dim=1, name="cut")
    assert s.list_outputs() == ["cut_out0", "cut_out1"]
    assert s.infer_shape(x=(3, 5))[1] == [(3, 4), (3, 1)]


def test_symbol_has_one_output_per_part_named_by_position():
    x = sym.var("x")
    s = sym.split(x, num_outputs=3, axis=0, name="sp")
    assert len(s) == 3
    assert s.list_outputs() == ["sp_out0", "sp_out1", "sp_out2"]
    _, out_shapes, _ = s.infer_shape(x=(6, 5))
    assert out_shapes == [(2, 5)] * 3
    y = sym.exp(s[1])
    assert y.infer_shape(x=(6, 5))[1] == [(2, 5)]
    one = sym.split(x, num_outputs=1, axis=0, name="whole")
    assert one.list_outputs() == ["whole_output"]
    with pytest.raises(ValueError, match="num_outputs must be in"):
        sym.split(x, num_outputs=0)
    # dtypes without shapes reach every part
    assert sym.split(x, num_outputs=3, axis=0).infer_type(x="float64")[1] == ["float64"] * 3


def test_bad_axis_and_0d_inputs_name_the_axis():
    with pytest.raises(IndexError, match="split: a 0-d array has no dim"):
        lm.nd.split(lm.nd.array(np.float32(1.0)), 1, axis=0)


def test_viz_gives_each_node_its_own_shapes_after_a_split():
    x = sym.var("data")
    _, wide = sym.split_with_sizes(x, sizes=[1, 5], dim=1, name="cut")
    y = sym.sum(sym.exp(wide, name="e"), name="total")
    nodes, shapes = lm.viz._graph(y, {"data": (4, 6)})
    index = {n["name"]: i for i, n in enumerate(nodes)}
    assert shapes[(index["cut"], 0)] == (4, 1) and shapes[(index["cut"], 1)] == (4, 5)
    assert shapes[(index["e"], 0)] == (4, 5) and shapes[(index["total"], 0)] == ()


def test_json_round_trip_keeps_the_count():
    s = sym.split(sym.var("x"), num_outputs=4, axis=1, squeeze_axis=True, name="sp")
    back = sym.load_json(s.tojson())
    assert back.tojson() == s.tojson()
    assert back.list_outputs() == [f"sp_out{k}" for k in range(4)]
    node = [n for n in json.loads(s.tojson())["nodes"] if n["op"] == "split"][0]
    assert node["attrs"]["num_outputs"] in (4, "4")
    assert back.infer_shape(x=(2, 4, 3))[1] == [(2, 3)] * 4


def test_executor_forward_and_backward_through_every_part():
    x = sym.var("x")
    parts = sym.split(x, num_outputs=2, axis=1)
    y = sym.sum(sym.exp(parts[0])) + sym.sum(parts[1] * parts[1])
    xv = rng.standard_normal((3, 4)).astype(np.float32)
    ex = y.simple_bind(lm.cpu(), x=(3, 4))
    out = ex.forward(is_train=True, x=xv)[0]
    np.testing.assert_allclose(out.asnumpy(), np.exp(xv[:, :2]).sum() + (xv[:, 2:] ** 2).sum(), rtol=1e-5)
    ex.backward()
    want = np.concatenate([np.exp(xv[:, :2]), 2 * xv[:, 2:]], axis=1)
    np.testing.assert_allclose(ex.grad_dict["x"].asnumpy(), want, rtol=1e-5)
    grouped = parts.simple_bind(lm.cpu(), x=(3, 4))
    outs = grouped.forward(x=xv)
    assert len(outs) == 2
    np.testing.assert_array_equal(outs[1].asnumpy(), xv[:, 2:])


def test_traced_replay_equals_imperative_with_gradients():
    def f(x):
        a, b, c = lm.nd.split(x, 3, axis=0)
        return a * b + c

    xv = rng.standard_normal((6, 5)).astype(np.float32)

    def run(replay):
        x = lm.nd.array(xv)
        x.attach_grad()
        op = CachedOp(f, "split3")
        with lm.autograd.record():
            y = op([x]) if replay else f(x)
            loss = (y * y).sum()
        loss.backward()
        return y.asnumpy(), x.grad.asnumpy(), op

    y_r, g_r, op = run(True)
    y_i, g_i, _ = run(False)
    assert np.array_equal(y_r, y_i) and np.array_equal(g_r, g_i)
    traced = op.symbol([lm.nd.array(xv)])
    assert '"op":"split"' in traced.tojson().replace(" ", "")
