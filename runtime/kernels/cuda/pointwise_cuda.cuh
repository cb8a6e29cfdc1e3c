// The CUDA loop every generated pointwise kernel instantiates:
//   run_pointwise_cuda<T, N>(functor, call)
// the device twin of run_pointwise_cpu, over the same merged layout: a
// grid-stride loop over flat indices, reading dense operands directly and
// strided/broadcast ones through per-dimension offsets. Launches on the
// current device's default stream and checks the launch; the engine issue
// moves it onto the engine's per-device streams.
#pragma once

#include <cuda_runtime.h>

#include <array>
#include <cstdint>
#include <utility>

#include "microkernel/base/error.h"
#include "runtime/dispatch/pointwise_call.h"

namespace loom::kernels {

inline constexpr int kMaxCudaDims = 10;

// A by-value array kernels can take as a parameter.
template <typename T, std::size_t N>
struct CudaArray {
  T v[N];
};

template <int Operands>
struct CudaOffsets {
  int rank;
  std::int64_t shape[kMaxCudaDims];
  std::int64_t strides[Operands][kMaxCudaDims];

  __device__ void offsets(std::int64_t linear, std::int64_t* out) const {
#pragma unroll
    for (int k = 0; k < Operands; ++k) out[k] = 0;
    for (int d = rank - 1; d >= 0; --d) {
      const std::int64_t idx = linear % shape[d];
      linear /= shape[d];
#pragma unroll
      for (int k = 0; k < Operands; ++k) out[k] += idx * strides[k][d];
    }
  }
};

template <typename T, std::size_t N, typename Out, typename F, std::size_t... I>
__global__ void dense_kernel(F f, Out* out, CudaArray<const T*, N> in, std::int64_t n,
                             std::index_sequence<I...>) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
       i += std::int64_t(blockDim.x) * gridDim.x) {
    out[i] = f(in.v[I][i]...);
  }
}

template <typename T, std::size_t N, typename Out, typename F, std::size_t... I>
__global__ void strided_kernel(F f, Out* out, CudaArray<const T*, N> in, CudaOffsets<N + 1> layout,
                               std::int64_t n, std::index_sequence<I...>) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
       i += std::int64_t(blockDim.x) * gridDim.x) {
    std::int64_t off[N + 1];
    layout.offsets(i, off);
    out[off[0]] = f(in.v[I][off[I + 1]]...);
  }
}

inline void check_cuda_launch(std::string_view op) {
  cudaError_t err = cudaGetLastError();
  LOOM_CHECK_KIND(err == cudaSuccess, ErrorKind::kRuntime, op,
                  ": CUDA kernel launch failed: ", cudaGetErrorString(err));
}

// T: the inputs' compute type; Out: the result's (bool for comparisons).
template <typename T, std::size_t N, typename Out = T, typename F>
void run_pointwise_cuda(std::string_view op, const F& f, const PointwiseCall& call) {
  const std::int64_t n = call.out.numel();
  if (n == 0) return;
  cudaError_t err = cudaSetDevice(call.out.device().id);
  LOOM_CHECK_KIND(err == cudaSuccess, ErrorKind::kRuntime, op, ": cudaSetDevice failed: ",
                  cudaGetErrorString(err));
  CudaArray<const T*, N> in{};
  for (std::size_t k = 0; k < N; ++k) in.v[k] = call.inputs[k].template data<const T>();
  Out* out = call.out.data<Out>();
  constexpr int kThreads = 256;
  const std::int64_t blocks64 = (n + kThreads - 1) / kThreads;
  const unsigned blocks = static_cast<unsigned>(blocks64 < 65535 * 8 ? blocks64 : 65535 * 8);
  const StridedLayout layout = call.layout();
  const auto seq = std::make_index_sequence<N>{};
  if (layout.all_contiguous) {
    dense_kernel<T, N, Out><<<blocks, kThreads>>>(f, out, in, n, seq);
  } else {
    const int rank = static_cast<int>(layout.shape.size());
    LOOM_CHECK_KIND(rank <= kMaxCudaDims, ErrorKind::kNotImplemented, op, ": ", rank,
                    " non-mergeable dimensions exceed the CUDA loop's limit of ", kMaxCudaDims);
    CudaOffsets<N + 1> offsets{};
    offsets.rank = rank;
    for (int d = 0; d < rank; ++d) {
      offsets.shape[d] = layout.shape[d];
      for (std::size_t k = 0; k <= N; ++k) offsets.strides[k][d] = layout.strides[k][d];
    }
    strided_kernel<T, N, Out><<<blocks, kThreads>>>(f, out, in, offsets, n, seq);
  }
  check_cuda_launch(op);
}

}  // namespace loom::kernels
