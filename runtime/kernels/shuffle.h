// The permutation shuffle_seeded applies (runtime/kernels/shuffle.cc), for
// its gradient (runtime/autograd/functions.cc: unshuffle).
#pragma once

#include <cstdint>
#include <vector>

namespace loom::kernels {

// perm[r]: the row of x that becomes row r of shuffle_seeded(x, seed, offset).
std::vector<std::int64_t> shuffle_permutation(std::int64_t rows, std::int64_t seed, std::int64_t offset);

}  // namespace loom::kernels
