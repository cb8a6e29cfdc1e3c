// The CPU loop of every kernel.generate op (generator/generate_spec.py):
// out[i] = f(i, row, col) over a fresh dense array, computed in C (the compute type)
// and stored as T. The body is branch-free scalar code of i, so the loop
// vectorises where the body does (full, arange, eye); above kGrainSize
// elements it is split across OpenMP threads in contiguous chunks, which
// does not change the values (each depends on i alone: random ops draw
// element i from Philox block offset + i).
#pragma once

#include <algorithm>
#include <cstdint>

#include "runtime/core/half.h"
#include "runtime/ndarray/ndarray.h"

namespace loom::kernels {

template <typename T, typename C, typename F>
void run_generate_cpu(const NDArray& out, const F& f) {
  constexpr std::int64_t kGrainSize = 32768;
  T* p = out.data<T>();
  const std::int64_t n = out.numel();
  const F fn = f;  // a local copy: its fields stay in registers
  const std::int64_t cols = fn.cols;  // >= 1
  // Chunks of whole grains (threads split them) walked row by row, so that
  // row is constant and col a counter in the inner loop: the body of row and
  // col vectorises (eye's compare) with no division per element.
  const std::int64_t chunks = (n + kGrainSize - 1) / kGrainSize;
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (std::int64_t chunk = 0; chunk < chunks; ++chunk) {
    std::int64_t i = chunk * kGrainSize;
    const std::int64_t end = std::min(n, i + kGrainSize);
    std::int64_t row = i / cols, col = i - row * cols;
    while (i < end) {
      const std::int64_t len = std::min(end - i, cols - col);  // to the end of the row or the chunk
      T* q = p + i;
      for (std::int64_t j = 0; j < len; ++j) q[j] = static_cast<T>(fn.template operator()<C>(i + j, row, col + j));
      i += len;
      ++row;
      col = 0;
    }
  }
}

}  // namespace loom::kernels
