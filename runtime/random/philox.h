// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2,
// 3", SC'11): a counter-based generator. Output block n of a stream is a
// pure function of (key, counter n), so any thread on any device computes
// element i of a random array without a shared state, and the CPU and the
// GPU produce the same bits for the same seed. Checked against the
// Random123 known-answer vectors (tests/cpp/philox_test.cc).
#pragma once

#include <cstdint>

#include "runtime/kernels/pointwise_math.h"  // LOOM_HD

namespace loom::random {

struct PhiloxBlock {
  std::uint32_t v[4];
};

LOOM_HD void philox_mulhilo(std::uint32_t a, std::uint32_t b, std::uint32_t& hi, std::uint32_t& lo) {
  const std::uint64_t p = static_cast<std::uint64_t>(a) * b;
  hi = static_cast<std::uint32_t>(p >> 32);
  lo = static_cast<std::uint32_t>(p);
}

LOOM_HD PhiloxBlock philox4x32_10(PhiloxBlock ctr, std::uint32_t k0, std::uint32_t k1) {
  constexpr std::uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;  // round multipliers
  constexpr std::uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;  // key schedule (Weyl) increments
  for (int round = 0; round < 10; ++round) {
    std::uint32_t hi0, lo0, hi1, lo1;
    philox_mulhilo(kM0, ctr.v[0], hi0, lo0);
    philox_mulhilo(kM1, ctr.v[2], hi1, lo1);
    ctr = PhiloxBlock{{hi1 ^ ctr.v[1] ^ k0, lo1, hi0 ^ ctr.v[3] ^ k1, lo0}};
    k0 += kW0;
    k1 += kW1;
  }
  return ctr;
}

// The block for element `index` of the stream (seed, offset): one block per
// element, so an array's values do not depend on how it is split up.
LOOM_HD PhiloxBlock philox_element(std::uint64_t seed, std::uint64_t offset, std::uint64_t index) {
  const std::uint64_t n = offset + index;
  return philox4x32_10(PhiloxBlock{{static_cast<std::uint32_t>(n), static_cast<std::uint32_t>(n >> 32), 0u, 0u}},
                       static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32));
}

// [0, 1) with the type's full precision: 24 random bits for float, 53 for double.
LOOM_HD float unit_float(const PhiloxBlock& b) { return static_cast<float>(b.v[0] >> 8) * (1.0f / 16777216.0f); }
LOOM_HD double unit_double(const PhiloxBlock& b) {
  const std::uint64_t bits = (static_cast<std::uint64_t>(b.v[0]) << 21) ^ (b.v[1] >> 11);
  return static_cast<double>(bits & ((std::uint64_t{1} << 53) - 1)) * (1.0 / 9007199254740992.0);
}

}  // namespace loom::random
