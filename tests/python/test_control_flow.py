"""lm.nd.contrib.foreach / while_loop / cond: imperative runs against NumPy,
hybridized runs against the imperative ones (values and gradients), and a
traced block that follows the data instead of freezing the branch taken
while tracing."""
import numpy as np
import pytest

import loom as lm

C = lm.nd.contrib
RNG = np.random.default_rng(5)


def arr(*shape):
    return lm.nd.array(RNG.standard_normal(shape).astype(np.float32))


class Block(lm.gluon.HybridBlock):
    """Runs fn(*inputs) imperatively or hybridized."""

    def __init__(self, fn):
        super().__init__()
        self._fn = fn

    def forward(self, *xs):
        return self._fn(*xs)


def run_both(fn, inputs):
    """(outputs, input gradients) of fn imperatively and hybridized, for
    the loss sum(outputs * fixed weights)."""
    results = []
    for hybrid in (False, True):
        block = Block(fn)
        if hybrid:
            block.hybridize()
        xs = [lm.nd.array(x.asnumpy()) for x in inputs]
        for x in xs:
            x.attach_grad()
        with lm.autograd.record():
            out = block(*xs)
            outs = out if isinstance(out, (list, tuple)) else [out]
            loss = sum((o * lm.nd.array(np.linspace(-1, 1, o.size).reshape(o.shape).astype(np.float32))).sum()
                       for o in outs)
        loss.backward()
        results.append(([o.asnumpy() for o in outs], [x.grad.asnumpy() for x in xs]))
    return results


def test_foreach_runs_a_recurrence_like_numpy_and_hybridizes():
    def scan(data, h0):
        outs, h = C.foreach(lambda x, h: (h * 0.5 + x, h * 0.5 + x), data, h0)
        return [outs, h]

    data, h0 = arr(6, 3), arr(3)
    (imp, igrad), (hyb, hgrad) = run_both(scan, [data, h0])
    h, ref = h0.asnumpy(), []
    for x in data.asnumpy():
        h = h * 0.5 + x
        ref.append(h)
    np.testing.assert_allclose(imp[0], np.stack(ref), rtol=1e-6)
    np.testing.assert_allclose(imp[1], ref[-1], rtol=1e-6)
    for a, b in zip(imp + igrad, hyb + hgrad):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7)
    # the gradient of h0 through six halvings: 0.5^6 of the last weight, plus the outputs' share
    assert np.abs(igrad[1]).sum() > 0


def test_foreach_takes_lists_of_data_and_states():
    a, b = arr(4, 2), arr(4, 2)
    outs, (s, t) = C.foreach(lambda xs, st: ([xs[0] * xs[1]], [st[0] + xs[0], st[1] * 2]), [a, b],
                             [lm.nd.zeros((2,)), lm.nd.ones((2,))])
    np.testing.assert_allclose(outs[0].asnumpy(), a.asnumpy() * b.asnumpy(), rtol=1e-6)
    np.testing.assert_allclose(s.asnumpy(), a.asnumpy().sum(0), rtol=1e-6)
    np.testing.assert_allclose(t.asnumpy(), np.full(2, 16.0))


def test_while_loop_stops_on_data_in_both_modes():
    """Doubles x until its sum passes a limit read from the data; the
    number of steps depends on the values, which a frozen trace would get
    wrong for the second input."""
    def grow(x, limit):
        outs, (y, steps) = C.while_loop(lambda y, k: (y.sum() < limit.sum()).astype("float32"),
                                        lambda y, k: (y * 1.0, [y * 2, k + 1]),
                                        [x, lm.nd.zeros((1,))], max_iterations=8)
        return [outs, y, steps]

    x = lm.nd.array(np.array([0.5, 1.0], np.float32))
    for limit_value in (10.0, 100.0):  # 3 steps, then 7 steps: one traced block serves both
        limit = lm.nd.array(np.array([limit_value], np.float32))
        (imp, igrad), (hyb, hgrad) = run_both(grow, [x, limit])
        steps = int(np.ceil(np.log2(limit_value / 1.5)))
        assert imp[2][0] == steps
        np.testing.assert_allclose(imp[1], x.asnumpy() * 2 ** steps)
        assert imp[0].shape == (8, 2) and not imp[0][steps:].any()  # rows past the last step are zero
        np.testing.assert_allclose(imp[0][:steps], np.stack([x.asnumpy() * 2 ** k for k in range(steps)]))
        for a, b in zip(imp + igrad, hyb + hgrad):
            np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7)

    block = Block(grow)
    block.hybridize()
    small = block(x, lm.nd.array(np.array([10.0], np.float32)))[2].asnumpy()
    large = block(x, lm.nd.array(np.array([100.0], np.float32)))[2].asnumpy()
    assert small[0] == 3 and large[0] == 7 and len(block._cached_ops) == 1  # one trace, two step counts


def test_cond_follows_the_data_inside_a_traced_block():
    def branch(x):
        return C.cond(x.sum() > 0, lambda: x * 3.0, lambda: -x)

    block = Block(branch)
    block.hybridize()
    pos, neg = lm.nd.array(np.array([1.0, 2.0], np.float32)), lm.nd.array(np.array([-1.0, -2.0], np.float32))
    np.testing.assert_allclose(block(pos).asnumpy(), [3.0, 6.0])
    np.testing.assert_allclose(block(neg).asnumpy(), [1.0, 2.0])  # not the branch traced first
    for x in (pos, neg):
        (imp, igrad), (hyb, hgrad) = run_both(branch, [x])
        for a, b in zip(imp + igrad, hyb + hgrad):
            np.testing.assert_allclose(b, a, rtol=1e-6)
    np.testing.assert_allclose(run_both(branch, [pos])[0][1][0], 3.0 * np.linspace(-1, 1, 2), rtol=1e-6)


def test_mistakes_are_named():
    x = arr(2)
    with pytest.raises(TypeError, match="cond: pred must be a one-element NDArray"):
        C.cond(x, lambda: x, lambda: x)
    block = Block(lambda x: C.cond(x.sum() > 0, lambda: x, lambda: x.sum()))
    block.hybridize()
    with pytest.raises(ValueError, match="same number of arrays with the same shapes"):
        block(x)
    with pytest.raises(ValueError, match="max_iterations must be a positive int"):
        C.while_loop(lambda v: v, lambda v: (v, [v]), [x], max_iterations=0)
    with pytest.raises(ValueError, match="needs the same first dim"):
        C.foreach(lambda d, s: (d[0], s), [arr(3, 2), arr(4, 2)], [x])
    with pytest.raises(ValueError, match="returned 2 states for 1"):
        C.foreach(lambda d, s: (d, [s, s]), arr(3, 2), x)
