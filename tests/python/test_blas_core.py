"""OpenBLAS's kernel choice (runtime/kernels/cpu/blas_core.h): on a CPU the
library does not know it falls back to Prescott's SSE3 kernels, which loom
replaces at load with the AVX-512 or AVX2 ones; a user's OPENBLAS_CORETYPE
is left as it is."""
import os
import subprocess
import sys

import numpy as np
import pytest

import loom as lm


def _cpu_flags() -> set:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _core(env: dict) -> dict:
    code = "import loom as lm; d = lm._C.blas_core(); print(d['core'] + '|' + d['repair'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    core, repair = out.stdout.strip().splitlines()[-1].split("|")
    return {"core": core, "repair": repair}


needs_openblas = pytest.mark.skipif(lm._C.blas_core()["core"] == "", reason="loom is built without OpenBLAS")


@needs_openblas
def test_no_sse3_fallback_on_a_cpu_with_avx():
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "LOOM_CPU_ISA")}
    info = _core(env)
    flags = _cpu_flags()
    if {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= flags or {"avx2", "fma"} <= flags:
        assert info["core"] != "Prescott", info
    if info["repair"]:
        assert info["repair"].startswith("Prescott -> "), info


@needs_openblas
def test_a_users_coretype_is_kept():
    env = {k: v for k, v in os.environ.items() if k != "LOOM_CPU_ISA"}
    env["OPENBLAS_CORETYPE"] = "Prescott"
    info = _core(env)
    assert info == {"core": "Prescott", "repair": ""}


def test_gemm_after_the_repair_is_right():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((300, 200)), rng.standard_normal((200, 100))
    out = lm.nd.matmul(lm.nd.array(a.astype(np.float32)), lm.nd.array(b.astype(np.float32))).asnumpy()
    np.testing.assert_allclose(out, a @ b, rtol=1e-4, atol=1e-4)
    out = lm.nd.matmul(lm.nd.array(a), lm.nd.array(b)).asnumpy()
    np.testing.assert_allclose(out, a @ b, rtol=1e-12, atol=1e-12)
