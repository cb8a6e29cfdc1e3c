// float16 (IEEE binary16) and bfloat16 as bit patterns, converted to and
// from float with round-to-nearest-even, on the host and in CUDA kernels.
// Kernels see the element types f16 and bf16 below: storage-only types that
// convert to float and back, so a kernel computes in float32 ("opmath") and
// rounds once per result, never per sub-expression.
#pragma once

#if defined(__CUDACC_RTC__)
// NVRTC, which compiles fused GPU kernels with this header embedded
// (runtime/graph/fused_kernel_source.cc), has no standard headers.
namespace loom {
using half_u16 = unsigned short;
using half_u32 = unsigned int;
}  // namespace loom
#else
#include <bit>
#include <cstdint>
namespace loom {
using half_u16 = std::uint16_t;
using half_u32 = std::uint32_t;
}  // namespace loom
#endif

#if defined(__CUDACC__)
#define LOOM_HALF_HD __host__ __device__ inline
#else
#define LOOM_HALF_HD inline
#endif

namespace loom {
namespace half_detail {

LOOM_HALF_HD float float_from_bits(half_u32 u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  return std::bit_cast<float>(u);
#endif
}

LOOM_HALF_HD half_u32 bits_from_float(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  return std::bit_cast<half_u32>(f);
#endif
}

}  // namespace half_detail

LOOM_HALF_HD float half_to_float(half_u16 h) {
  const half_u32 sign = static_cast<half_u32>(h & 0x8000u) << 16;
  const half_u32 exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
  if (exp == 0x1f) return half_detail::float_from_bits(sign | 0x7f800000u | (man << 13));  // inf, nan
  if (exp != 0) return half_detail::float_from_bits(sign | ((exp + 112) << 23) | (man << 13));
  // Zero or subnormal: man * 2^-24, exact in float.
  const float magnitude = static_cast<float>(man) * (1.0f / 16777216.0f);
  return sign ? -magnitude : magnitude;
}

LOOM_HALF_HD half_u16 float_to_half(float f) {
  const half_u32 x = half_detail::bits_from_float(f);
  const half_u16 sign = static_cast<half_u16>((x >> 16) & 0x8000u);
  const half_u32 abs = x & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<half_u16>(sign | 0x7e00u | ((abs >> 13) & 0x3ffu));  // nan, quiet
  if (abs >= 0x477ff000u) return static_cast<half_u16>(sign | 0x7c00u);  // rounds past 65504: inf
  if (abs < 0x38800000u) {
    // Below the smallest normal half (2^-14): a subnormal, m * 2^-24,
    // rounded to nearest even by adding in float (exact up to that rounding).
    const float magnitude = half_detail::float_from_bits(abs) + 0.5f;  // 0.5 = 2^-1: aligns 2^-24 at the last bit
    return static_cast<half_u16>(sign | (half_detail::bits_from_float(magnitude) - 0x3f000000u));
  }
  // Normal: rebias the exponent, round the 13 dropped bits to nearest even.
  const half_u32 odd = (abs >> 13) & 1u;
  const half_u32 rounded = abs + 0xfffu + odd;
  return static_cast<half_u16>(sign | ((rounded - 0x38000000u) >> 13));
}

LOOM_HALF_HD float bfloat16_to_float(half_u16 b) {
  return half_detail::float_from_bits(static_cast<half_u32>(b) << 16);
}

LOOM_HALF_HD half_u16 float_to_bfloat16(float f) {
  const half_u32 x = half_detail::bits_from_float(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<half_u16>((x >> 16) | 0x40u);  // nan, quiet
  const half_u32 odd = (x >> 16) & 1u;
  return static_cast<half_u16>((x + 0x7fffu + odd) >> 16);
}

// Element types of float16 and bfloat16 arrays in kernels: two bytes of
// storage each, read as float and written from float (rounded to nearest
// even). No arithmetic of their own: `a + b` converts both to float.
struct f16 {
  half_u16 bits;
  f16() = default;
  LOOM_HALF_HD f16(float v) : bits(float_to_half(v)) {}  // NOLINT: implicit, like a float store
  LOOM_HALF_HD operator float() const { return half_to_float(bits); }
};

struct bf16 {
  half_u16 bits;
  bf16() = default;
  LOOM_HALF_HD bf16(float v) : bits(float_to_bfloat16(v)) {}  // NOLINT: implicit, like a float store
  LOOM_HALF_HD operator float() const { return bfloat16_to_float(bits); }
};

// The type a kernel computes in for elements of type T: float for the
// half types, T itself otherwise.
template <typename T>
struct OpMath {
  using type = T;
};
template <>
struct OpMath<f16> {
  using type = float;
};
template <>
struct OpMath<bf16> {
  using type = float;
};
template <typename T>
using opmath_t = typename OpMath<T>::type;

}  // namespace loom
