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

// A standard normal value by Box-Muller on the block's last two words
// (independent of the bits unit() uses); u1 in (0, 1] keeps the log finite.
LOOM_HD double standard_normal(const PhiloxBlock& blk) {
  const double u1 = (static_cast<double>(blk.v[2]) + 1.0) * (1.0 / 4294967296.0);
  const double u2 = static_cast<double>(blk.v[3]) * (1.0 / 4294967296.0);
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

// An integer in [low, high) from 64 random bits (the modulo bias is below
// 2^-32 for spans under 2^32). The op checks high > low first.
LOOM_HD std::int64_t randint_in(const PhiloxBlock& blk, std::int64_t low, std::int64_t high) {
  const auto span = static_cast<std::uint64_t>(high - low);
  const std::uint64_t bits = (static_cast<std::uint64_t>(blk.v[0]) << 32) | blk.v[1];
  return low + static_cast<std::int64_t>(span == 0 ? 0 : bits % span);
}

}  // namespace loom::random
