// See cpu_gemm.h.
#include "runtime/kernels/cpu/cpu_gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "microkernel/base/error.h"
#include "runtime/kernels/cpu/gemm_portable.h"

#if LOOM_WITH_BLAS
#include <cblas.h>
#endif
#if LOOM_WITH_DNNL
#include <dnnl.h>
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

// Whether oneDNN's sgemm takes a float product. Measured against OpenBLAS
// (SkylakeX kernels, OpenMP build) on the 2-core AVX-512 machine, best of
// five, for the shapes of the MLP, LeNet, LSTM and attention benchmarks
// (docs/build.md has a table): oneDNN took 0.45-0.93 of OpenBLAS's time
// from about 2^19 multiply-adds up (128x256x784: 0.25 against 0.30 ms),
// and lost below that (64x64x64: 1.3-1.5x, its call costs a few us more)
// and when B is transposed and large with A not (n k >= 2^20: 1.0-1.5x;
// 32x2048x512 NT, an LSTM's recurrent product, 1.09x).
bool prefer_dnnl(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k) {
  if (m * n * k < (std::int64_t{1} << 19)) return false;
  return !(tb && !ta && n * k >= (std::int64_t{1} << 20));
}

// LOOM_CPU_GEMM as read, kAuto for an unknown value: gemm() runs inside
// OpenMP regions (batched products, convolutions, attention), where an
// exception would end the process, so the check that raises is
// check_cpu_gemm_env(), called when libloom is loaded from Python.
struct GemmEnv {
  CpuGemmBackend backend = CpuGemmBackend::kAuto;
  std::string invalid;  // the unknown value, if any
};

const GemmEnv& gemm_env() {
  static const GemmEnv env = [] {
    GemmEnv e;
    const char* v = std::getenv("LOOM_CPU_GEMM");
    if (v == nullptr || *v == '\0' || std::strcmp(v, "auto") == 0) return e;
    if (std::strcmp(v, "portable") == 0) e.backend = CpuGemmBackend::kPortable;
    else if (std::strcmp(v, "openblas") == 0) e.backend = CpuGemmBackend::kOpenBlas;
    else if (std::strcmp(v, "dnnl") == 0) e.backend = CpuGemmBackend::kDnnl;
    else e.invalid = v;
    return e;
  }();
  return env;
}

}  // namespace

CpuGemmBackend cpu_gemm_override() { return gemm_env().backend; }

void check_cpu_gemm_env() {
  const std::string& bad = gemm_env().invalid;
  LOOM_CHECK_KIND(bad.empty(), ErrorKind::kValue, "LOOM_CPU_GEMM=", bad, ": expected auto, portable, openblas or dnnl");
}

CpuGemmBackend cpu_gemm_backend(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k,
                                bool is_float) {
  if (m * n * k <= 512) return CpuGemmBackend::kLoop;
  const CpuGemmBackend forced = cpu_gemm_override();
  if (forced == CpuGemmBackend::kPortable) return CpuGemmBackend::kPortable;
#if LOOM_WITH_DNNL
  if (is_float && (forced == CpuGemmBackend::kDnnl ||
                   (forced == CpuGemmBackend::kAuto && prefer_dnnl(ta, tb, m, n, k)))) {
    return CpuGemmBackend::kDnnl;
  }
#else
  (void)ta, (void)tb, (void)is_float;
#endif
  return LOOM_WITH_BLAS ? CpuGemmBackend::kOpenBlas : CpuGemmBackend::kPortable;
}

const char* cpu_gemm_backend_name(CpuGemmBackend backend) {
  switch (backend) {
    case CpuGemmBackend::kAuto: return "auto";
    case CpuGemmBackend::kLoop: return "loop";
    case CpuGemmBackend::kPortable: return "portable";
    case CpuGemmBackend::kOpenBlas: return "openblas";
    case CpuGemmBackend::kDnnl: return "dnnl";
  }
  return "?";
}

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
  const CpuGemmBackend backend = cpu_gemm_backend(ta, tb, m, n, k, std::is_same_v<T, float>);
  if (backend == CpuGemmBackend::kLoop) return gemm_tiny(ta, tb, m, n, k, a, lda, b, ldb, c, ldc, accumulate);
#if LOOM_WITH_DNNL
  if constexpr (std::is_same_v<T, float>) {
    if (backend == CpuGemmBackend::kDnnl) {
      // A failure (only bad arguments, which the callers never pass) falls
      // through to the next backend rather than throwing inside an OpenMP region.
      if (dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, 1.0f, a, lda, b, ldb, accumulate ? 1.0f : 0.0f, c,
                     ldc) == dnnl_success) {
        return;
      }
    }
  }
#endif
#if LOOM_WITH_BLAS
  if (backend == CpuGemmBackend::kOpenBlas || backend == CpuGemmBackend::kDnnl) {
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
