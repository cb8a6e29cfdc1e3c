// softmax and log_softmax (opdefs/nn/softmax.yaml): fused CPU kernels. Per
// slice along dim: the max, then the sum of exp(x - max), then the output,
// three passes over cache-resident data instead of the composite's chain of
// full-size temporaries (23 ms -> a few ms on (4096, 1024) floats here).
// Slices are processed `inner` at a time (the elements that share an outer
// index), so a last-dim softmax streams rows and other dims vectorise
// across the inner elements. Empty slices give empty results.
//
// Built twice, for the baseline ISA and with AVX2+FMA (every file under
// runtime/kernels/cpu/isa/ is: configure.py); softmax_cpu picks at run
// time, as the generated kernels do.
// The loops live in the ISA-named inline namespace so the two builds never
// collide at link time (cpu_isa.h).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "generated/kernels/log_softmax.h"
#include "generated/kernels/softmax.h"
#include "microkernel/base/error.h"
#include "runtime/kernels/cpu/cpu_isa.h"
#include "runtime/kernels/cpu/fast_math.h"
#include "runtime/kernels/indexing.h"

namespace loom::kernels {
inline namespace LOOM_CPU_ISA {
namespace {

inline float exp_of(float x) { return ::loom::pw::fast::exp(x); }
inline double exp_of(double x) { return std::exp(x); }

// One contiguous slice (the last-dim case): max, exp-sum, output, each a
// loop the compiler vectorises. A slice holding +inf, or only -inf, gives
// NaN, as in PyTorch (the shift x - max is NaN there).
template <typename T, bool kLog>
void softmax_row(const T* x, T* o, std::int64_t n) {
  // The max over 16 independent lanes, then over the lanes: GCC will not
  // reassociate a float max reduction (maxps is not commutative for NaN and
  // signed zeros, and `omp simd reduction(max)` does not change that), and
  // a serial maxss chain cost its latency per element: 77% of the kernel's
  // time, softmax 2.4x slower than torch. Lane-wise maxima vectorise.
  constexpr std::int64_t kLanes = 16;
  T lanes[kLanes];
  for (T& l : lanes) l = -std::numeric_limits<T>::infinity();
  std::int64_t a = 0;
  for (; a + kLanes <= n; a += kLanes) {
    for (std::int64_t j = 0; j < kLanes; ++j) lanes[j] = std::max(lanes[j], x[a + j]);
  }
  for (; a < n; ++a) lanes[0] = std::max(lanes[0], x[a]);
  T mx = lanes[0];
  for (std::int64_t j = 1; j < kLanes; ++j) mx = std::max(mx, lanes[j]);
  T sum = T(0);
#pragma omp simd reduction(+ : sum)
  for (std::int64_t a = 0; a < n; ++a) {
    const T e = exp_of(x[a] - mx);
    if constexpr (!kLog) o[a] = e;
    sum += e;
  }
  if constexpr (kLog) {
    const T shift = mx + std::log(sum);
#pragma omp simd
    for (std::int64_t a = 0; a < n; ++a) o[a] = x[a] - shift;
  } else {
    const T inv = T(1) / sum;
#pragma omp simd
    for (std::int64_t a = 0; a < n; ++a) o[a] *= inv;
  }
}

template <typename T, bool kLog>
void softmax_typed(NDArray& out, const NDArray& x, std::int64_t dim) {
  const AxisSplit s = split_around(x.shape(), wrap_axis(kLog ? "log_softmax" : "softmax", dim, x.shape()));
  if (x.numel() == 0) return;
  const NDArray src = x.contiguous();
  const T* in = src.data<const T>();
  T* o = out.data<T>();
  if (s.inner == 1) {
#pragma omp parallel for schedule(static) if (s.outer * s.axis > 32768)
    for (std::int64_t r = 0; r < s.outer; ++r) softmax_row<T, kLog>(in + r * s.axis, o + r * s.axis, s.axis);
    return;
  }
#pragma omp parallel if (s.outer * s.axis * s.inner > 32768)
  {
    std::vector<T> mx(static_cast<std::size_t>(s.inner)), sum(static_cast<std::size_t>(s.inner));
#pragma omp for schedule(static)
    for (std::int64_t r = 0; r < s.outer; ++r) {
      const T* xr = in + r * s.axis * s.inner;
      T* orow = o + r * s.axis * s.inner;
      std::fill(mx.begin(), mx.end(), -std::numeric_limits<T>::infinity());
      std::fill(sum.begin(), sum.end(), T(0));
      for (std::int64_t a = 0; a < s.axis; ++a) {
        const T* v = xr + a * s.inner;
        for (std::int64_t k = 0; k < s.inner; ++k) mx[k] = std::max(mx[k], v[k]);
      }
      for (std::int64_t a = 0; a < s.axis; ++a) {
        const T* v = xr + a * s.inner;
        T* w = orow + a * s.inner;
        for (std::int64_t k = 0; k < s.inner; ++k) {
          const T e = exp_of(v[k] - mx[k]);
          sum[k] += e;
          if constexpr (!kLog) w[k] = e;
        }
      }
      for (std::int64_t a = 0; a < s.axis; ++a) {
        const T* v = xr + a * s.inner;
        T* w = orow + a * s.inner;
        for (std::int64_t k = 0; k < s.inner; ++k) {
          if constexpr (kLog) {
            w[k] = v[k] - mx[k] - std::log(sum[k]);
          } else {
            w[k] = w[k] / sum[k];
          }
        }
      }
    }
  }
}

template <bool kLog>
void softmax_any(NDArray& out, const NDArray& x, std::int64_t dim) {
  switch (x.dtype()) {
    case DType::kFloat32: return softmax_typed<float, kLog>(out, x, dim);
    case DType::kFloat64: return softmax_typed<double, kLog>(out, x, dim);
    default:
      LOOM_THROW(ErrorKind::kType, kLog ? "log_softmax" : "softmax", ": no CPU kernel for dtype ",
                 dtype_name(x.dtype()));
  }
}

}  // namespace

#if defined(LOOM_CPU_ISA_AVX512)
void softmax_cpu_avx512(NDArray& out, const NDArray& x, std::int64_t dim) { softmax_any<false>(out, x, dim); }
void log_softmax_cpu_avx512(NDArray& out, const NDArray& x, std::int64_t dim) { softmax_any<true>(out, x, dim); }
#elif defined(LOOM_CPU_ISA_AVX2)
void softmax_cpu_avx2(NDArray& out, const NDArray& x, std::int64_t dim) { softmax_any<false>(out, x, dim); }
void log_softmax_cpu_avx2(NDArray& out, const NDArray& x, std::int64_t dim) { softmax_any<true>(out, x, dim); }
#else
void softmax_cpu_base(NDArray& out, const NDArray& x, std::int64_t dim) { softmax_any<false>(out, x, dim); }
void log_softmax_cpu_base(NDArray& out, const NDArray& x, std::int64_t dim) { softmax_any<true>(out, x, dim); }
#endif
}  // inline namespace LOOM_CPU_ISA

#if !defined(LOOM_CPU_ISA_BUILD)
#if defined(LOOM_WITH_AVX512_KERNELS)
// Defined by this file's AVX-512 build (build.ninja: isa/*.cc.avx512.o).
inline namespace isa_avx512 {
void softmax_cpu_avx512(NDArray& out, const NDArray& x, std::int64_t dim);
void log_softmax_cpu_avx512(NDArray& out, const NDArray& x, std::int64_t dim);
}  // namespace isa_avx512
#endif
#if defined(LOOM_WITH_AVX2_KERNELS)
// Defined by this file's AVX2 build (build.ninja: isa/*.cc.avx2.o).
inline namespace isa_avx2 {
void softmax_cpu_avx2(NDArray& out, const NDArray& x, std::int64_t dim);
void log_softmax_cpu_avx2(NDArray& out, const NDArray& x, std::int64_t dim);
}  // namespace isa_avx2
#endif

Shape infer_softmax(const NDArray& x, std::int64_t dim) {
  wrap_axis("softmax", dim, x.shape());
  return x.shape();
}

Shape infer_log_softmax(const NDArray& x, std::int64_t dim) {
  wrap_axis("log_softmax", dim, x.shape());
  return x.shape();
}

void softmax_cpu(NDArray& out, const NDArray& x, std::int64_t dim) {
#if defined(LOOM_WITH_AVX512_KERNELS)
  if (cpu_has_avx512()) return isa_avx512::softmax_cpu_avx512(out, x, dim);
#endif
#if defined(LOOM_WITH_AVX2_KERNELS)
  if (cpu_has_avx2_fma()) return isa_avx2::softmax_cpu_avx2(out, x, dim);
#endif
  isa_base::softmax_cpu_base(out, x, dim);
}

void log_softmax_cpu(NDArray& out, const NDArray& x, std::int64_t dim) {
#if defined(LOOM_WITH_AVX512_KERNELS)
  if (cpu_has_avx512()) return isa_avx512::log_softmax_cpu_avx512(out, x, dim);
#endif
#if defined(LOOM_WITH_AVX2_KERNELS)
  if (cpu_has_avx2_fma()) return isa_avx2::log_softmax_cpu_avx2(out, x, dim);
#endif
  isa_base::log_softmax_cpu_base(out, x, dim);
}
#endif  // !LOOM_CPU_ISA_BUILD

}  // namespace loom::kernels
