// The order topk ranks elements by, shared by the CPU and CUDA kernels so
// both give the same answer: larger first (smaller with !largest), NaN
// beyond every number (first when largest, last otherwise, as PyTorch),
// ties to the lower index. A total order on (value, index) pairs.
#pragma once

#include <cstdint>
#include <type_traits>

#if defined(__CUDACC__)
#define LOOM_TOPK_HD __host__ __device__
#else
#define LOOM_TOPK_HD
#endif

namespace loom::kernels {

template <typename T>
LOOM_TOPK_HD inline bool topk_is_nan(T v) {
  if constexpr (std::is_floating_point_v<T>) {
    return v != v;
  } else {
    return false;
  }
}

// True when (a, ia) ranks before (b, ib).
template <typename T>
LOOM_TOPK_HD inline bool topk_before(T a, std::int64_t ia, T b, std::int64_t ib, bool largest) {
  const bool na = topk_is_nan(a), nb = topk_is_nan(b);
  if (na != nb) return largest ? na : nb;  // NaN is the largest value
  if (!na && a != b) return largest ? a > b : a < b;
  return ia < ib;
}

}  // namespace loom::kernels
