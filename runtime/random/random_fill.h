// Filling an array with random values from the Philox stream (seed,
// offset): element i takes block offset + i, so the result depends only on
// the seed, the offset and the element's index, on the CPU and on a GPU.
// lm.random keeps the (seed, offset) state and advances the offset by the
// number of elements each call draws.
#pragma once

#include <cstdint>

#include "runtime/ndarray/ndarray.h"

namespace loom::random {

enum class Distribution {
  kUniform,    // [a, b)
  kNormal,     // mean a, standard deviation b (Box-Muller)
  kBernoulli,  // 1 with probability a, else 0
  kRandint,    // integers in [a, b)
};

// `out` must be dense; floating dtypes for uniform and normal, any numeric
// or bool dtype for bernoulli, integer dtypes for randint.
void fill(NDArray& out, Distribution dist, double a, double b, std::uint64_t seed, std::uint64_t offset);

#if LOOM_WITH_CUDA
void fill_cuda(NDArray& out, Distribution dist, double a, double b, std::uint64_t seed, std::uint64_t offset);
#endif

}  // namespace loom::random
