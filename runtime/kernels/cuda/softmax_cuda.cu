// softmax and log_softmax on a GPU: the CPU kernel's three passes
// (runtime/kernels/softmax.cc), one thread per slice along dim. Simple and
// exact; a block-per-row kernel with shared-memory reductions is the next
// step for long rows.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "generated/kernels/log_softmax.h"
#include "generated/kernels/softmax.h"
#include "microkernel/base/error.h"
#include "runtime/kernels/cuda/pointwise_cuda.cuh"
#include "runtime/kernels/indexing.h"

namespace loom::kernels {
namespace {

template <typename T, bool kLog>
__global__ void softmax_kernel(T* out, const T* in, AxisSplit s) {
  const std::int64_t lines = s.outer * s.inner;
  const std::int64_t stride = std::int64_t(blockDim.x) * gridDim.x;
  for (std::int64_t line = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; line < lines; line += stride) {
    const std::int64_t r = line / s.inner, k = line % s.inner;
    const T* x = in + r * s.axis * s.inner + k;
    T* o = out + r * s.axis * s.inner + k;
    T mx = -INFINITY;
    for (std::int64_t a = 0; a < s.axis; ++a) mx = max(mx, x[a * s.inner]);
    T sum = T(0);
    for (std::int64_t a = 0; a < s.axis; ++a) sum += exp(x[a * s.inner] - mx);
    for (std::int64_t a = 0; a < s.axis; ++a) {
      const T v = x[a * s.inner] - mx;
      o[a * s.inner] = kLog ? v - log(sum) : exp(v) / sum;
    }
  }
}

template <bool kLog>
void launch(NDArray& out, const NDArray& x, std::int64_t dim) {
  const char* op = kLog ? "log_softmax" : "softmax";
  const AxisSplit s = split_around(x.shape(), wrap_axis(op, dim, x.shape()));
  if (x.numel() == 0) return;
  cuda_select_device(op, out.device().id);
  const NDArray src = x.contiguous();
  const unsigned blocks = cuda_grid_blocks(s.outer * s.inner, 256, out.device().id);
  switch (x.dtype()) {
    case DType::kFloat32: softmax_kernel<float, kLog><<<blocks, 256>>>(out.data<float>(), src.data<const float>(), s); break;
    case DType::kFloat64: softmax_kernel<double, kLog><<<blocks, 256>>>(out.data<double>(), src.data<const double>(), s); break;
    default: LOOM_THROW(ErrorKind::kType, op, ": no CUDA kernel for dtype ", dtype_name(x.dtype()));
  }
  check_cuda_launch(op);
}

}  // namespace

void softmax_cuda(NDArray& out, const NDArray& x, std::int64_t dim) { launch<false>(out, x, dim); }
void log_softmax_cuda(NDArray& out, const NDArray& x, std::int64_t dim) { launch<true>(out, x, dim); }

}  // namespace loom::kernels
