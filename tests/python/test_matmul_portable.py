"""loom's own blocked GEMM (the CPU matmul of a build without BLAS) against
NumPy. It runs in a child process with LOOM_CPU_GEMM=portable, which makes a
BLAS build use it too, so this machine checks both paths."""
import os
import subprocess
import sys
import textwrap

CHILD = textwrap.dedent("""
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
    print("ok")
""")


def test_portable_gemm_matches_numpy():
    env = dict(os.environ, LOOM_CPU_GEMM="portable")
    proc = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "ok"
