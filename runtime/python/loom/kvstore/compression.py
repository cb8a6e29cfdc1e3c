"""2-bit gradient compression with error feedback (Seide et al. 2014, as
MXNet's kv.set_gradient_compression({'type': '2bit', 'threshold': t})).

A worker adds its residual to each gradient before quantizing it. Then
each element becomes +t if it is at least t, -t if it is at most -t, and
0 otherwise. What quantization dropped becomes the new residual, so no
gradient is lost, only delayed. After any number of pushes, the sum of
the sent values differs from the sum of the true gradients by exactly the
residual. The residual stays below t in every element as long as no
gradient element reaches t; choose t above the gradients' typical size.

Codes are 2 bits (0: 0, 1: +t, 2: -t), packed four to a byte, so a
float32 gradient travels in 1/16 of its size."""
from __future__ import annotations

import numpy as np


def quantize(gradient: np.ndarray, residual: np.ndarray, threshold: float) -> np.ndarray:
    """The 2-bit codes of gradient + residual (flat, uint8, 4 per byte);
    updates `residual` in place to what the codes leave out."""
    total = gradient.reshape(-1).astype(np.float32) + residual.reshape(-1)
    codes = np.zeros(total.size, np.uint8)
    codes[total >= threshold] = 1
    codes[total <= -threshold] = 2
    sent = np.where(codes == 1, np.float32(threshold), np.where(codes == 2, np.float32(-threshold), np.float32(0)))
    residual.reshape(-1)[:] = total - sent
    padded = np.zeros((codes.size + 3) // 4 * 4, np.uint8)
    padded[:codes.size] = codes
    quads = padded.reshape(-1, 4)
    return (quads[:, 0] | (quads[:, 1] << 2) | (quads[:, 2] << 4) | (quads[:, 3] << 6)).astype(np.uint8)


def dequantize(packed: np.ndarray, count: int, threshold: float) -> np.ndarray:
    """The float32 values (flat, `count` of them) that `packed` codes for."""
    packed = np.asarray(packed, np.uint8)
    codes = np.stack([(packed >> shift) & 3 for shift in (0, 2, 4, 6)], axis=1).reshape(-1)[:count]
    if np.any(codes == 3):
        raise ValueError("2-bit compression: code 3 is not used; the message is corrupted")
    values = np.zeros(count, np.float32)
    values[codes == 1] = threshold
    values[codes == 2] = -threshold
    return values


def parse(params: dict) -> float:
    """The threshold of MXNet's compression parameters; other types are refused."""
    params = dict(params)
    kind = params.pop("type", None)
    if kind != "2bit":
        raise ValueError(f"set_gradient_compression: type must be '2bit', got {kind!r}")
    threshold = float(params.pop("threshold", 0.5))
    if params:
        raise ValueError(f"set_gradient_compression: unknown parameters {sorted(params)}")
    if not threshold > 0:
        raise ValueError(f"set_gradient_compression: threshold must be > 0, got {threshold}")
    return threshold
