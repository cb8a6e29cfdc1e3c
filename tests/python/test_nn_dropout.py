"""lm.nd.dropout: inverted dropout whose mask comes from lm.random's stream
(replayable by seed), the identity outside training, and a gradient that
is the same mask."""
import numpy as np
import pytest

import loom as lm


def test_keeps_about_one_minus_p_and_scales_the_rest():
    lm.random.seed(3)
    x = lm.nd.ones((1000, 1000))
    y = lm.nd.dropout(x, p=0.3, training=True).asnumpy()
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.003          # 1e6 draws: 5 standard deviations is 0.0023
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    assert abs(y.mean() - 1.0) < 0.005            # inverted dropout keeps the expectation


def test_a_seed_replays_the_mask_and_the_stream_moves_on():
    x = lm.nd.ones((64, 33))
    lm.random.seed(11)
    a = lm.nd.dropout(x, 0.5, training=True).asnumpy()
    b = lm.nd.dropout(x, 0.5, training=True).asnumpy()
    lm.random.seed(11)
    np.testing.assert_array_equal(a, lm.nd.dropout(x, 0.5, training=True).asnumpy())
    assert not np.array_equal(a, b)


def test_identity_outside_training():
    x = lm.nd.array(np.arange(12.0).reshape(3, 4))
    assert lm.nd.dropout(x, 0.5) is x                       # not recording: predict mode
    assert lm.nd.dropout(x, 0.5, training=False) is x
    with lm.autograd.record(train_mode=False):
        assert lm.nd.dropout(x, 0.5) is x
    with lm.autograd.record():                              # training by default, as in MXNet
        y = lm.nd.dropout(x, 0.9)
    assert (y.asnumpy() == 0).sum() > 0


def test_gradient_is_the_mask():
    lm.random.seed(5)
    x = lm.nd.array(np.random.default_rng(0).standard_normal((50, 40)))
    x.attach_grad()
    with lm.autograd.record():
        y = lm.nd.dropout(x, 0.4)
    y.backward()
    mask = y.asnumpy() / x.asnumpy()
    np.testing.assert_allclose(x.grad.asnumpy(), mask, rtol=1e-12)
    assert set(np.unique(np.round(mask, 9))) == {0.0, round(1 / 0.6, 9)}


def test_bad_p_is_rejected():
    with pytest.raises(ValueError, match=r"dropout: p must be in \[0, 1\)"):
        lm.nd.dropout(lm.nd.ones((3,)), 1.0, training=True)
