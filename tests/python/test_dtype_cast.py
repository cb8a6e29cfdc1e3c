"""cast (opdefs/elementwise/cast.yaml) and x.astype, which is it: every
dtype pair against NumPy (with loom's defined results where NumPy leaves
them undefined: saturation, NaN -> 0), half results rounded once from
float64, the gradient, graphs and the errors."""
import numpy as np
import pytest

import loom as lm
import refs

NUMPY_DTYPES = ["float32", "float64", "float16", "int8", "uint8", "int32", "int64", "bool"]
VALUES = np.array([0.0, 1.0, -1.0, 2.5, -2.5, 3.75, 100.0, -100.0, 127.0, 255.0, 65504.0, 1e6, -1e6])


@pytest.mark.parametrize("to", NUMPY_DTYPES)
@pytest.mark.parametrize("source", NUMPY_DTYPES)
def test_every_dtype_pair_matches_numpy(source, to):
    x = refs.cast(VALUES, source)
    got = lm.nd.cast(lm.nd.array(x), to)
    assert got.dtype == to
    with np.errstate(over="ignore", invalid="ignore"):
        want = refs.cast(x, to)
    np.testing.assert_array_equal(got.asnumpy(), want, err_msg=f"{source} -> {to}")
    np.testing.assert_array_equal(lm.nd.array(x).astype(to).asnumpy(), want)   # the method is the op


@pytest.mark.parametrize("to", ["int8", "uint8", "int32", "int64"])
def test_float_to_integer_saturates_and_takes_nan_to_zero(to):
    info = np.iinfo(to)
    x = lm.nd.array(np.array([np.nan, np.inf, -np.inf, 1e30, -1e30, -0.9, 0.9]))
    assert lm.nd.cast(x, to).asnumpy().tolist() == [0, info.max, info.min, info.max, info.min, 0, 0]


def test_half_results_round_once_from_wide_sources():
    # Just above the midpoint between 1 and the next float16: float64 ->
    # float32 would land on the midpoint, and float32 -> float16 would then
    # round to even (down). One correct rounding goes up, as NumPy does.
    v = np.array([1 + 2.0**-11 + 2.0**-40, -(1 + 2.0**-11 + 2.0**-40), 2049.0 + 2.0**-30])
    np.testing.assert_array_equal(lm.nd.cast(lm.nd.array(v), "float16").asnumpy(), v.astype(np.float16))
    big = np.array([2**24 + 2**16 + 1], dtype=np.int64)   # int64 -> bfloat16: above the bfloat16 midpoint
    got = lm.nd.cast(lm.nd.cast(lm.nd.array(big), "bfloat16"), "float64").asnumpy()
    assert got[0] == 2**24 + 2**17   # the midpoint 2**24 + 2**16 rounds (to even) down; one past it rounds up


def test_bfloat16_round_trip_and_rounding():
    x = lm.nd.array(np.array([1.0, 1.00390625, 1.005859375, -3.140625]))  # 1 + 2^-8 is a tie, 1 + 1.5*2^-8 is not
    got = lm.nd.cast(lm.nd.cast(x, "bfloat16"), "float32").asnumpy()
    np.testing.assert_array_equal(got, [1.0, 1.0, 1.0078125, -3.140625])


def test_gradient_converts_back_and_gradgrad_works():
    x = np.random.default_rng(3).standard_normal((3, 4))
    lm.autograd.gradcheck(lambda t: lm.nd.cast(t * t, "float64") * 2.0, [x], eps=1e-6, atol=1e-6, rtol=1e-5)
    a = lm.nd.array(x.astype(np.float32))
    a.attach_grad()
    with lm.autograd.record():
        y = (lm.nd.cast(a, "float64") * 3.0).sum()
    y.backward()
    assert a.grad.dtype == "float32"
    np.testing.assert_array_equal(a.grad.asnumpy(), np.full((3, 4), 3.0, np.float32))


def test_out_and_strided_inputs():
    x = lm.nd.array(np.arange(12, dtype=np.float64).reshape(3, 4) + 0.5)
    out = lm.nd.zeros((4, 3), dtype="int32")
    lm.nd.cast(x.T, "int32", out=out)
    np.testing.assert_array_equal(out.asnumpy(), (np.arange(12).reshape(3, 4)).T)
    with pytest.raises(TypeError, match="cast: out= has dtype float32 but the result has dtype int32"):
        lm.nd.cast(x, "int32", out=lm.nd.zeros((3, 4)))


def test_dtype_names_numpy_dtypes_and_errors():
    x = lm.nd.array([1.5, -2.5])
    assert lm.nd.cast(x, np.int64).dtype == "int64"
    assert x.astype(np.dtype("float16")).dtype == "float16"
    copy = lm.nd.cast(x, "float32")          # the op always makes a new array
    copy += 1.0
    assert x.asnumpy().tolist() == [1.5, -2.5]
    with pytest.raises(TypeError, match="unknown dtype 'float128'"):
        lm.nd.cast(x, "float128")


def test_graph_node_infers_its_dtype_and_runs():
    s = lm.sym.cast(lm.sym.var("x"), dtype="int32")
    assert s.infer_type(x="float32")[1] == ["int32"]
    ex = s.bind(lm.cpu(), args={"x": lm.nd.array([1.9, -1.9, 300.0])})
    assert ex.forward()[0].asnumpy().tolist() == [1, -1, 300]


def test_hybridized_astype_traces_a_cast_node(tmp_path):
    class Net(lm.gluon.HybridBlock):
        def forward(self, x):
            return x.astype("float64") * 2.0

    net = Net()
    net.hybridize()
    x = lm.nd.array([1.0, 2.0])
    np.testing.assert_array_equal(net(x).asnumpy(), [2.0, 4.0])
    assert net(x).dtype == "float64"
    sym_file, _ = net.export(str(tmp_path / "net"))
    assert '"op": "cast"' in open(sym_file).read().replace('"op":"cast"', '"op": "cast"')
