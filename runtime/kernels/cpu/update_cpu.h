// The CPU loop every generated update op (kernel.update) instantiates:
//   run_update_cpu<T, N>(functor, call)
// calls functor(a0[i], a1[i], ...) for every element of N dense arrays; the
// functor takes the updated arrays' elements by reference. Threads split
// the range above a size threshold; each chunk's loop is a simd loop.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "runtime/core/half.h"
#include "runtime/dispatch/update_call.h"
#include "runtime/kernels/cpu/cpu_isa.h"

namespace loom::kernels {
inline namespace LOOM_CPU_ISA {  // see cpu_isa.h: the AVX2 build must not collide with the base one

template <typename T, typename F, std::size_t... I>
inline void update_range(const F& f_in, T* const* p, std::int64_t begin, std::int64_t end,
                         std::index_sequence<I...>) {
  // Local copies: the attributes and pointers are then provably loop invariant.
  const F f = f_in;
  T* const q[] = {p[I]...};
  if constexpr (std::is_same_v<T, f16> || std::is_same_v<T, bf16>) {
    // float16/bfloat16 elements: the statements run in float on each
    // element's value, and every array is stored back rounded once (an
    // array the functor only reads comes back exactly as it was).
#pragma omp simd
    for (std::int64_t i = begin; i < end; ++i) {
      float v[] = {static_cast<float>(q[I][i])...};
      f(v[I]...);
      ((q[I][i] = T(v[I])), ...);
    }
  } else {
#pragma omp simd
    for (std::int64_t i = begin; i < end; ++i) f(q[I][i]...);
  }
}

template <typename T, std::size_t N, typename F>
void run_update_cpu(const F& f, const UpdateCall& call) {
  std::array<T*, N> p{};
  for (std::size_t k = 0; k < N; ++k) p[k] = call.arrays[k].template data<T>();
  const std::int64_t n = call.n;
  constexpr std::int64_t kChunk = 16384;  // per task; below two chunks one thread is faster
  const auto seq = std::make_index_sequence<N>{};
  if (n < 2 * kChunk) {
    update_range<T>(f, p.data(), 0, n, seq);
    return;
  }
  const std::int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static)
  for (std::int64_t c = 0; c < chunks; ++c) {
    update_range<T>(f, p.data(), c * kChunk, std::min(n, (c + 1) * kChunk), seq);
  }
}

}  // inline namespace LOOM_CPU_ISA
}  // namespace loom::kernels
