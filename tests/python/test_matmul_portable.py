"""Each CPU GEMM backend against NumPy: loom's own blocked GEMM (the CPU
matmul of a build without the libraries), OpenBLAS, oneDNN's sgemm, and the
per-shape choice between them (runtime/kernels/cpu/cpu_gemm.h). Each runs
in a child process with LOOM_CPU_GEMM set, which forces that backend for
every product it can take."""
import os
import subprocess
import sys
import textwrap

import pytest

import loom as lm

CHILD = textwrap.dedent("""
    import os
    import numpy as np
    import loom as lm

    def swapped(x):  # a view with the last two dims swapped in memory
        dense = lm.nd.array(np.ascontiguousarray(np.swapaxes(x, -1, -2)))
        perm = list(range(x.ndim - 2)) + [x.ndim - 1, x.ndim - 2]
        return dense._as_strided(x.shape, [dense.strides[p] for p in perm], 0)

    rng = np.random.default_rng(7)
    # Edges of every block size (MC 64, KC 256, NC 256), 1-wide operands,
    # batches (broadcast and folded into one tall GEMM), vectors.
    shapes = [((1, 1), (1, 1)), ((3, 5), (5, 2)), ((65, 257), (257, 259)), ((300, 513), (513, 70)),
              ((4, 1), (1, 7)), ((2, 3, 70, 40), (40, 33)), ((5, 17, 9), (5, 9, 300)),
              ((2, 1, 6, 8), (3, 8, 4)), ((100,), (100, 3)), ((7, 100), (100,)), ((0, 4), (4, 3)),
              ((3, 0), (0, 2))]
    for dtype, tol in (("float32", 2e-5), ("float64", 1e-12)):
        for sa, sb in shapes:
            a, b = rng.standard_normal(sa).astype(dtype), rng.standard_normal(sb).astype(dtype)
            want = np.matmul(a, b)
            got = lm.nd.matmul(lm.nd.array(a), lm.nd.array(b)).asnumpy()
            np.testing.assert_allclose(got, want, rtol=tol, atol=tol * max(1, sa[-1]), err_msg=f"{sa} @ {sb}")
            if a.ndim >= 2 and b.ndim >= 2:  # transposed views: the GEMM's trans flags
                got = lm.nd.matmul(swapped(a), swapped(b)).asnumpy()
                np.testing.assert_allclose(got, want, rtol=tol, atol=tol * max(1, sa[-1]), err_msg=f"T {sa} @ {sb}")
    # Gradients go through the same GEMM.
    a = lm.nd.array(rng.standard_normal((33, 47)))
    b = lm.nd.array(rng.standard_normal((47, 29)))
    a.attach_grad(); b.attach_grad()
    with lm.autograd.record():
        y = lm.nd.matmul(a, b).sum()
    y.backward()
    np.testing.assert_allclose(a.grad.asnumpy(), np.ones((33, 29)) @ b.asnumpy().T, rtol=1e-12)
    np.testing.assert_allclose(b.grad.asnumpy(), a.asnumpy().T @ np.ones((33, 29)), rtol=1e-12)
    forced = os.environ["LOOM_CPU_GEMM"]
    backend = lm._C.cpu_gemm_backend(False, True, 300, 513, 70)
    assert backend == forced or forced == "auto" or backend == "openblas", backend  # dnnl falls back when absent
    assert lm._C.cpu_gemm_backend(False, False, 2, 2, 2) == "loop"
    print("ok")
""")


@pytest.mark.parametrize("backend", ["portable", "openblas", "dnnl", "auto"])
def test_each_gemm_backend_matches_numpy(backend):
    env = dict(os.environ, LOOM_CPU_GEMM=backend)
    proc = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "ok"


def test_the_shape_rule_sends_mid_sized_float_products_to_onednn():
    # measured on the 2-core machine (cpu_gemm.cc): oneDNN from 2^19
    # multiply-adds, OpenBLAS below, for double, and for a large transposed B
    if os.environ.get("LOOM_CPU_GEMM", "auto") != "auto":
        pytest.skip("LOOM_CPU_GEMM forces one backend")
    dnnl = lm._C.cpu_gemm_backend(False, False, 128, 256, 784) == "dnnl"
    if not dnnl:
        pytest.skip("loom was built without oneDNN")
    assert lm._C.cpu_gemm_backend(True, False, 784, 256, 128) == "dnnl"
    assert lm._C.cpu_gemm_backend(False, False, 64, 64, 64) == "openblas"
    assert lm._C.cpu_gemm_backend(False, False, 128, 256, 784, dtype="float64") == "openblas"
    assert lm._C.cpu_gemm_backend(False, True, 32, 2048, 512) == "openblas"


def test_an_unknown_backend_is_an_error_naming_the_choices():
    env = dict(os.environ, LOOM_CPU_GEMM="mkl")
    code = "import loom as lm, numpy as np; (lm.nd.ones((40, 40)) @ lm.nd.ones((40, 40))).asnumpy()"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "ValueError: LOOM_CPU_GEMM=mkl: expected auto, portable, openblas or dnnl" in proc.stderr
    assert "terminate" not in proc.stderr  # raised at import, not inside a kernel's OpenMP region
