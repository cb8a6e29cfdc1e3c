"""lm.random: Philox4x32-10 on the array's device. Reproducible per seed,
independent of how the values are split into calls only through the stream
offset, with the moments and ranges each distribution promises."""
import numpy as np
import pytest

import loom as lm


def test_a_seed_repeats_every_distribution_and_calls_advance_the_stream():
    def draw():
        return [lm.random.uniform(-1, 1, (3, 4)).asnumpy(), lm.random.normal(0, 2, (5,), dtype="float64").asnumpy(),
                lm.random.randint(0, 10, (6,), dtype="int64").asnumpy(), lm.random.bernoulli(0.3, (7,)).asnumpy()]
    lm.random.seed(123)
    first = draw()
    lm.random.seed(123)
    for a, b in zip(first, draw()):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], lm.random.uniform(-1, 1, (3, 4)).asnumpy())   # the stream moved on
    lm.random.seed(124)
    assert not np.array_equal(first[0], lm.random.uniform(-1, 1, (3, 4)).asnumpy())


def test_state_can_be_saved_and_replayed():
    lm.random.seed(7)
    lm.random.uniform(shape=(10,))
    state = lm.random.get_state()
    a = lm.random.normal(shape=(4, 4)).asnumpy()
    lm.random.set_state(state)
    np.testing.assert_array_equal(a, lm.random.normal(shape=(4, 4)).asnumpy())


def test_one_call_equals_the_same_elements_drawn_in_two_calls():
    lm.random.seed(5)
    whole = lm.random.uniform(shape=(1000,), dtype="float64").asnumpy()
    lm.random.seed(5)
    parts = np.concatenate([lm.random.uniform(shape=(300,), dtype="float64").asnumpy(),
                            lm.random.uniform(shape=(700,), dtype="float64").asnumpy()])
    np.testing.assert_array_equal(whole, parts)


def test_distributions_have_the_promised_ranges_and_moments():
    lm.random.seed(0)
    n = 400_000
    u = lm.random.uniform(2.0, 5.0, (n,)).asnumpy()
    assert u.min() >= 2.0 and u.max() < 5.0
    assert abs(u.mean() - 3.5) < 0.01 and abs(u.var() - 0.75) < 0.01
    z = lm.random.normal(1.0, 2.0, (n,), dtype="float64").asnumpy()
    assert abs(z.mean() - 1.0) < 0.02 and abs(z.std() - 2.0) < 0.02
    assert abs(np.mean(np.abs(z - 1.0) < 2.0) - 0.6827) < 0.005   # the one-sigma mass of a Gaussian
    r = lm.random.randint(-3, 4, (n,), dtype="int32").asnumpy()
    assert r.dtype == np.int32 and r.min() == -3 and r.max() == 3
    assert np.all(np.abs(np.bincount(r + 3) / n - 1 / 7) < 0.005)
    z32 = lm.random.normal(0.0, 1.0, (n,)).asnumpy().astype(np.float64)   # float32: its own Box-Muller in float
    assert abs(z32.mean()) < 0.01 and abs(z32.std() - 1.0) < 0.01 and abs(np.mean(z32 ** 4) - 3.0) < 0.05
    assert abs(np.mean(np.abs(z32) < 1.0) - 0.6827) < 0.005 and abs(np.mean(np.abs(z32) < 3.0) - 0.9973) < 0.001
    big = lm.random.randint(0, 3 * 2**32, (n,), dtype="int64").asnumpy()   # wider than 32 bits: the modulo path
    assert big.min() >= 0 and big.max() < 3 * 2**32 and abs(big.mean() / (1.5 * 2**32) - 1) < 0.01
    b = lm.random.bernoulli(0.25, (n,)).asnumpy()
    assert set(np.unique(b)) <= {0.0, 1.0} and abs(b.mean() - 0.25) < 0.005


def test_consecutive_values_are_uncorrelated():
    lm.random.seed(3)
    u = lm.random.uniform(shape=(200_000,), dtype="float64").asnumpy()
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 0.01


