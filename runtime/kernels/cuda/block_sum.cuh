// The sum of one double per thread over a block of kThreads threads, via
// shared memory, returned to every thread: the per-channel and per-row
// reductions of the normalisation kernels (batch_norm_cuda.cu,
// layer_norm_cuda.cu), which accumulate in double as the CPU kernels do.
#pragma once

namespace loom::kernels {

template <int kThreads>
__device__ double block_sum(double v, double* shared) {
  shared[threadIdx.x] = v;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) shared[threadIdx.x] += shared[threadIdx.x + half];
    __syncthreads();
  }
  const double total = shared[0];
  __syncthreads();
  return total;
}

}  // namespace loom::kernels
