// The CUDA loop every generated pointwise kernel instantiates:
//   run_pointwise_cuda<T, N>(functor, call)
// the device twin of run_pointwise_cpu, over the same merged layout: a
// grid-stride loop over flat indices, reading dense operands directly and
// strided/broadcast ones through per-dimension offsets. Launches on the
// current device's default stream and checks the launch; the engine issue
// moves it onto the engine's per-device streams.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <utility>

#include "microkernel/base/error.h"
#include "runtime/core/half.h"
#include "runtime/kernels/cuda/device_attributes.h"  // cuda_device_sm_count
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

// A run of V elements moved as one aligned load or store (16 bytes of
// inputs: four floats, two doubles).
template <typename T, int V>
struct alignas(sizeof(T) * V) Pack {
  T v[V];
};

// Dense operands, every pointer aligned to its pack: each thread moves V
// elements per load (one 128-bit transaction for 4-byte types), the grid
// striding over packs; the tail past the last whole pack is done by
// element.
// One element: the functor computes in opmath_t<T> (float for f16/bf16
// elements, T otherwise) and the result is stored as Out.
template <typename Out, typename T, typename F, typename... A>
__device__ __forceinline__ Out apply(const F& f, A... a) {
  return static_cast<Out>(f(static_cast<opmath_t<T>>(a)...));
}

template <typename T, std::size_t N, typename Out, int V, typename F, std::size_t... I>
__global__ void dense_vector_kernel(F f, Out* out, CudaArray<const T*, N> in, std::int64_t n,
                                    std::index_sequence<I...>) {
  const std::int64_t packs = n / V;
  const std::int64_t stride = std::int64_t(blockDim.x) * gridDim.x;
  for (std::int64_t p = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; p < packs; p += stride) {
    Pack<T, V> args[N > 0 ? N : 1];
#pragma unroll
    for (std::size_t k = 0; k < N; ++k) args[k] = reinterpret_cast<const Pack<T, V>*>(in.v[k])[p];
    Pack<Out, V> result;
#pragma unroll
    for (int j = 0; j < V; ++j) result.v[j] = apply<Out, T>(f, args[I].v[j]...);
    reinterpret_cast<Pack<Out, V>*>(out)[p] = result;
  }
  for (std::int64_t i = packs * V + blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n; i += stride) {
    out[i] = apply<Out, T>(f, in.v[I][i]...);
  }
}

// Dense operands in any alignment: four elements per thread per step, so
// four loads are in flight.
template <typename T, std::size_t N, typename Out, typename F, std::size_t... I>
__global__ void dense_kernel(F f, Out* out, CudaArray<const T*, N> in, std::int64_t n,
                             std::index_sequence<I...>) {
  const std::int64_t stride = std::int64_t(blockDim.x) * gridDim.x;
  std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x;
  for (; i + 3 * stride < n; i += 4 * stride) {
    Out r[4];
#pragma unroll
    for (int u = 0; u < 4; ++u) r[u] = apply<Out, T>(f, in.v[I][i + u * stride]...);
#pragma unroll
    for (int u = 0; u < 4; ++u) out[i + u * stride] = r[u];
  }
  for (; i < n; i += stride) out[i] = apply<Out, T>(f, in.v[I][i]...);
}

template <typename T, std::size_t N, typename Out, typename F, std::size_t... I>
__global__ void strided_kernel(F f, Out* out, CudaArray<const T*, N> in, CudaOffsets<N + 1> layout,
                               std::int64_t n, std::index_sequence<I...>) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
       i += std::int64_t(blockDim.x) * gridDim.x) {
    std::int64_t off[N + 1];
    layout.offsets(i, off);
    out[off[0]] = apply<Out, T>(f, in.v[I][off[I + 1]]...);
  }
}

// Makes `device` current for the kernels `op` launches next.
inline void cuda_select_device(std::string_view op, int device) {
  cudaError_t err = cudaSetDevice(device);
  LOOM_CHECK_KIND(err == cudaSuccess, ErrorKind::kRuntime, op, ": cudaSetDevice failed: ", cudaGetErrorString(err));
}

// Blocks of `threads` for a grid-stride loop over `items`: one per `threads`
// items, at most the blocks the device keeps resident (8 per SM), at least one.
inline unsigned cuda_grid_blocks(std::int64_t items, int threads, int device) {
  const std::int64_t want = (items + threads - 1) / threads;
  return static_cast<unsigned>(
      std::max<std::int64_t>(1, std::min<std::int64_t>(want, std::int64_t(cuda_device_sm_count(device)) * 8)));
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
  cuda_select_device(op, call.out.device().id);
  CudaArray<const T*, N> in{};
  for (std::size_t k = 0; k < N; ++k) in.v[k] = call.inputs[k].template data<const T>();
  Out* out = call.out.data<Out>();
  constexpr int kThreads = 256;
  const std::int64_t blocks64 = (n + kThreads - 1) / kThreads;
  const unsigned blocks = static_cast<unsigned>(blocks64 < 65535 * 8 ? blocks64 : 65535 * 8);
  const StridedLayout layout = call.layout();
  const auto seq = std::make_index_sequence<N>{};
  if (layout.all_contiguous) {
    constexpr int V = sizeof(T) >= 16 ? 1 : static_cast<int>(16 / sizeof(T));
    bool aligned = reinterpret_cast<std::uintptr_t>(out) % (sizeof(Out) * V) == 0;
    for (std::size_t k = 0; k < N; ++k)
      aligned = aligned && reinterpret_cast<std::uintptr_t>(in.v[k]) % (sizeof(T) * V) == 0;
    // Resident blocks only; each thread then loops over many elements,
    // which beats one short-lived thread per element.
    const int device = call.out.device().id;
    if (V > 1 && aligned) {
      dense_vector_kernel<T, N, Out, V><<<cuda_grid_blocks(n / V, kThreads, device), kThreads>>>(f, out, in, n, seq);
    } else {
      dense_kernel<T, N, Out><<<cuda_grid_blocks(n, 4 * kThreads, device), kThreads>>>(f, out, in, n, seq);
    }
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
