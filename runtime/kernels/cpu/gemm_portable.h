// loom's own CPU GEMM, used when loom is configured without a BLAS (or with
// LOOM_CPU_GEMM=portable, which the tests use to check it beside the libraries).
// Same contract as cblas_?gemm in row-major order with alpha 1, beta 0:
//   C[m x n] = op(A)[m x k] * op(B)[k x n]
// where op(X) is X or its transpose, read with leading dimension ld.
#pragma once

#include <cstdint>

namespace loom::kernels {

void gemm_portable(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k,
                   const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float* c,
                   std::int64_t ldc);
void gemm_portable(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k,
                   const double* a, std::int64_t lda, const double* b, std::int64_t ldb, double* c,
                   std::int64_t ldc);

}  // namespace loom::kernels
