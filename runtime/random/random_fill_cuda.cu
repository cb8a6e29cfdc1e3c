// The CUDA half of random_fill: the same per-element sample as the CPU loop.
#include <cuda_runtime.h>

#include <algorithm>

#include "microkernel/base/error.h"
#include "runtime/core/dtype_visit.h"
#include "runtime/kernels/cuda/pointwise_cuda.cuh"
#include "runtime/random/random_sample.h"

namespace loom::random {
namespace {

template <typename T>
__global__ void fill_kernel(T* out, std::int64_t n, Distribution dist, double a, double b, std::uint64_t seed,
                            std::uint64_t offset) {
  const std::int64_t stride = std::int64_t(blockDim.x) * gridDim.x;
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n; i += stride) {
    out[i] = sample<T>(dist, a, b, philox_element(seed, offset, static_cast<std::uint64_t>(i)));
  }
}

}  // namespace

void fill_cuda(NDArray& out, Distribution dist, double a, double b, std::uint64_t seed, std::uint64_t offset) {
  const std::int64_t n = out.numel();
  if (n == 0) return;
  kernels::cuda_select_device("random", out.device().id);
  const unsigned blocks = kernels::cuda_grid_blocks(n, 256, out.device().id);
  visit_dtype(out.dtype(), "random", [&](auto tag) {
    using T = typename decltype(tag)::type;
    fill_kernel<T><<<blocks, 256>>>(out.data<T>(), n, dist, a, b, seed, offset);
  });
  kernels::check_cuda_launch("random");
}

}  // namespace loom::random
