// cuBLAS for the hand-written CUDA kernels: one handle per thread and
// device, and a row-major GEMM with the CPU's gemm<T> signature
// (runtime/kernels/cpu/cpu_gemm.h), so a CPU kernel's GEMM sequence moves to
// the GPU as it is. Runs on the device's default stream, like every loom
// CUDA kernel. Built only with cuBLAS (LOOM_WITH_CUBLAS).
#pragma once

#include <cstdint>

#include <cublas_v2.h>

namespace loom::kernels {

// The calling thread's handle for `device` (cuBLAS handles are not
// thread-safe), bound to the default stream.
cublasHandle_t cublas_handle(int device);

// Throws a RuntimeError naming `op` and `what` unless status is success.
void check_cublas(cublasStatus_t status, const char* op, const char* what);

// C (m x n, row stride ldc) = op(A) (m x k) op(B) (k x n), plus C when
// `accumulate`; op(X) is X^T when its flag is set. Row-major, as the CPU's.
template <typename T>
void gemm_rows(int device, bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, const T* a,
               std::int64_t lda, const T* b, std::int64_t ldb, T* c, std::int64_t ldc, bool accumulate = false);

}  // namespace loom::kernels
