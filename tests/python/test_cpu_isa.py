"""The baseline, AVX2 and AVX-512 builds of the CPU kernels agree. The
widest the CPU supports runs by default; LOOM_CPU_ISA=base or =avx2 caps the
choice in a subprocess, and every build must give the same values within
the ops' tolerances (float16/bfloat16 roundings: the same bits)."""
import json
import subprocess
import sys

import numpy as np

SCRIPT = r"""
import json, sys
import numpy as np
import loom as lm
x = np.random.default_rng(0).uniform(-5, 5, 10007).astype(np.float32)
out = {}
for name in ("exp", "tanh", "sigmoid", "gelu", "softplus", "relu", "sqrt", "log", "sum", "max"):
    arg = np.abs(x) + 0.01 if name in ("sqrt", "log") else x
    out[name] = getattr(lm.nd, name)(lm.nd.array(arg)).asnumpy().astype(float).tolist()
m = np.random.default_rng(1).standard_normal((37, 129)).astype(np.float32) * 4
for name in ("softmax", "log_softmax"):   # hand-written kernels built per ISA (runtime/kernels/cpu/isa/)
    for dim in (0, 1):
        out[f"{name} dim={dim}"] = getattr(lm.nd, name)(lm.nd.array(m), dim=dim).asnumpy().astype(float).ravel().tolist()
# float16 / bfloat16: the AVX2 build converts with F16C and in blocks, the
# baseline one element at a time; both round to nearest even.
h = lm.nd.array(np.concatenate([x, [0.0, -0.0, 1e-7, 70000.0, -70000.0, np.inf, np.nan]]).astype(np.float32))
for dtype in ("float16", "bfloat16"):
    a = h.astype(dtype)
    out[f"{dtype} copy"] = a.astype("float32").asnumpy().astype(float).tolist()
    out[f"{dtype} exp"] = lm.nd.exp(a).astype("float32").asnumpy().astype(float).tolist()
    out[f"{dtype} a*a+1"] = (a * a + 1).astype("float32").asnumpy().astype(float).tolist()
json.dump(out, sys.stdout)
"""


def run(isa: str) -> dict:
    env = {"LOOM_CPU_ISA": isa} if isa else {}
    import os
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                            env={**os.environ, **env}, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _agree(base, other, label):
    for name in base:
        if "float16" in name:  # one rounding to a half type: identical bits, NaN and inf included
            np.testing.assert_array_equal(np.array(other[name]), np.array(base[name]), err_msg=f"{label}: {name}")
            continue
        np.testing.assert_allclose(np.array(other[name]), np.array(base[name]), rtol=2e-6, atol=1e-6,
                                   err_msg=f"{label}: {name}")


def test_baseline_and_dispatched_kernels_agree():
    base = run("base")
    _agree(base, run("avx2"), "AVX2 vs baseline")
    _agree(base, run(""), "widest (AVX-512 where the CPU has it) vs baseline")
