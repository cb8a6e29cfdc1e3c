// The CUDA reduction every generated reduction instantiates:
//   run_reduce_cuda<In, Acc, Out>(op, monoid, call)
//
// Two layouts, chosen by where the reduced elements lie in memory:
//  - row: the threads of a block fold one output's reduced elements
//    together (adjacent threads read adjacent elements when the reduced dim
//    is the innermost), then combine in shared memory. For a full or
//    last-dim reduction.
//  - column: each thread folds one output alone, adjacent threads taking
//    adjacent outputs, so reads coalesce when the kept dim is the innermost
//    (reducing dim 0 of a row-major matrix).
// When there are too few outputs to fill the GPU (a 16M-element sum has
// one), the reduced range is split across blocks (grid.y): each writes a
// partial accumulator to a workspace and a second kernel combines them and
// applies the monoid's projection. The monoid's combine is associative, so
// the split changes only the rounding order.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "microkernel/base/error.h"
#include "runtime/dispatch/reduce_call.h"
#include "runtime/kernels/cuda/device_scratch.h"
#include "runtime/kernels/cuda/pointwise_cuda.cuh"

namespace loom::kernels {

struct CudaDims {
  int rank;
  std::int64_t shape[kMaxCudaDims];
  std::int64_t in_strides[kMaxCudaDims];
  std::int64_t out_strides[kMaxCudaDims];

