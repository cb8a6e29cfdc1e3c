// The CPU GEMM every hand-written kernel calls (matmul, convolution, the
// RNN layers, attention): row-major C = op(A) op(B), or C += op(A) op(B)
// with `accumulate`. Per call, by shape and dtype (cpu_gemm_backend):
//   * a direct loop for tiny products, where a library call's setup costs
//     more than the arithmetic;
//   * oneDNN's sgemm for float products where it measured faster than
//     OpenBLAS (most from 2^19 multiply-adds up);
//   * OpenBLAS for the rest and for double;
//   * loom's own blocked GEMM (gemm_portable.h) without either library.
// LOOM_CPU_GEMM=portable|openblas|dnnl forces one (dnnl: float only), for
// tests and measurements. Inside an OpenMP parallel region both libraries
// (OpenMP builds) run on the calling thread only, so callers parallelise
// over independent GEMMs there and call one large GEMM outside.
#pragma once

#include <cstdint>

namespace loom::kernels {

enum class CpuGemmBackend { kAuto, kLoop, kPortable, kOpenBlas, kDnnl };

// LOOM_CPU_GEMM, read once: kAuto when unset (or unknown), else kPortable,
// kOpenBlas or kDnnl.
CpuGemmBackend cpu_gemm_override();
// Raises a ValueError naming the choices when LOOM_CPU_GEMM is set to
// something else (the Python module calls it at import: gemm() itself runs
// inside OpenMP regions, where it must not throw).
void check_cpu_gemm_env();

// The backend gemm() uses for this product (never kAuto); a forced library
// that is not built in, or dnnl for double, falls back to the next one.
CpuGemmBackend cpu_gemm_backend(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k,
                                bool is_float);
// "loop", "portable", "openblas", "dnnl" (or "auto").
const char* cpu_gemm_backend_name(CpuGemmBackend backend);

template <typename T>
void gemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, const T* a,
          std::int64_t lda, const T* b, std::int64_t ldb, T* c, std::int64_t ldc, bool accumulate = false);

extern template void gemm<float>(bool, bool, std::int64_t, std::int64_t, std::int64_t, const float*,
                                 std::int64_t, const float*, std::int64_t, float*, std::int64_t, bool);
extern template void gemm<double>(bool, bool, std::int64_t, std::int64_t, std::int64_t, const double*,
                                  std::int64_t, const double*, std::int64_t, double*, std::int64_t, bool);

}  // namespace loom::kernels
