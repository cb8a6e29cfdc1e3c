// The CPU loop every generated pointwise kernel instantiates:
//   run_pointwise_cpu<T>(functor, call)
// computes call.out[i] = functor(call.inputs[0][i], ...) over the broadcast
// shape. Dense operands take a flat loop the compiler vectorises (the functor
// is a scalar expression, so the loop body is branch-free); anything else
// walks the merged strided layout with a contiguous-as-possible inner loop.
// Above kGrainSize elements the work is split across OpenMP threads.
#pragma once

#include <array>
#include <cstdint>
#include <type_traits>
#include <utility>

#if defined(__F16C__)
#include <immintrin.h>
#endif

#ifdef _OPENMP
#include <omp.h>
#endif

#include "runtime/core/half.h"
#include "runtime/kernels/cpu/cpu_isa.h"
#include "runtime/dispatch/pointwise_call.h"
#include "runtime/kernels/cpu/streaming_store.h"
#include "runtime/kernels/cpu/strided_layout.h"

namespace loom::kernels {
inline namespace LOOM_CPU_ISA {

// Below this many elements one thread is faster than waking the others
// (the same threshold PyTorch's CPU loops use).
inline constexpr std::int64_t kGrainSize = 32768;

namespace detail {

// float16/bfloat16 runs converted to float and back, many at a time: with
// F16C (the AVX2 build) eight halves per instruction; bfloat16 is a shift
// and a rounding the compiler vectorises.
inline void widen(const f16* in, float* out, std::int64_t n) {
  std::int64_t i = 0;
#if defined(__F16C__)
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i))));
  }
#endif
  for (; i < n; ++i) out[i] = half_to_float(in[i].bits);
}
inline void widen(const bf16* in, float* out, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) out[i] = bfloat16_to_float(in[i].bits);
}
inline void narrow(const float* in, f16* out, std::int64_t n) {
  std::int64_t i = 0;
#if defined(__F16C__)
  for (; i + 8 <= n; i += 8) {  // round to nearest even, as float_to_half
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
#endif
  for (; i < n; ++i) out[i].bits = float_to_half(in[i]);
}
inline void narrow(const float* in, bf16* out, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) out[i].bits = float_to_bfloat16(in[i]);
}
template <typename Out>
inline void narrow(const float* in, Out* out, std::int64_t n) {  // bool results of comparisons
  for (std::int64_t i = 0; i < n; ++i) out[i] = static_cast<Out>(in[i]);
}

// Dense half-precision operands: blocks widened into float buffers, the
// body run on floats (the same vectorised loop as float32), results narrowed.
template <typename T, std::size_t N, typename Out, typename F, std::size_t... I>
void dense_half_range(const F& f, Out* out, const std::array<const T*, N>& in, std::int64_t begin,
                      std::int64_t end, std::index_sequence<I...>) {
  constexpr std::int64_t kBlock = 512;
  alignas(32) float args[N > 0 ? N : 1][kBlock];
  alignas(32) float result[kBlock];
  const F fn = f;
  for (std::int64_t b = begin; b < end; b += kBlock) {
    const std::int64_t m = end - b < kBlock ? end - b : kBlock;
    ((widen(in[I] + b, args[I], m)), ...);
    for (std::int64_t j = 0; j < m; ++j) result[j] = static_cast<float>(fn(args[I][j]...));
    narrow(result, out + b, m);
  }
}

// A dense range whose results go out through streaming stores (see
// streaming_store.h): a head with plain stores up to a 64-byte boundary,
// then blocks computed into an L1 buffer and streamed, then the tail. An
// output equal to an input (out= the same view) is safe: each block is read
// before it is written.
// (No loop-to-memcpy rewriting here: for copy, GCC turned the block loop
// into `rep movsq`, which ran 1.35x slower than the vectorised loop.)
template <typename T, std::size_t N, typename Out, typename F, std::size_t... I>
__attribute__((optimize("no-tree-loop-distribute-patterns")))
void dense_range_streamed(const F& f, Out* out, const std::array<const T*, N>& in, std::int64_t begin,
                          std::int64_t end, std::index_sequence<I...>) {
  const std::array<const T*, N> src = in;  // local copies, as in dense_range
  const F fn = f;
  constexpr std::int64_t kBlock = 1024;
  alignas(64) Out buffer[kBlock];
  std::int64_t i = begin;
  for (; i < end && reinterpret_cast<std::uintptr_t>(out + i) % kStreamAlign != 0; ++i) {
    out[i] = static_cast<Out>(fn(src[I][i]...));
  }
  for (; i + kBlock <= end; i += kBlock) {
    for (std::int64_t j = 0; j < kBlock; ++j) buffer[j] = static_cast<Out>(fn(src[I][i + j]...));
    stream_copy(out + i, buffer, kBlock);
  }
  for (; i < end; ++i) out[i] = static_cast<Out>(fn(src[I][i]...));
  stream_fence();
}