def test_shuffle_permutes_the_first_axis_reproducibly():
    a = lm.nd.array(np.arange(20.0).reshape(10, 2))
    lm.random.seed(9)
    s = lm.random.shuffle(a).asnumpy()
    assert sorted(s[:, 0].tolist()) == list(np.arange(0.0, 20.0, 2.0)) and not np.array_equal(s, a.asnumpy())
    np.testing.assert_array_equal(s[:, 1], s[:, 0] + 1)     # rows move whole
    lm.random.seed(9)
    np.testing.assert_array_equal(lm.random.shuffle(a).asnumpy(), s)


def test_shuffle_is_uniform_over_permutations_and_advances_the_stream():
    lm.random.seed(5)
    a = lm.nd.array(np.arange(3.0))
    counts = {}
    for _ in range(1200):  # each call draws 3 new keys, so the calls differ
        key = tuple(lm.random.shuffle(a).asnumpy().astype(int))
        counts[key] = counts.get(key, 0) + 1
    assert len(counts) == 6 and all(150 < c < 250 for c in counts.values()), counts
    state = lm.random.get_state()
    lm.random.shuffle(lm.nd.zeros((7, 2)))
    assert lm.random.get_state()[1] == state[1] + 7   # one draw per row


def test_shuffle_gradient_puts_each_row_back():
    x = lm.nd.array(np.arange(12.0).reshape(4, 3))
    x.attach_grad()
    w = lm.nd.array(np.arange(12.0).reshape(4, 3) * 10)
    lm.random.seed(1)
    with lm.autograd.record():
        y = lm.random.shuffle(x)
        loss = (y * w).sum()
    loss.backward()
    perm = [int(r[0]) // 3 for r in y.asnumpy()]          # y's row r is x's row perm[r]
    want = np.zeros((4, 3))
    want[perm] = w.asnumpy()
    np.testing.assert_array_equal(x.grad.asnumpy(), want)


def test_shuffle_in_cpp_and_python_agree_and_refuses_0d():
    x = lm.nd.array(np.arange(10.0))
    np.testing.assert_array_equal(lm.nd.shuffle_seeded(x, 3, 11).asnumpy(), lm.nd.shuffle_seeded(x, 3, 11).asnumpy())
    assert not np.array_equal(lm.nd.shuffle_seeded(x, 3, 11).asnumpy(), lm.nd.shuffle_seeded(x, 3, 12).asnumpy())
    with pytest.raises(ValueError, match="0-d array has no axis"):
        lm.random.shuffle(lm.nd.array(np.float32(1.0)))
    with pytest.raises(ValueError, match="shuffle: needs an array with a first dim"):
        lm.nd.shuffle_seeded(lm.nd.array(np.float32(1.0)), 0, 0)


def test_seeds_above_2_63_reach_the_seeded_ops_and_replay():
    # dropout_seeded and shuffle_seeded take the seed as a signed 64-bit int
    for state in [(2**64 - 5, 3), (2**63, 0)]:
        lm.random.set_state(state)
        a = lm.random.shuffle(lm.nd.array(np.arange(8.0))).asnumpy()
        m = lm.nd.dropout(lm.nd.ones((64,)), 0.5, training=True).asnumpy()
        lm.random.set_state(state)
        np.testing.assert_array_equal(lm.random.shuffle(lm.nd.array(np.arange(8.0))).asnumpy(), a)
        np.testing.assert_array_equal(lm.nd.dropout(lm.nd.ones((64,)), 0.5, training=True).asnumpy(), m)


def test_bad_arguments_are_clear_errors():
    with pytest.raises(TypeError, match="random_uniform: no kernel for dtype int32"):
        lm.random.uniform(shape=(2,), dtype="int32")
    with pytest.raises(ValueError, match=r"random_randint: high must be greater than low .*high = 2, low = 2"):
        lm.random.randint(2, 2, (3,))
    with pytest.raises(ValueError, match="random_bernoulli: p must be in"):
        lm.random.bernoulli(1.5, (3,))
    with pytest.raises(ValueError, match="random_normal: scale must be >= 0"):
        lm.random.normal(0.0, -1.0, (3,))
    with pytest.raises(TypeError, match="random_uniform: unknown dtype 'float8'"):
        lm.nd.random_uniform(shape=[2], dtype="float8")
    with pytest.raises(ValueError, match=r"random_uniform: shape\[1\] is -2"):
        lm.random.uniform(shape=(3, -2))
    with pytest.raises(TypeError, match="random.seed: expected an integer seed"):
        lm.random.seed(1.5)


def test_exponential_has_mean_scale():
    lm.random.seed(1)
    e = lm.random.exponential(2.0, (200_000,), dtype="float64").asnumpy()
    assert e.min() >= 0 and abs(e.mean() - 2.0) < 0.03 and abs(e.std() - 2.0) < 0.03
    with pytest.raises(ValueError, match="scale must be > 0"):
        lm.random.exponential(0.0, (2,))


def test_numpy_dtypes_and_out_are_accepted():
    lm.random.seed(3)
    a = lm.random.uniform(shape=(4,), dtype=np.float64)
    assert a.dtype == "float64"
    out = lm.nd.zeros((4,), dtype="float64")
    lm.random.seed(3)
    assert lm.random.uniform(shape=(4,), dtype="float64", out=out) is not None
    np.testing.assert_array_equal(out.asnumpy(), a.asnumpy())


def test_a_traced_graph_draws_afresh_on_every_run_from_the_same_stream():
    """A hybridized block that draws noise records the random op itself: each
    call draws new values, and a seed replays what imperative code draws."""
    class Noisy(lm.gluon.HybridBlock):
        def forward(self, x):
            return x + lm.nd.random_normal(0.0, 1.0, list(x.shape))

    x = lm.nd.zeros((3, 5))
    lm.random.seed(21)
    eager = [Noisy()(x).asnumpy() for _ in range(2)]
    block = Noisy()
    block.hybridize()
    lm.random.seed(21)
    traced = [block(x).asnumpy() for _ in range(2)]
    assert not np.array_equal(traced[0], traced[1])
    np.testing.assert_array_equal(traced[1], eager[1])

    class TwoDraws(lm.gluon.HybridBlock):   # equal nodes, but never one node (no CSE, no folding)
        def forward(self, x):
            return lm.nd.random_uniform(shape=[4]) - lm.nd.random_uniform(shape=[4]) + x

    two = TwoDraws()
    two.hybridize()
    assert np.all(two(lm.nd.zeros((4,))).asnumpy() != 0)


def test_random_and_creation_ops_are_symbols_too():
    s = lm.sym.full(shape=(2, 3), value=1.5, dtype="float64") + lm.sym.eye(n=2, columns=3)
    assert s.infer_type()[1] == ["float64"] and s.infer_shape()[1] == [(2, 3)]
    np.testing.assert_array_equal(s.bind(lm.cpu(), {}).forward()[0].asnumpy(), np.full((2, 3), 1.5) + np.eye(2, 3))
    u = lm.sym.random_uniform(low=2.0, high=3.0, shape=(1000,), dtype="float64")
    values = u.bind(lm.cpu(), {}).forward()[0].asnumpy()
    assert values.dtype == np.float64 and values.min() >= 2.0 and values.max() < 3.0


@pytest.mark.skipif(lm.num_gpus() == 0, reason="needs a GPU")
def test_the_gpu_draws_the_cpus_values():
    for dist in ("uniform", "normal", "randint"):
        lm.random.seed(11)
        args = (0, 10) if dist == "randint" else (0.0, 1.0)
        dtype = "int64" if dist == "randint" else "float64"
        cpu = getattr(lm.random, dist)(*args, (1000,), dtype=dtype).asnumpy()
        lm.random.seed(11)
        gpu = getattr(lm.random, dist)(*args, (1000,), dtype=dtype, ctx=lm.gpu(0)).asnumpy()
        np.testing.assert_allclose(gpu, cpu, rtol=1e-12, atol=1e-12)
