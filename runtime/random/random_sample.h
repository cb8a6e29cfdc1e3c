// One random value of type T from one Philox block: the per-element
// transform shared by the CPU loop (random_fill.cc) and the CUDA kernel
// (random_fill_cuda.cu), so both devices compute the same values.
#pragma once

#include <cmath>
#include <cstdint>

#include "runtime/random/philox.h"
#include "runtime/random/random_fill.h"

namespace loom::random {

template <typename T>
LOOM_HD T sample(Distribution dist, double a, double b, const PhiloxBlock& blk) {
  switch (dist) {
    case Distribution::kUniform:
      if constexpr (sizeof(T) == 8) return static_cast<T>(a + (b - a) * unit_double(blk));
      else return static_cast<T>(static_cast<float>(a) + static_cast<float>(b - a) * unit_float(blk));
    case Distribution::kNormal: {
      // Box-Muller on two independent uniforms; u1 in (0, 1] keeps log finite.
      const double u1 = (static_cast<double>(blk.v[2]) + 1.0) * (1.0 / 4294967296.0);
      const double u2 = static_cast<double>(blk.v[3]) * (1.0 / 4294967296.0);
      return static_cast<T>(a + b * (sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2)));
    }
    case Distribution::kBernoulli:
      return static_cast<T>(unit_double(blk) < a ? 1 : 0);
    case Distribution::kRandint: {
      const auto span = static_cast<std::uint64_t>(b - a);
      const std::uint64_t bits = (static_cast<std::uint64_t>(blk.v[0]) << 32) | blk.v[1];
      return static_cast<T>(static_cast<std::int64_t>(a) + static_cast<std::int64_t>(bits % span));
    }
  }
  return T(0);
}

}  // namespace loom::random
