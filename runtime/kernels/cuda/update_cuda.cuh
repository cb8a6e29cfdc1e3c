// The CUDA twin of run_update_cpu: a grid-stride loop over the elements of
// N dense arrays, calling the update functor with the updated arrays'
// elements by reference.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "runtime/core/half.h"

#include "runtime/dispatch/update_call.h"
#include "runtime/kernels/cuda/pointwise_cuda.cuh"

namespace loom::kernels {

template <typename T, std::size_t N, typename F, std::size_t... I>
__global__ void update_kernel(F f, CudaArray<T*, N> p, std::int64_t n, std::index_sequence<I...>) {
  const std::int64_t stride = std::int64_t(blockDim.x) * gridDim.x;
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n; i += stride) {
    if constexpr (std::is_same_v<T, f16> || std::is_same_v<T, bf16>) {  // in float, rounded once (update_cpu.h)
      float v[] = {static_cast<float>(p.v[I][i])...};
      f(v[I]...);
      ((p.v[I][i] = T(v[I])), ...);
    } else {
      f(p.v[I][i]...);
    }
  }
}

template <typename T, std::size_t N, typename F>
void run_update_cuda(std::string_view op, const F& f, const UpdateCall& call) {
  if (call.n == 0) return;
  const int device = call.arrays[0].device().id;
  cuda_select_device(op, device);
  CudaArray<T*, N> p{};
  for (std::size_t k = 0; k < N; ++k) p.v[k] = call.arrays[k].template data<T>();
  constexpr int kThreads = 256;
  update_kernel<T, N><<<cuda_grid_blocks(call.n, kThreads, device), kThreads>>>(f, p, call.n,
                                                                              std::make_index_sequence<N>{});
  check_cuda_launch(op);
}

}  // namespace loom::kernels