  // Input offset of the k-th element of this index space (one division
  // per dim; the common one-dim case needs none).
  __device__ std::int64_t in_offset(std::int64_t k) const {
    if (rank == 1) return k * in_strides[0];
    std::int64_t off = 0;
    for (int d = rank - 1; d >= 0; --d) {
      off += (k % shape[d]) * in_strides[d];
      k /= shape[d];
    }
    return off;
  }
  __device__ void offsets(std::int64_t k, std::int64_t& in_off, std::int64_t& out_off) const {
    in_off = 0;
    out_off = 0;
    for (int d = rank - 1; d >= 0; --d) {
      const std::int64_t i = k % shape[d];
      k /= shape[d];
      in_off += i * in_strides[d];
      out_off += i * out_strides[d];
    }
  }
};

// The part [begin, end) of n_in elements that split `s` of `splits` folds;
// chunks are whole multiples of 64 elements, so a contiguous input's chunks
// stay as aligned as its start.
__device__ inline void split_range(std::int64_t n_in, int s, int splits, std::int64_t& begin, std::int64_t& end) {
  const std::int64_t chunk = ((n_in + splits - 1) / splits + 63) / 64 * 64;
  begin = std::min<std::int64_t>(n_in, chunk * s);
  end = std::min<std::int64_t>(n_in, begin + chunk);
}

template <typename In, typename Acc, typename Out, typename R, int kThreads>
__global__ void reduce_rows_kernel(R r, const In* in, Out* out, Acc* partials, CudaDims outer, CudaDims inner,
                                   std::int64_t n_out, std::int64_t n_in) {
  __shared__ Acc shared[kThreads];
  const int splits = gridDim.y, s = blockIdx.y;
  std::int64_t begin, end;
  split_range(n_in, s, splits, begin, end);
  for (std::int64_t o = blockIdx.x; o < n_out; o += gridDim.x) {
    std::int64_t in_off, out_off;
    outer.offsets(o, in_off, out_off);
    const In* base = in + in_off;
    // Four independent accumulators keep four loads in flight per thread.
    Acc a0 = r.template init<Acc>(), a1 = a0, a2 = a0, a3 = a0;
    std::int64_t k = begin + threadIdx.x;
    // A dense, 16-byte aligned range (a full or last-dim reduction): whole
    // 16-byte packs per load, then the leftover elements one by one.
    constexpr int V = sizeof(In) >= 16 ? 1 : static_cast<int>(16 / sizeof(In));
    if (V > 1 && inner.rank == 1 && inner.in_strides[0] == 1 &&
        reinterpret_cast<std::uintptr_t>(base + begin) % (sizeof(In) * V) == 0) {
      const Pack<In, V>* packs = reinterpret_cast<const Pack<In, V>*>(base + begin);
      const std::int64_t n_packs = (end - begin) / V;
      for (std::int64_t p = threadIdx.x; p < n_packs; p += kThreads) {
        const Pack<In, V> v = packs[p];
#pragma unroll
        for (int j = 0; j < V; j += 2) {
          a0 = r.combine(a0, r.map(static_cast<Acc>(v.v[j])));
          if (j + 1 < V) a1 = r.combine(a1, r.map(static_cast<Acc>(v.v[j + 1])));
        }
      }
      k = begin + n_packs * V + threadIdx.x;
    }
    for (; k + 3 * kThreads < end; k += 4 * kThreads) {
      a0 = r.combine(a0, r.map(static_cast<Acc>(base[inner.in_offset(k)])));
      a1 = r.combine(a1, r.map(static_cast<Acc>(base[inner.in_offset(k + kThreads)])));
      a2 = r.combine(a2, r.map(static_cast<Acc>(base[inner.in_offset(k + 2 * kThreads)])));
      a3 = r.combine(a3, r.map(static_cast<Acc>(base[inner.in_offset(k + 3 * kThreads)])));
    }
    for (; k < end; k += kThreads) a0 = r.combine(a0, r.map(static_cast<Acc>(base[inner.in_offset(k)])));
    shared[threadIdx.x] = r.combine(r.combine(a0, a1), r.combine(a2, a3));
    __syncthreads();
    for (int step = kThreads / 2; step > 0; step >>= 1) {
      if (static_cast<int>(threadIdx.x) < step)
        shared[threadIdx.x] = r.combine(shared[threadIdx.x], shared[threadIdx.x + step]);
      __syncthreads();
    }
    if (threadIdx.x == 0) {
      if (splits == 1) {
        out[out_off] = static_cast<Out>(r.project(shared[0], n_in));
      } else {
        partials[o * splits + s] = shared[0];
      }
    }
    __syncthreads();
  }
}

template <typename In, typename Acc, typename Out, typename R>
__global__ void reduce_columns_kernel(R r, const In* in, Out* out, Acc* partials, CudaDims outer, CudaDims inner,
                                      std::int64_t n_out, std::int64_t n_in) {
  const int splits = gridDim.y, s = blockIdx.y;
  std::int64_t begin, end;
  split_range(n_in, s, splits, begin, end);
  const std::int64_t stride = std::int64_t(blockDim.x) * gridDim.x;
  for (std::int64_t o = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; o < n_out; o += stride) {
    std::int64_t in_off, out_off;
    outer.offsets(o, in_off, out_off);
    const In* base = in + in_off;
    Acc a0 = r.template init<Acc>(), a1 = a0;
    std::int64_t k = begin;
    for (; k + 1 < end; k += 2) {
      a0 = r.combine(a0, r.map(static_cast<Acc>(base[inner.in_offset(k)])));
      a1 = r.combine(a1, r.map(static_cast<Acc>(base[inner.in_offset(k + 1)])));
    }
    if (k < end) a0 = r.combine(a0, r.map(static_cast<Acc>(base[inner.in_offset(k)])));
    const Acc acc = r.combine(a0, a1);
    if (splits == 1) {
      out[out_off] = static_cast<Out>(r.project(acc, n_in));
    } else {
      partials[o * splits + s] = acc;
    }
  }
}

// Combines each output's `splits` partial accumulators and projects: one
// block per output, its threads folding the partials in parallel (a single
// thread walking a thousand partials would wait on each load in turn).
template <typename Acc, typename Out, typename R, int kThreads>
__global__ void reduce_finish_kernel(R r, const Acc* partials, Out* out, CudaDims outer, std::int64_t n_out,
                                     std::int64_t n_in, int splits) {
  __shared__ Acc shared[kThreads];
  for (std::int64_t o = blockIdx.x; o < n_out; o += gridDim.x) {
    std::int64_t in_off, out_off;
    outer.offsets(o, in_off, out_off);
    Acc acc = r.template init<Acc>();
    for (int s = threadIdx.x; s < splits; s += kThreads) acc = r.combine(acc, partials[o * splits + s]);
    shared[threadIdx.x] = acc;
    __syncthreads();
    for (int step = kThreads / 2; step > 0; step >>= 1) {
      if (static_cast<int>(threadIdx.x) < step)
        shared[threadIdx.x] = r.combine(shared[threadIdx.x], shared[threadIdx.x + step]);
      __syncthreads();
    }
    if (threadIdx.x == 0) out[out_off] = static_cast<Out>(r.project(shared[0], n_in));
    __syncthreads();
  }
}

template <typename In, typename Acc, typename Out, typename R>
void run_reduce_cuda(std::string_view op, const R& r, const ReduceCall& call) {
  const std::int64_t n_out = call.outer_count();
  if (n_out == 0) return;
  const Device device = call.out.device();
  cuda_select_device(op, device.id);
  const int outer_rank = static_cast<int>(call.outer_shape.size());
  const int inner_rank = static_cast<int>(call.inner_shape.size());
  LOOM_CHECK_KIND(outer_rank <= kMaxCudaDims && inner_rank <= kMaxCudaDims, ErrorKind::kNotImplemented,
                  op, ": more than ", kMaxCudaDims, " dimensions exceed the CUDA reduction's limit");
  CudaDims outer{}, inner{};
  outer.rank = outer_rank;
  for (int d = 0; d < outer_rank; ++d) {
    outer.shape[d] = call.outer_shape[d];
    outer.in_strides[d] = call.outer_in_strides[d];
    outer.out_strides[d] = call.outer_out_strides[d];
  }
  inner.rank = inner_rank;
  for (int d = 0; d < inner_rank; ++d) {
    inner.shape[d] = call.inner_shape[d];
    inner.in_strides[d] = call.inner_strides[d];
  }
  const std::int64_t n_in = call.inner_count();
  const In* in = call.in.data<const In>();
  Out* out = call.out.data<Out>();
  // Enough blocks to fill every SM several times over.
  const std::int64_t target_blocks = std::int64_t(cuda_device_sm_count(device.id)) * 8;
  // Column layout when the kept dims, not the reduced ones, are innermost.
  const bool columns = n_out >= 32 && outer_rank > 0 && outer.in_strides[outer_rank - 1] == 1 &&
                       inner.in_strides[inner_rank - 1] != 1;
  constexpr int kThreads = 256;
  std::int64_t blocks_x, splits;
  if (columns) {
    blocks_x = std::min<std::int64_t>((n_out + kThreads - 1) / kThreads, 65535 * 8);
    splits = std::min<std::int64_t>({std::max<std::int64_t>(1, target_blocks / blocks_x), n_in / 64, 65535});
  } else {
    blocks_x = std::min<std::int64_t>(n_out, 65535 * 8);
    splits = std::min<std::int64_t>({std::max<std::int64_t>(1, target_blocks / blocks_x), n_in / (kThreads * 16),
                                     65535});
  }
  splits = std::max<std::int64_t>(splits, 1);
  const dim3 grid(static_cast<unsigned>(blocks_x), static_cast<unsigned>(splits));
  // Partial accumulators (device_scratch.h).
  const DeviceScratch ws(splits > 1 ? static_cast<std::size_t>(n_out * splits) * sizeof(Acc) : 0, device);
  Acc* partials = ws.as<Acc>();
  if (columns) {
    reduce_columns_kernel<In, Acc, Out><<<grid, kThreads>>>(r, in, out, partials, outer, inner, n_out, n_in);
  } else {
    reduce_rows_kernel<In, Acc, Out, R, kThreads><<<grid, kThreads>>>(r, in, out, partials, outer, inner, n_out,
                                                                      n_in);
  }
  check_cuda_launch(op);
  if (splits > 1) {
    const unsigned finish_blocks = static_cast<unsigned>(std::min<std::int64_t>(n_out, 65535 * 8));
    reduce_finish_kernel<Acc, Out, R, 128><<<finish_blocks, 128>>>(r, partials, out, outer, n_out, n_in,
                                                                   static_cast<int>(splits));
    check_cuda_launch(op);
  }
}

}  // namespace loom::kernels
