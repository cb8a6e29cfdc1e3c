// float16 (IEEE binary16) and bfloat16 as bit patterns, converted to and
// from float with round-to-nearest-even. Arrays of either dtype are stored,
// viewed, copied and cast on the host with these; arithmetic on them waits
// for their kernels (opmath: computed in float32).
#pragma once

#include <bit>
#include <cstdint>

namespace loom {

inline float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
  if (exp == 0x1f) return std::bit_cast<float>(sign | 0x7f800000u | (man << 13));  // inf, nan
  if (exp != 0) return std::bit_cast<float>(sign | ((exp + 112) << 23) | (man << 13));
  // Zero or subnormal: man * 2^-24, exact in float.
  const float magnitude = static_cast<float>(man) * (1.0f / 16777216.0f);
  return sign ? -magnitude : magnitude;
}

inline std::uint16_t float_to_half(float f) {
  const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  const std::uint16_t sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
  const std::uint32_t abs = x & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<std::uint16_t>(sign | 0x7e00u | ((abs >> 13) & 0x3ffu));  // nan, quiet
  if (abs >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u);  // rounds past 65504: inf
  if (abs < 0x38800000u) {
    // Below the smallest normal half (2^-14): a subnormal, m * 2^-24,
    // rounded to nearest even by adding in float (exact up to that rounding).
    const float magnitude = std::bit_cast<float>(abs) + 0.5f;  // 0.5 = 2^-1: aligns 2^-24 at the last bit
    return static_cast<std::uint16_t>(sign | (std::bit_cast<std::uint32_t>(magnitude) - 0x3f000000u));
  }
  // Normal: rebias the exponent, round the 13 dropped bits to nearest even.
  const std::uint32_t odd = (abs >> 13) & 1u;
  const std::uint32_t rounded = abs + 0xfffu + odd;
  return static_cast<std::uint16_t>(sign | ((rounded - 0x38000000u) >> 13));
}

inline float bfloat16_to_float(std::uint16_t b) { return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16); }

inline std::uint16_t float_to_bfloat16(float f) {
  const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((x >> 16) | 0x40u);  // nan, quiet
  const std::uint32_t odd = (x >> 16) & 1u;
  return static_cast<std::uint16_t>((x + 0x7fffu + odd) >> 16);
}

}  // namespace loom
