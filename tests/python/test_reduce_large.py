"""Reductions at sizes the generated suites (small hypothesis shapes) do not
reach: the thread-split full reduction, long strided reductions, and the
accuracy of float32 sums (accumulated in double)."""
import numpy as np
import pytest

import loom as lm


def test_full_sum_of_millions_is_accurate():
    x = np.random.default_rng(0).standard_normal(3_000_001).astype(np.float32)
    got = lm.nd.sum(lm.nd.array(x)).asnumpy()
    want = x.astype(np.float64).sum()
    # Accumulating in double leaves only the final rounding to float32.
    assert abs(float(got) - want) <= abs(want) * 1e-6 + 1e-3


@pytest.mark.parametrize("axis", [0, 1])
def test_long_reductions_along_each_axis(axis):
    x = np.random.default_rng(1).uniform(-1, 1, size=(3, 200_000)).astype(np.float64)
    for name, ref in (("sum", np.sum), ("max", np.max), ("min", np.min), ("mean", np.mean)):
        got = getattr(lm.nd, name)(lm.nd.array(x), dims=axis).asnumpy()
        np.testing.assert_allclose(got, ref(x, axis=axis), rtol=1e-10, err_msg=name)


def test_reduction_of_a_transposed_view_with_keepdim():
    x = np.arange(24, dtype=np.int32).reshape(2, 3, 4)
    view = lm.nd.array(np.ascontiguousarray(x.transpose(2, 1, 0))).T  # strides reversed
    got = lm.nd.sum(view, dims=[0, 2], keepdim=True).asnumpy()
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, x.sum(axis=(0, 2), keepdims=True))


def test_max_over_an_empty_dim_is_a_value_error_naming_the_op():
    with pytest.raises(ValueError, match=r"max: cannot reduce over dim 1 of shape \(2, 0\)"):
        lm.nd.max(lm.nd.zeros((2, 0)), dims=1)
    assert lm.nd.sum(lm.nd.zeros((2, 0)), dims=1).asnumpy().tolist() == [0.0, 0.0]


@pytest.mark.parametrize("seed", range(6))
def test_outer_reductions_with_wide_kept_dims(seed):
    # Kept innermost dims of 16+ take the column strategy; shapes and dims vary.
    rng = np.random.default_rng(seed)
    shape = tuple(int(s) for s in rng.integers(1, 40, size=rng.integers(2, 5)))
    shape = shape[:-1] + (int(rng.integers(16, 300)),)
    dims = sorted(set(int(d) for d in rng.integers(0, len(shape) - 1, size=2)))
    x = rng.standard_normal(shape)
    norm = lambda a, axis, keepdims: np.sqrt(np.sum(a * a, axis=axis, keepdims=keepdims))  # noqa: E731
    for name, ref in (("sum", np.sum), ("max", np.max), ("min", np.min), ("mean", np.mean), ("prod", np.prod),
                      ("norm", norm),
                      ("logsumexp", lambda a, axis, keepdims: np.log(np.sum(np.exp(a), axis=axis, keepdims=keepdims)))):
        for keepdim in (False, True):
            got = getattr(lm.nd, name)(lm.nd.array(x), dims=dims, keepdim=keepdim).asnumpy()
            np.testing.assert_allclose(got, ref(x, axis=tuple(dims), keepdims=keepdim), rtol=1e-10,
                                       err_msg=f"{name} {shape} dims={dims}")
    xi = rng.integers(-50, 50, size=shape).astype(np.int32)
    got = lm.nd.sum(lm.nd.array(xi), dims=dims).asnumpy()
    np.testing.assert_array_equal(got, xi.sum(axis=tuple(dims)))
