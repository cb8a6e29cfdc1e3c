// See cpu_gemm.h.
#include "runtime/kernels/cpu/cpu_gemm.h"

#include <algorithm>
#include <type_traits>
#include <vector>

#include "runtime/kernels/cpu/gemm_portable.h"

#if LOOM_WITH_BLAS
#include <cblas.h>
#endif

namespace loom::kernels {
namespace {

// C (+)= A B for tiny matrices (m n k <= 512, e.g. 8x8x8): a direct loop.
// OpenBLAS's entry costs more than the arithmetic here (thread and buffer
// setup): a 2x2 matmul from Python took 1.2 us against torch's 1.1.
template <typename T>
void gemm_tiny(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, const T* a, std::int64_t lda,
               const T* b, std::int64_t ldb, T* c, std::int64_t ldc, bool accumulate) {
  for (std::int64_t i = 0; i < m; ++i) {
    for (std::int64_t j = 0; j < n; ++j) {
      T acc = T(0);
      for (std::int64_t p = 0; p < k; ++p) {
        acc += (ta ? a[p * lda + i] : a[i * lda + p]) * (tb ? b[j * ldb + p] : b[p * ldb + j]);
      }
      c[i * ldc + j] = accumulate ? c[i * ldc + j] + acc : acc;
    }
  }
}

}  // namespace

template <typename T>
void gemm(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, const T* a, std::int64_t lda,
          const T* b, std::int64_t ldb, T* c, std::int64_t ldc, bool accumulate) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {  // an empty sum (BLAS wants k >= 1 for its leading dimensions)
    if (!accumulate) {
      for (std::int64_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, T(0));
    }
    return;
  }
  if (m * n * k <= 512) return gemm_tiny(ta, tb, m, n, k, a, lda, b, ldb, c, ldc, accumulate);
#if LOOM_WITH_BLAS
  if (!cpu_gemm_forced_portable()) {
    const auto ta_ = ta ? CblasTrans : CblasNoTrans, tb_ = tb ? CblasTrans : CblasNoTrans;
    if constexpr (std::is_same_v<T, float>) {
      cblas_sgemm(CblasRowMajor, ta_, tb_, m, n, k, 1.0f, a, lda, b, ldb, accumulate ? 1.0f : 0.0f, c, ldc);
    } else {
      cblas_dgemm(CblasRowMajor, ta_, tb_, m, n, k, 1.0, a, lda, b, ldb, accumulate ? 1.0 : 0.0, c, ldc);
    }
    return;
  }
#endif
  if (!accumulate) return gemm_portable(ta, tb, m, n, k, a, lda, b, ldb, c, ldc);
  // loom's own GEMM overwrites: compute into a scratch matrix, then add
  std::vector<T> product(static_cast<std::size_t>(m * n));
  gemm_portable(ta, tb, m, n, k, a, lda, b, ldb, product.data(), n);
  for (std::int64_t i = 0; i < m; ++i) {
    for (std::int64_t j = 0; j < n; ++j) c[i * ldc + j] += product[i * n + j];
  }
}

template void gemm<float>(bool, bool, std::int64_t, std::int64_t, std::int64_t, const float*, std::int64_t,
                          const float*, std::int64_t, float*, std::int64_t, bool);
template void gemm<double>(bool, bool, std::int64_t, std::int64_t, std::int64_t, const double*, std::int64_t,
                           const double*, std::int64_t, double*, std::int64_t, bool);

}  // namespace loom::kernels
