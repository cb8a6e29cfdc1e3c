// dropout_seeded on the GPU (opdefs/nn/dropout.yaml): the CPU kernel's
// mask, element by element (runtime/kernels/dropout_mask.h).
#include <cuda_runtime.h>

#include "generated/kernels/dropout_seeded.h"
#include "microkernel/base/error.h"
#include "runtime/kernels/cuda/pointwise_cuda.cuh"
#include "runtime/kernels/dropout_mask.h"

namespace loom::kernels {
namespace {

template <typename T>
__global__ void dropout_kernel(T* out, T* mask, const T* in, std::int64_t n, std::uint64_t seed,
                               std::uint64_t offset, double keep, T scale) {
  const std::int64_t step = std::int64_t(blockDim.x) * gridDim.x;
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n; i += step) {
    const T m = dropout_scale<T>(seed, offset, i, keep, scale);
    mask[i] = m;
    out[i] = in[i] * m;
  }
}

}  // namespace

void dropout_seeded_cuda(NDArray& out, NDArray& keep_out, const NDArray& x_in, double p, std::int64_t seed,
                         std::int64_t offset) {
  const std::int64_t n = out.numel();
  if (n == 0) return;
  cuda_select_device("dropout", out.device().id);
  const NDArray x = x_in.contiguous();
  const double keep = 1.0 - p;
  const unsigned blocks = cuda_grid_blocks(n, 256, out.device().id);
  const auto s = static_cast<std::uint64_t>(seed), off = static_cast<std::uint64_t>(offset);
  switch (out.dtype()) {
    case DType::kFloat32:
      dropout_kernel<float><<<blocks, 256>>>(out.data<float>(), keep_out.data<float>(), x.data<const float>(), n, s, off,
                                             keep, float(1.0 / keep));
      break;
    case DType::kFloat64:
      dropout_kernel<double><<<blocks, 256>>>(out.data<double>(), keep_out.data<double>(), x.data<const double>(), n, s,
                                              off, keep, 1.0 / keep);
      break;
    default: LOOM_THROW(ErrorKind::kType, "dropout: no CUDA kernel for dtype ", dtype_name(out.dtype()));
  }
  check_cuda_launch("dropout");
}

}  // namespace loom::kernels
