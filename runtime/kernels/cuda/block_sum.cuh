// The sum of one double per thread over a one-dimensional block of
// kThreads threads, returned to every thread: the per-channel and per-row
// reductions of the normalisation kernels (batch_norm_cuda.cu,
// layer_norm_cuda.cu), which accumulate in double as the CPU kernels do.
// Warp shuffles first, then one shared slot per warp: two barriers instead
// of one per halving step. The order of additions is fixed, so results are
// the same run to run.
#pragma once

namespace loom::kernels {

template <int kThreads>
__device__ double block_sum(double v, double* shared) {
  static_assert(kThreads % 32 == 0 && kThreads <= 1024, "block_sum takes whole warps");
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  if (threadIdx.x % 32 == 0) shared[threadIdx.x / 32] = v;
  __syncthreads();
  double total = 0;
  for (int w = 0; w < kThreads / 32; ++w) total += shared[w];
  __syncthreads();  // the slots are reused by the next call
  return total;
}

}  // namespace loom::kernels
