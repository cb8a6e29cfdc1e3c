// The CPU GEMM every hand-written kernel calls (matmul, convolution):
// row-major C = op(A) op(B), or C += op(A) op(B) with `accumulate`.
// OpenBLAS when loom is built with it, loom's own blocked GEMM
// (gemm_portable.h) otherwise or under LOOM_CPU_GEMM=portable, and a direct
// loop for tiny products, where a BLAS call's setup costs more than the
// arithmetic. Inside an OpenMP parallel region OpenBLAS (OpenMP build) runs
// on the calling thread only, so callers parallelise over independent
// GEMMs there and call one large GEMM outside.
#pragma once

#include <cstdint>

namespace loom::kernels {

template <typename T>
void gemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, const T* a,
          std::int64_t lda, const T* b, std::int64_t ldb, T* c, std::int64_t ldc, bool accumulate = false);

extern template void gemm<float>(bool, bool, std::int64_t, std::int64_t, std::int64_t, const float*,
                                 std::int64_t, const float*, std::int64_t, float*, std::int64_t, bool);
extern template void gemm<double>(bool, bool, std::int64_t, std::int64_t, std::int64_t, const double*,
                                  std::int64_t, const double*, std::int64_t, double*, std::int64_t, bool);

}  // namespace loom::kernels
