// The values a random op's body draws from its element's Philox block
// (generate bodies of ops tagged `random`, generator/generate_spec.py):
// host and device code alike, so every device computes the same array.
#pragma once

#include <cmath>
#include <cstdint>

#include "runtime/random/philox.h"

namespace loom::random {

// [0, 1) at the compute type's precision: 24 random bits for float, 53 for double.
template <typename C>
LOOM_HD C unit(const PhiloxBlock& blk) {
  if constexpr (sizeof(C) == 4) return unit_float(blk);
  else return static_cast<C>(unit_double(blk));
}

namespace detail {

LOOM_HD float select(bool c, float a, float b) {
#if defined(__CUDA_ARCH__)
  return c ? a : b;
#else
  return ::loom::pw::fast::select(c, a, b);  // a bit mask: the CPU loop stays vectorised
#endif
}

// cos(2 pi u) for u in [0, 1) in float, as straight-line code (libm's cosf
// is a call, which stops the vectoriser): u is folded onto b in [0, 1/4]
// (cos(2 pi u) = -cos(2 pi (u - 1/2)), cos(2 pi a) = -cos(2 pi (1/2 - a))),
// then cos(2 pi b) is its Taylor polynomial to x^12 (error below 1e-8 on
// [0, pi / 2]).
LOOM_HD float cos_two_pi(float u) {
  const float t = u - 0.5f;
  const float a = ::loom::pw::abs(t);
  const float b = ::loom::pw::minimum(a, 0.5f - a);
  const float x = 6.28318530717958648f * b;
  const float z = x * x;
  float p = 2.08767570e-9f;
  p = p * z - 2.75573192e-7f;
  p = p * z + 2.48015873e-5f;
  p = p * z - 1.38888889e-3f;
  p = p * z + 4.16666667e-2f;
  p = p * z - 0.5f;
  p = p * z + 1.0f;
  return select(a < 0.25f, -p, p);
}

}  // namespace detail

// A standard normal value by Box-Muller on the block's last two words
// (independent of the bits unit() uses). Double: libm on 32-bit uniforms,
// u1 in (0, 1] so the log stays finite (tails to 6.7 sigma). Float: the
// same transform in float with loom's vectorisable log and cos (5x
// faster on the CPU; the CUDA kernel uses the device's logf).
template <typename C>
LOOM_HD C standard_normal(const PhiloxBlock& blk) {
  if constexpr (sizeof(C) == 4) {
    // 31 random bits converted as a signed int (AVX2 has no unsigned convert);
    // a rounding up to 1 + ulp is clamped out by the max below.
    const float u1 = static_cast<float>(static_cast<std::int32_t>(blk.v[2] >> 1)) * 4.65661287e-10f + 2.32830644e-10f;
    const float u2 = static_cast<float>(static_cast<std::int32_t>(blk.v[3] >> 8)) * 5.96046448e-8f;
    const float r2 = ::loom::pw::maximum(-2.0f * ::loom::pw::log(u1), 0.0f);
    return ::loom::pw::sqrt(r2) * detail::cos_two_pi(u2);
  } else {
    const double u1 = (static_cast<double>(blk.v[2]) + 1.0) * (1.0 / 4294967296.0);
    const double u2 = static_cast<double>(blk.v[3]) * (1.0 / 4294967296.0);
    return static_cast<C>(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
  }
}

// An integer in [low, high). Spans up to 2^32: Lemire's multiply-shift of
// 32 random bits (no division, so the CPU loop vectorises; bias below
// span / 2^32, as a modulo's). Wider spans: 64 bits modulo the span. The op
// checks high > low first.
LOOM_HD std::int64_t randint_in(const PhiloxBlock& blk, std::int64_t low, std::int64_t high) {
  const auto span = static_cast<std::uint64_t>(high - low);
  if (span <= 0xffffffffull) return low + static_cast<std::int64_t>((static_cast<std::uint64_t>(blk.v[0]) * span) >> 32);
  const std::uint64_t bits = (static_cast<std::uint64_t>(blk.v[0]) << 32) | blk.v[1];
  return low + static_cast<std::int64_t>(bits % span);
}

}  // namespace loom::random
