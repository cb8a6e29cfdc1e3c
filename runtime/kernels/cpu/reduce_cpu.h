// The CPU loop every generated reduction instantiates:
//   run_reduce_cpu<In, Acc, Out>(monoid, call)
// For each kept index, folds the reduced elements, each through the
// monoid's map, into an Acc with its combine, and writes Out(project(acc, n)).
//
// Parallelism follows the shape: many outputs are split across threads; a
// few outputs over many elements (a full sum) are split along the reduced
// range, each thread folding a contiguous chunk, the partials combined in
// chunk order (so the result depends only on the thread count, not timing).
// Contiguous runs fold into eight independent accumulators, which the
// compiler vectorises without reassociating a single chain.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "runtime/kernels/cpu/cpu_isa.h"
#include "runtime/dispatch/reduce_call.h"
#include "runtime/kernels/cpu/pointwise_cpu.h"

namespace loom::kernels {
inline namespace LOOM_CPU_ISA {
namespace detail {

// Independent accumulators of a contiguous run: 32 make four 512-bit (or
// eight 256-bit) vectors of doubles, enough chains to hide the add latency
// (with 8, one vector, a float32 sum was latency-bound: 1.2x torch).
constexpr int kLanes = 32;

// Folds inner (reduced) elements [begin, end) of the block starting at `base`.
// Folds p[0, n) (contiguous) into `acc` through kLanes independent chains.
template <typename In, typename Acc, typename R>
Acc fold_run(const R& r, const In* p, std::int64_t n, Acc acc) {
  std::int64_t j = 0;
  if (n >= 2 * kLanes) {
    Acc lanes[kLanes];
    for (int k = 0; k < kLanes; ++k) lanes[k] = r.template init<Acc>();
    for (; j + kLanes <= n; j += kLanes) {
      for (int k = 0; k < kLanes; ++k) lanes[k] = r.combine(lanes[k], r.map(static_cast<Acc>(p[j + k])));
    }
    for (int k = 0; k < kLanes; ++k) acc = r.combine(acc, lanes[k]);
  }
  for (; j < n; ++j) acc = r.combine(acc, r.map(static_cast<Acc>(p[j])));
  return acc;
}

template <typename In, typename Acc, typename R>
Acc fold_inner(const R& r, const In* base, const Shape& shape, const Strides& strides,
               std::int64_t begin, std::int64_t end) {
  Acc acc = r.template init<Acc>();
  if (begin >= end) return acc;
  // One contiguous reduced dim (a row of a row-major matrix, a flat sum):
  // no multi-index to keep, which for short rows cost as much as the sum.
  if (shape.size() == 1 && strides[0] == 1) return fold_run<In, Acc>(r, base + begin, end - begin, acc);
  const int rank = static_cast<int>(shape.size());
  // The multi-index of `begin`, innermost dim fastest.
  std::vector<std::int64_t> index(rank, 0);
  std::int64_t rest = begin, offset = 0;
  for (int d = rank - 1; d >= 0; --d) {
    index[d] = rest % shape[d];
    rest /= shape[d];
    offset += index[d] * strides[d];
  }
  const std::int64_t last = rank - 1, length = shape[last], stride = strides[last];
  std::int64_t remaining = end - begin;
  while (remaining > 0) {
    const std::int64_t run = std::min(length - index[last], remaining);
    const In* p = base + offset;
    if (stride == 1) {
      acc = fold_run<In, Acc>(r, p, run, acc);
    } else {
      for (std::int64_t j = 0; j < run; ++j) acc = r.combine(acc, r.map(static_cast<Acc>(p[j * stride])));
    }
    remaining -= run;
    offset += run * stride;
    index[last] += run;
    for (std::int64_t d = last; d > 0 && index[d] == shape[d]; --d) {
      offset += strides[d - 1] - index[d] * strides[d];
      index[d] = 0;
      ++index[d - 1];
    }
  }
  return acc;
}

// Input and output offsets of kept index `o`.
inline void outer_offsets(const ReduceCall& call, std::int64_t o, std::int64_t& in_off,
                          std::int64_t& out_off) {
  in_off = out_off = 0;
  for (int d = static_cast<int>(call.outer_shape.size()) - 1; d >= 0; --d) {
    const std::int64_t i = o % call.outer_shape[d];
    o /= call.outer_shape[d];
    in_off += i * call.outer_in_strides[d];
    out_off += i * call.outer_out_strides[d];
  }
}

// Outer reductions (the reduced dims are strided, the innermost kept dim is
// contiguous, e.g. a sum over dim 0 of a row-major matrix): walk the reduced
// elements in the outer loop and a block of adjacent outputs in the inner
// one, so every load is contiguous and the inner loop vectorises, instead of
// striding through memory once per output.
template <typename In, typename Acc, typename Out, typename R>
bool try_reduce_columns(const R& r, const ReduceCall& call) {
  const int rank = static_cast<int>(call.outer_shape.size());
  if (rank == 0 || call.outer_in_strides[rank - 1] != 1 || call.inner_strides.back() == 1 ||
      call.outer_shape[rank - 1] < 16) {
    return false;
  }
  // Blocks of adjacent outputs, as wide as keeps every thread busy (up to
  // 2048 accumulators, 16 KiB of doubles: L1-resident), so each reduced
  // step reads a long contiguous run; 256-wide blocks read 1 KiB out of
  // every 16 KiB row of a (4096, 4096) sum over dim 0 and ran 1.5x torch.
  constexpr std::int64_t kMaxBlock = 2048;
  const std::int64_t cols = call.outer_shape[rank - 1];
  const std::int64_t rows = call.outer_count() / cols;
#ifdef _OPENMP
  const std::int64_t threads = omp_get_max_threads();
#else
  const std::int64_t threads = 1;
#endif
  const std::int64_t share = (cols + std::max<std::int64_t>(1, threads / rows) - 1) /
                             std::max<std::int64_t>(1, threads / rows);
  const std::int64_t kBlock = std::min(kMaxBlock, std::max<std::int64_t>(64, (share + 15) / 16 * 16));
  const std::int64_t blocks_per_row = (cols + kBlock - 1) / kBlock;
  const std::int64_t n_in = call.inner_count();
  const std::int64_t out_step = call.outer_out_strides[rank - 1];
  const Shape& shape = call.inner_shape;
  const Strides& strides = call.inner_strides;
  const In* in = call.in.data<const In>();
  Out* out = call.out.data<Out>();
  parallel_range(rows * blocks_per_row, kBlock * std::max<std::int64_t>(n_in, 1),
                 [&](std::int64_t b, std::int64_t e) {
    Acc acc[kMaxBlock];
    std::vector<std::int64_t> index(shape.size());
    for (std::int64_t task = b; task < e; ++task) {
      const std::int64_t row = task / blocks_per_row, c0 = (task % blocks_per_row) * kBlock;
      const std::int64_t width = std::min(kBlock, cols - c0);
      std::int64_t in_off, out_off;
      outer_offsets(call, row * cols + c0, in_off, out_off);
      for (std::int64_t c = 0; c < width; ++c) acc[c] = r.template init<Acc>();
      std::fill(index.begin(), index.end(), 0);
      std::int64_t offset = 0;
      for (std::int64_t k = 0; k < n_in; ++k) {
        const In* p = in + in_off + offset;
        for (std::int64_t c = 0; c < width; ++c) acc[c] = r.combine(acc[c], r.map(static_cast<Acc>(p[c])));
        for (int d = static_cast<int>(shape.size()) - 1; d >= 0; --d) {  // next reduced index
          offset += strides[d];
          if (++index[d] < shape[d]) break;
          offset -= index[d] * strides[d];
          index[d] = 0;
        }
      }
      for (std::int64_t c = 0; c < width; ++c) out[out_off + c * out_step] = static_cast<Out>(r.project(acc[c], n_in));
    }
  });
  return true;
}

}  // namespace detail

template <typename In, typename Acc, typename Out, typename R>
void run_reduce_cpu(const R& r, const ReduceCall& call) {
  const std::int64_t n_out = call.outer_count();
  if (n_out == 0) return;
  const std::int64_t n_in = call.inner_count();
  const In* in = call.in.data<const In>();
  Out* out = call.out.data<Out>();
#ifdef _OPENMP
  const std::int64_t threads = omp_get_max_threads();
#else
  const std::int64_t threads = 1;
#endif
  if (n_in > 0 && detail::try_reduce_columns<In, Acc, Out>(r, call)) return;
  if (n_out >= threads || n_out * n_in < kGrainSize) {
    detail::parallel_range(n_out, std::max<std::int64_t>(n_in, 1), [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t o = b; o < e; ++o) {
        std::int64_t in_off, out_off;
        detail::outer_offsets(call, o, in_off, out_off);
        const Acc acc = detail::fold_inner<In, Acc>(r, in + in_off, call.inner_shape,
                                                    call.inner_strides, 0, n_in);
        out[out_off] = static_cast<Out>(r.project(acc, n_in));
      }
    });
    return;
  }
  // Few outputs, long reductions: split each reduction across the threads.
  for (std::int64_t o = 0; o < n_out; ++o) {
    std::int64_t in_off, out_off;
    detail::outer_offsets(call, o, in_off, out_off);
    std::vector<Acc> partial(threads, r.template init<Acc>());
    const std::int64_t chunk = (n_in + threads - 1) / threads;
#pragma omp parallel for schedule(static)
    for (std::int64_t t = 0; t < threads; ++t) {
      const std::int64_t begin = t * chunk, end = std::min(n_in, begin + chunk);
      partial[t] = detail::fold_inner<In, Acc>(r, in + in_off, call.inner_shape,
                                               call.inner_strides, begin, end);
    }
    Acc acc = r.template init<Acc>();
    for (const Acc& p : partial) acc = r.combine(acc, p);
    out[out_off] = static_cast<Out>(r.project(acc, n_in));
  }
}

}  // namespace LOOM_CPU_ISA
}  // namespace loom::kernels
