// cumsum on a GPU: one thread per line along the dim, each a sequential
// running sum (the same order as the CPU kernel). Lines are many in the
// common cases (cumsum over the last dim of a batch); a long single line
// would want a parallel scan.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "generated/kernels/cumsum.h"
#include "microkernel/base/error.h"
#include "runtime/core/dtype_visit.h"
#include "runtime/kernels/cuda/pointwise_cuda.cuh"
#include "runtime/kernels/indexing.h"

namespace loom::kernels {
namespace {

template <typename T>
__global__ void cumsum_kernel(T* out, const T* in, AxisSplit s) {
  const std::int64_t lines = s.outer * s.inner;
  const std::int64_t stride = std::int64_t(blockDim.x) * gridDim.x;
  for (std::int64_t line = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; line < lines; line += stride) {
    const std::int64_t r = line / s.inner, k = line % s.inner;
    T acc = T(0);
    for (std::int64_t a = 0; a < s.axis; ++a) {
      const std::int64_t at = (r * s.axis + a) * s.inner + k;
      acc = static_cast<T>(acc + in[at]);
      out[at] = acc;
    }
  }
}

}  // namespace

void cumsum_cuda(NDArray& out, const NDArray& x, std::int64_t dim) {
  if (x.numel() == 0) return;
  cudaError_t err = cudaSetDevice(out.device().id);
  LOOM_CHECK_KIND(err == cudaSuccess, ErrorKind::kRuntime, "cumsum: cudaSetDevice failed: ", cudaGetErrorString(err));
  const NDArray src = x.contiguous();
  const AxisSplit s = split_around(x.shape(), wrap_axis("cumsum", dim, x.shape()));
  const std::int64_t lines = s.outer * s.inner;
  const auto blocks = static_cast<unsigned>(std::max<std::int64_t>(
      1, std::min<std::int64_t>((lines + 255) / 256, std::int64_t(cuda_device_sm_count(out.device().id)) * 8)));
  visit_dtype(x.dtype(), "cumsum", [&](auto tag) {
    using T = typename decltype(tag)::type;
    cumsum_kernel<T><<<blocks, 256>>>(out.data<T>(), src.data<const T>(), s);
  });
  check_cuda_launch("cumsum");
}

}  // namespace loom::kernels
