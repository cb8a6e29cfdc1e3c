// The scalar functions a pointwise body in opdefs/ may call (the expression
// language's whitelist). Each is written once for host and device: the
// generator emits one functor per operator that calls these, and the same
// functor is instantiated by the CPU loop and the CUDA kernel. NVRTC
// compiles it too, into fused GPU kernels (runtime/graph/fuse_pointwise_cuda.cc
// hands it this file's text): there no standard header exists, and the math
// functions are the compiler's builtins.
#pragma once

#if !defined(__CUDACC_RTC__)
#include <cmath>
#include <cstdint>
#include <limits>
#endif

#if !defined(__CUDA_ARCH__)
#include "runtime/kernels/cpu/fast_math.h"
#endif

#if defined(__CUDACC__)
#define LOOM_HD __host__ __device__ __forceinline__
#else
// Always inlined: kernels are built once per CPU ISA (cpu_isa.h), and an
// out-of-line copy would be one symbol shared by both builds.
#define LOOM_HD inline __attribute__((always_inline))
#endif

namespace loom::pw {

#if defined(__CUDACC_RTC__)
using int64 = long long;
#else
using int64 = std::int64_t;
#endif

template <typename T>
LOOM_HD T where(bool cond, T a, T b) { return cond ? a : b; }
template <typename T>
LOOM_HD T maximum(T a, T b) { return a > b ? a : b; }
template <typename T>
LOOM_HD T minimum(T a, T b) { return a < b ? a : b; }
template <typename T>
LOOM_HD T abs(T x) { return x < T(0) ? T(-x) : x; }

// Transcendentals exist for float and double only: the generator rejects
// them in ops that declare integer dtypes. On the device the global CUDA
// math functions are named with :: so they cannot resolve to these wrappers.
#if defined(__CUDA_ARCH__)
#define LOOM_PW_UNARY(name, fn) \
  LOOM_HD float name(float x) { return ::fn##f(x); } \
  LOOM_HD double name(double x) { return ::fn(x); }
#else
#define LOOM_PW_UNARY(name, fn) \
  LOOM_HD float name(float x) { return std::fn(x); } \
  LOOM_HD double name(double x) { return std::fn(x); }
#endif
#if defined(__CUDA_ARCH__)
LOOM_PW_UNARY(exp, exp)
LOOM_PW_UNARY(log, log)
LOOM_PW_UNARY(tanh, tanh)
LOOM_PW_UNARY(erf, erf)
#else
// On the host, float exp/log/tanh/erf are inline arithmetic (fast_math.h) so the
// loops calling them vectorise; double keeps libm.
LOOM_HD float exp(float x) { return fast::exp(x); }
LOOM_HD double exp(double x) { return std::exp(x); }
LOOM_HD float log(float x) { return fast::log(x); }
LOOM_HD double log(double x) { return std::log(x); }
LOOM_HD float tanh(float x) { return fast::tanh(x); }
LOOM_HD double tanh(double x) { return std::tanh(x); }
LOOM_HD float erf(float x) { return fast::erf(x); }
LOOM_HD double erf(double x) { return std::erf(x); }
#endif
LOOM_PW_UNARY(sqrt, sqrt)
LOOM_PW_UNARY(expm1, expm1)
LOOM_PW_UNARY(log1p, log1p)
LOOM_PW_UNARY(log2, log2)
LOOM_PW_UNARY(sin, sin)
LOOM_PW_UNARY(cos, cos)
LOOM_PW_UNARY(tan, tan)
LOOM_PW_UNARY(floor, floor)
LOOM_PW_UNARY(ceil, ceil)
// rint rounds to nearest, ties to even (the default rounding mode), as NumPy's round does.
LOOM_PW_UNARY(round_half_even, rint)
#undef LOOM_PW_UNARY

#if defined(__CUDA_ARCH__)
LOOM_HD float pow(float a, float b) { return ::powf(a, b); }
LOOM_HD double pow(double a, double b) { return ::pow(a, b); }
LOOM_HD float fmod(float a, float b) { return ::fmodf(a, b); }
LOOM_HD double fmod(double a, double b) { return ::fmod(a, b); }
#else
LOOM_HD float pow(float a, float b) { return std::pow(a, b); }
LOOM_HD double pow(double a, double b) { return std::pow(a, b); }
LOOM_HD float fmod(float a, float b) { return std::fmod(a, b); }
LOOM_HD double fmod(double a, double b) { return std::fmod(a, b); }
#endif

// Python's and NumPy's modulo: the result takes the divisor's sign.
template <typename T>
LOOM_HD T mod(T a, T b) {
  T r = fmod(a, b);
  return (r != T(0) && ((r < T(0)) != (b < T(0)))) ? T(r + b) : r;
}

// Python's a // b and a % b on integers (generate bodies: a matrix
// element's row i // cols and column i % cols): floor division, and a
// remainder with the divisor's sign. A zero divisor gives 0, not a trap.
LOOM_HD int64 floor_div(int64 a, int64 b) {
  if (b == 0) return 0;
  const int64 q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}
LOOM_HD int64 floor_mod(int64 a, int64 b) {
  if (b == 0) return 0;
  const int64 r = a % b;
  return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
}

// -1, 0 or 1 (0 for 0; unsigned types never give -1).
template <typename T>
LOOM_HD T sign(T x) { return x > T(0) ? T(1) : (x < T(0) ? T(-1) : T(0)); }

template <typename T>
LOOM_HD T rsqrt(T x) { return T(1) / sqrt(x); }
template <typename T>
LOOM_HD T sigmoid(T x) { return T(1) / (T(1) + exp(-x)); }

#if !defined(__CUDACC_RTC__)
// The identities of max and min: -inf/inf for floating types, the extreme
// values for integers. (Reductions only: never in a fused pointwise body.)
template <typename T>
LOOM_HD T lowest() {
  if constexpr (std::numeric_limits<T>::has_infinity) return -std::numeric_limits<T>::infinity();
  else return std::numeric_limits<T>::lowest();
}
template <typename T>
LOOM_HD T highest() {
  if constexpr (std::numeric_limits<T>::has_infinity) return std::numeric_limits<T>::infinity();
  else return std::numeric_limits<T>::max();
}
#endif

}  // namespace loom::pw
