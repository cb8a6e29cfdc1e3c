#if LOOM_WITH_CUBLAS
#include "runtime/kernels/cuda/gemm_rows.h"

#include <cuda_runtime.h>

#include <limits>
#include <unordered_map>

#include "microkernel/base/error.h"

namespace loom::kernels {

void check_cublas(cublasStatus_t status, const char* op, const char* what) {
  LOOM_CHECK_KIND(status == CUBLAS_STATUS_SUCCESS, ErrorKind::kRuntime, op, ": ", what, " failed (cuBLAS status ",
                  static_cast<int>(status), ")");
}

cublasHandle_t cublas_handle(int device) {
  thread_local std::unordered_map<int, cublasHandle_t> handles;
  auto it = handles.find(device);
  if (it == handles.end()) {
    cublasHandle_t h = nullptr;
    check_cublas(cublasCreate(&h), "cuBLAS", "cublasCreate");
    it = handles.emplace(device, h).first;
  }
  check_cublas(cublasSetStream(it->second, nullptr), "cuBLAS", "cublasSetStream");
  return it->second;
}

namespace {

cublasStatus_t gemm_call(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                         const float* alpha, const float* a, int lda, const float* b, int ldb, const float* beta,
                         float* c, int ldc) {
  return cublasSgemm(h, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

cublasStatus_t gemm_call(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                         const double* alpha, const double* a, int lda, const double* b, int ldb, const double* beta,
                         double* c, int ldc) {
  return cublasDgemm(h, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace

template <typename T>
void gemm_rows(int device, bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, const T* a,
               std::int64_t lda, const T* b, std::int64_t ldb, T* c, std::int64_t ldc, bool accumulate) {
  if (m == 0 || n == 0) return;
  const T one = T(1), beta = accumulate ? T(1) : T(0);
  if (k == 0) {  // cuBLAS scales C by beta: zeros, or C unchanged
    if (!accumulate) {
      LOOM_CHECK(cudaMemset2DAsync(c, ldc * sizeof(T), 0, n * sizeof(T), m) == cudaSuccess,
                 "gemm: cudaMemset2DAsync failed");
    }
    return;
  }
  // cuBLAS's sizes are ints; the _64 entry points would lift this, but no
  // caller reaches 2^31 rows yet, so say so rather than wrap around.
  constexpr std::int64_t kMax = std::numeric_limits<int>::max();
  LOOM_CHECK_KIND(m <= kMax && n <= kMax && k <= kMax && lda <= kMax && ldb <= kMax && ldc <= kMax,
                  ErrorKind::kValue, "gemm: (", m, " x ", k, ") by (", k, " x ", n,
                  ") exceeds cuBLAS's 32-bit sizes (", kMax, ")");
  // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: a
  // row-major matrix is its transpose in column-major order, so the
  // operands swap places and keep their own transpose flags.
  check_cublas(gemm_call(cublas_handle(device), trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                         static_cast<int>(n), static_cast<int>(m), static_cast<int>(k), &one, b, static_cast<int>(ldb),
                         a, static_cast<int>(lda), &beta, c, static_cast<int>(ldc)),
               "gemm", "cublas gemm");
}

template void gemm_rows<float>(int, bool, bool, std::int64_t, std::int64_t, std::int64_t, const float*, std::int64_t,
                               const float*, std::int64_t, float*, std::int64_t, bool);
template void gemm_rows<double>(int, bool, bool, std::int64_t, std::int64_t, std::int64_t, const double*,
                                std::int64_t, const double*, std::int64_t, double*, std::int64_t, bool);

}  // namespace loom::kernels
#endif  // LOOM_WITH_CUBLAS
