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
  cuda_select_device("cumsum", out.device().id);
  const NDArray src = x.contiguous();
  const AxisSplit s = split_around(x.shape(), wrap_axis("cumsum", dim, x.shape()));
  const unsigned blocks = cuda_grid_blocks(s.outer * s.inner, 256, out.device().id);
  visit_dtype(x.dtype(), "cumsum", [&](auto tag) {
    using T = typename decltype(tag)::type;
    cumsum_kernel<T><<<blocks, 256>>>(out.data<T>(), src.data<const T>(), s);
  });
  check_cuda_launch("cumsum");
}

}  // namespace loom::kernels
