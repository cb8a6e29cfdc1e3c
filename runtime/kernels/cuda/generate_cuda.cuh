// The CUDA kernel of every kernel.generate op: a grid-stride loop writing
// out[i] = f(i, row, col), the same functor (and so the same values) as the CPU loop
// in runtime/kernels/cpu/generate_cpu.h.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <string_view>

#include "runtime/kernels/cuda/pointwise_cuda.cuh"

namespace loom::kernels {

template <typename T, typename C, typename F>
__global__ void generate_kernel(F f, T* out, std::int64_t n) {
  const std::int64_t stride = std::int64_t(blockDim.x) * gridDim.x;
  const std::int64_t cols = f.cols;
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n; i += stride) {
    const std::int64_t row = i / cols;  // the compiler drops it for a body without row/col
    out[i] = static_cast<T>(f.template operator()<C>(i, row, i - row * cols));
  }
}

template <typename T, typename C, typename F>
void run_generate_cuda(std::string_view op, const NDArray& out, const F& f) {
  const std::int64_t n = out.numel();
  if (n == 0) return;
  cuda_select_device(op, out.device().id);
  constexpr int kThreads = 256;
  generate_kernel<T, C><<<cuda_grid_blocks(n, kThreads, out.device().id), kThreads>>>(f, out.data<T>(), n);
  check_cuda_launch(op);
}

}  // namespace loom::kernels
