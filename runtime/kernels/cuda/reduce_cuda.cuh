// The CUDA reduction every generated reduction instantiates:
//   run_reduce_cuda<In, Acc, Out>(op, monoid, call)
// One block per kept index (grid-stride over them): the block's threads fold
// strided slices of the reduced elements, then combine their partials in a
// shared-memory tree. Many outputs keep every SM busy with one block each; a
// full reduction runs in one block — correct, not yet the two-pass kernel a
// 16M-element sum deserves (see docs/op-dsl.md).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "microkernel/base/error.h"
#include "runtime/dispatch/reduce_call.h"
#include "runtime/kernels/cuda/pointwise_cuda.cuh"

namespace loom::kernels {

struct CudaDims {
  int rank;
  std::int64_t shape[kMaxCudaDims];
  std::int64_t in_strides[kMaxCudaDims];
  std::int64_t out_strides[kMaxCudaDims];
};

template <typename In, typename Acc, typename Out, typename R, int kThreads>
__global__ void reduce_kernel(R r, const In* in, Out* out, CudaDims outer, CudaDims inner,
                              std::int64_t n_out, std::int64_t n_in) {
  __shared__ Acc partial[kThreads];
  for (std::int64_t o = blockIdx.x; o < n_out; o += gridDim.x) {
    std::int64_t in_off = 0, out_off = 0, rest = o;
    for (int d = outer.rank - 1; d >= 0; --d) {
      const std::int64_t i = rest % outer.shape[d];
      rest /= outer.shape[d];
      in_off += i * outer.in_strides[d];
      out_off += i * outer.out_strides[d];
    }
    Acc acc = r.template init<Acc>();
    for (std::int64_t k = threadIdx.x; k < n_in; k += kThreads) {
      std::int64_t off = 0, left = k;
      for (int d = inner.rank - 1; d >= 0; --d) {
        off += (left % inner.shape[d]) * inner.in_strides[d];
        left /= inner.shape[d];
      }
      acc = r.combine(acc, r.map(static_cast<Acc>(in[in_off + off])));
    }
    partial[threadIdx.x] = acc;
    __syncthreads();
    for (int s = kThreads / 2; s > 0; s >>= 1) {
      if (static_cast<int>(threadIdx.x) < s) partial[threadIdx.x] = r.combine(partial[threadIdx.x], partial[threadIdx.x + s]);
      __syncthreads();
    }
    if (threadIdx.x == 0) out[out_off] = static_cast<Out>(r.project(partial[0], n_in));
    __syncthreads();
  }
}

template <typename In, typename Acc, typename Out, typename R>
void run_reduce_cuda(std::string_view op, const R& r, const ReduceCall& call) {
  const std::int64_t n_out = call.outer_count();
  if (n_out == 0) return;
  cudaError_t err = cudaSetDevice(call.out.device().id);
  LOOM_CHECK_KIND(err == cudaSuccess, ErrorKind::kRuntime, op, ": cudaSetDevice failed: ",
                  cudaGetErrorString(err));
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
  constexpr int kThreads = 256;
  const unsigned blocks = static_cast<unsigned>(n_out < 65535 * 8 ? n_out : 65535 * 8);
  reduce_kernel<In, Acc, Out, R, kThreads><<<blocks, kThreads>>>(
      r, call.in.data<const In>(), call.out.data<Out>(), outer, inner, n_out, call.inner_count());
  check_cuda_launch(op);
}

}  // namespace loom::kernels
