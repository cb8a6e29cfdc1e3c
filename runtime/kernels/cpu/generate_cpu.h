// The CPU loop of every kernel.generate op (generator/generate_spec.py):
// out[i] = f(i) over a fresh dense array, computed in C (the compute type)
// and stored as T. The body is branch-free scalar code of i, so the loop
// vectorises where the body does (full, arange, eye); above kGrainSize
// elements it is split across OpenMP threads in contiguous chunks, which
// does not change the values (each depends on i alone: random ops draw
// element i from Philox block offset + i).
#pragma once

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
#pragma omp parallel for schedule(static) if (n > kGrainSize)
  for (std::int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(fn.template operator()<C>(i));
}

}  // namespace loom::kernels
