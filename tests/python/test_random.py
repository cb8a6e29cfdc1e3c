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


def test_bad_arguments_are_clear_errors():
    with pytest.raises(TypeError, match="random.uniform: dtype must be float32 or float64, got int32"):
        lm.random.uniform(shape=(2,), dtype="int32")
    with pytest.raises(ValueError, match=r"random.randint: high \(2\) must be greater than low \(2\)"):
        lm.random.randint(2, 2, (3,))
    with pytest.raises(ValueError, match="random.bernoulli: p must be in"):
        lm.random.bernoulli(1.5, (3,))
    with pytest.raises(TypeError, match="random.seed: expected an integer seed"):
        lm.random.seed(1.5)


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
