// topk on a GPU: one thread per line along the dim. The j-th result is the
// best element ranked strictly after the (j-1)-th in topk's total order
// (runtime/kernels/topk_order.h), found by a scan of the line: O(n k) per
// line and no scratch memory, which suits the small k of top-k accuracy
// and beam search; a large k over one long line would want a radix select.
#include <cuda_runtime.h>

#include <cstdint>

#include "generated/kernels/topk.h"
#include "microkernel/base/error.h"
#include "runtime/core/dtype_visit.h"
#include "runtime/kernels/cuda/pointwise_cuda.cuh"
#include "runtime/kernels/indexing.h"
#include "runtime/kernels/topk_order.h"

namespace loom::kernels {
namespace {

template <typename T>
__global__ void topk_kernel(T* values, std::int64_t* indices, const T* in, AxisSplit s, std::int64_t k,
                            bool largest) {
  const std::int64_t lines = s.outer * s.inner;
  const std::int64_t stride = std::int64_t(blockDim.x) * gridDim.x;
  for (std::int64_t line = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; line < lines; line += stride) {
    const std::int64_t o = line / s.inner, r = line % s.inner;
    const T* base = in + o * s.axis * s.inner + r;
    T prev{};
    std::int64_t prev_index = -1;
    for (std::int64_t j = 0; j < k; ++j) {
      std::int64_t best = -1;
      for (std::int64_t a = 0; a < s.axis; ++a) {
        const T v = base[a * s.inner];
        if (prev_index >= 0 && !topk_before(prev, prev_index, v, a, largest)) continue;  // already taken
        if (best < 0 || topk_before(v, a, base[best * s.inner], best, largest)) best = a;
      }
      prev = base[best * s.inner];
      prev_index = best;
      const std::int64_t at = (o * k + j) * s.inner + r;
      values[at] = prev;
      indices[at] = best;
    }
  }
}

}  // namespace

void topk_cuda(NDArray& values, NDArray& indices, const NDArray& x, std::int64_t k, std::int64_t dim,
               bool largest) {
  if (values.numel() == 0) return;
  cuda_select_device("topk", values.device().id);
  const NDArray src = x.contiguous();
  const AxisSplit s = split_around(x.shape(), wrap_axis("topk", dim, x.shape()));
  const unsigned blocks = cuda_grid_blocks(s.outer * s.inner, 256, values.device().id);
  visit_dtype(x.dtype(), "topk", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (!std::is_same_v<T, bool>) {
      topk_kernel<T><<<blocks, 256>>>(values.data<T>(), indices.data<std::int64_t>(), src.data<const T>(), s, k,
                                      largest);
    }
  });
  check_cuda_launch("topk");
}

}  // namespace loom::kernels
