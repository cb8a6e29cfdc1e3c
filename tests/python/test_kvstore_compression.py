"""2-bit gradient compression with error feedback (loom/kvstore/compression.py)
against its contract: codes for +t / 0 / -t, four to a byte; and whatever
quantization drops is carried: the sum of what was sent differs from the
sum of the true gradients by exactly the residual, which stays below t
while no gradient element reaches t, however many steps."""
import numpy as np
import pytest

from loom.kvstore import compression

rng = np.random.default_rng(4)


def test_codes_are_the_thresholded_values_four_to_a_byte():
    g = np.array([0.7, -0.7, 0.2, -0.2, 0.5, -0.5, 0.0], np.float32)
    residual = np.zeros_like(g)
    packed = compression.quantize(g, residual, 0.5)
    assert packed.dtype == np.uint8 and packed.size == 2  # 7 values in 2 bytes
    sent = compression.dequantize(packed, g.size, 0.5)
    np.testing.assert_array_equal(sent, [0.5, -0.5, 0.0, 0.0, 0.5, -0.5, 0.0])
    np.testing.assert_allclose(residual, g - sent, atol=1e-7)


def test_error_feedback_bounds_the_accumulated_error_by_the_threshold():
    t = 0.05
    shape = (1000,)
    residual = np.zeros(shape, np.float32)
    true_sum, sent_sum = np.zeros(shape), np.zeros(shape)
    for _ in range(200):
        g = np.clip(rng.standard_normal(shape) * 0.03, -0.999 * t, 0.999 * t).astype(np.float32)
        sent = compression.dequantize(compression.quantize(g, residual, t), g.size, t)
        true_sum += g
        sent_sum += sent
        assert np.max(np.abs(residual)) < t
    np.testing.assert_allclose(true_sum - sent_sum, residual, atol=1e-4)  # nothing lost, only delayed
    assert np.max(np.abs(true_sum - sent_sum)) < t + 1e-4
    # larger gradients: the residual grows past t, and still carries exactly what was not sent
    big = np.full(shape, 3.2 * t, np.float32)
    residual[:] = 0
    sent = compression.dequantize(compression.quantize(big, residual, t), big.size, t)
    np.testing.assert_allclose(sent + residual, big, rtol=1e-6)


def test_bad_parameters_and_corrupted_codes_are_refused():
    assert compression.parse({"type": "2bit", "threshold": 0.25}) == 0.25
    with pytest.raises(ValueError, match="type must be '2bit'"):
        compression.parse({"type": "1bit"})
    with pytest.raises(ValueError, match=r"unknown parameters \['ratio'\]"):
        compression.parse({"type": "2bit", "ratio": 3})
    with pytest.raises(ValueError, match="threshold must be > 0"):
        compression.parse({"type": "2bit", "threshold": 0})
    with pytest.raises(ValueError, match="code 3 is not used"):
        compression.dequantize(np.array([0xFF], np.uint8), 4, 0.5)