template <typename T, std::size_t N, typename Out, typename F, std::size_t... I>
void dense_range(const F& f, Out* out, const std::array<const T*, N>& in,
                 std::int64_t begin, std::int64_t end, std::index_sequence<I...>, bool stream = false) {
  if constexpr (std::is_same_v<T, f16> || std::is_same_v<T, bf16>) {
    return dense_half_range<T, N, Out>(f, out, in, begin, end, std::index_sequence<I...>{});
  }
  if constexpr ((std::is_same_v<Out, float> || std::is_same_v<Out, double>) && std::is_same_v<T, Out>) {
    if (stream) return dense_range_streamed<T, N, Out>(f, out, in, begin, end, std::index_sequence<I...>{});
  }
  // Local copies of the input pointers let the compiler prove they do not
  // change inside the loop. `out` may equal an input (out= the same view),
  // so it is not __restrict: the compiler versions the loop on aliasing.
  const std::array<const T*, N> src = in;
  // A local copy of the functor: its attributes are then provably loop
  // invariant, so a branch on a bool attribute (gelu's `approximate`) is
  // hoisted out of the loop (unswitched) and the loop still vectorises.
  const F fn = f;
  // C is T, except for f16/bf16 elements, which compute in float (a no-op
  // cast otherwise, so the loop vectorises as before).
  using C = opmath_t<T>;
  for (std::int64_t i = begin; i < end; ++i) out[i] = static_cast<Out>(fn(static_cast<C>(src[I][i])...));
}

template <typename T, std::size_t N, typename Out, typename F, std::size_t... I>
void strided_rows(const F& f, const StridedLayout& layout, Out* out,
                  const std::array<const T*, N>& in, std::int64_t row_begin,
                  std::int64_t row_end, std::index_sequence<I...>) {
  const int rank = static_cast<int>(layout.shape.size());
  const std::int64_t inner = layout.shape[rank - 1];
  const std::int64_t out_step = layout.strides[0][rank - 1];
  const std::array<std::int64_t, N> in_step = {layout.strides[I + 1][rank - 1]...};
  for (std::int64_t row = row_begin; row < row_end; ++row) {
    // Offsets of this row's first element, from its index in the outer dims.
    std::int64_t rest = row, out_off = 0;
    std::array<std::int64_t, N> in_off{};
    for (int d = rank - 2; d >= 0; --d) {
      const std::int64_t idx = rest % layout.shape[d];
      rest /= layout.shape[d];
      out_off += idx * layout.strides[0][d];
      ((in_off[I] += idx * layout.strides[I + 1][d]), ...);
    }
    Out* o = out + out_off;
    const F fn = f;  // loop-invariant attributes, as in dense_range
    for (std::int64_t j = 0; j < inner; ++j) {
      o[j * out_step] = static_cast<Out>(fn(static_cast<opmath_t<T>>(in[I][in_off[I] + j * in_step[I]])...));
    }
  }
}

// Calls body(begin, end) over [0, n), in parallel chunks when n is large.
template <typename Body>
void parallel_range(std::int64_t n, std::int64_t cost_per_item, const Body& body) {
  if (n * cost_per_item < kGrainSize) {
    body(0, n);
    return;
  }
#pragma omp parallel
  {
#ifdef _OPENMP
    const std::int64_t threads = omp_get_num_threads(), tid = omp_get_thread_num();
#else
    const std::int64_t threads = 1, tid = 0;
#endif
    const std::int64_t chunk = (n + threads - 1) / threads;
    const std::int64_t begin = tid * chunk, end = begin + chunk < n ? begin + chunk : n;
    if (begin < end) body(begin, end);
  }
}

}  // namespace detail

// T is the element type of the inputs, Out the result's (bool for
// comparisons, T otherwise); f16/bf16 elements are computed in float.
template <typename T, std::size_t N, typename Out = T, typename F>
void run_pointwise_cpu(const F& f, const PointwiseCall& call) {
  const std::int64_t n = call.out.numel();
  if (n == 0) return;
  Out* out = call.out.data<Out>();
  std::array<const T*, N> in{};
  for (std::size_t k = 0; k < N; ++k) in[k] = call.inputs[k].template data<const T>();
  const auto seq = std::make_index_sequence<N>{};
  // Same-shape dense operands (most calls) need no layout: skip building it.
  bool dense = call.out.is_contiguous();
  for (std::size_t k = 0; k < N && dense; ++k) {
    dense = call.inputs[k].shape() == call.out.shape() && call.inputs[k].is_contiguous();
  }
  // Outputs far beyond the caches go out through streaming stores.
  const bool stream = n * static_cast<std::int64_t>(sizeof(Out)) >= kStreamingBytes;
  if (dense) {
    detail::parallel_range(n, 1, [&](std::int64_t b, std::int64_t e) {
      detail::dense_range<T, N, Out>(f, out, in, b, e, seq, stream);
    });
    return;
  }
  const StridedLayout layout = call.layout();
  if (layout.all_contiguous) {
    detail::parallel_range(n, 1, [&](std::int64_t b, std::int64_t e) {
      detail::dense_range<T, N, Out>(f, out, in, b, e, seq, stream);
    });
    return;
  }
  const std::int64_t inner = layout.shape.back();
  detail::parallel_range(n / inner, inner, [&](std::int64_t b, std::int64_t e) {
    detail::strided_rows<T, N, Out>(f, layout, out, in, b, e, seq);
  });
}

}  // namespace LOOM_CPU_ISA
}  // namespace loom::kernels
