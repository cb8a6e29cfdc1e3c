// Dropout's keep/drop decision for one element, shared by the CPU and CUDA
// kernels so both draw the same mask: element i of the stream (seed,
// offset) is kept when its uniform draw is below 1 - p, exactly when
// lm.random.bernoulli(1 - p) at that position gives 1.
#pragma once

#include <cstdint>

#include "runtime/random/philox.h"

namespace loom::kernels {

// The scaled mask value of element i: 0, or 1 / (1 - p) when kept.
template <typename T>
LOOM_HD T dropout_scale(std::uint64_t seed, std::uint64_t offset, std::int64_t i, double keep, T scale) {
  const random::PhiloxBlock blk = random::philox_element(seed, offset, static_cast<std::uint64_t>(i));
  return random::unit_double(blk) < keep ? scale : T(0);
}

}  // namespace loom::kernels
