// softmax and log_softmax on a GPU: the CPU kernel's three passes
// (runtime/kernels/softmax.cc: max, sum of exp, write). Along the last dim
// (rows contiguous, the usual case) one warp takes a row: its lanes read
// neighbouring elements and combine the max and the sum by shuffles, and
// the row stays in cache between passes. Along another dim one thread
// takes a slice, and neighbouring threads read neighbouring elements.
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

template <typename T>
__device__ T warp_max(T v) {
  for (int offset = 16; offset > 0; offset /= 2) v = max(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

template <typename T>
__device__ T warp_sum(T v) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

template <typename T, bool kLog>
__global__ void softmax_rows(T* out, const T* in, std::int64_t rows, std::int64_t n) {
  const int lane = threadIdx.x % 32;
  const std::int64_t warps = std::int64_t(gridDim.x) * (blockDim.x / 32);
  // the lanes of a warp share their rows, so every shuffle sees all 32
  for (std::int64_t row = (blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x) / 32; row < rows; row += warps) {
    const T* x = in + row * n;
    T* o = out + row * n;
    T mx = -INFINITY;
    for (std::int64_t a = lane; a < n; a += 32) mx = max(mx, x[a]);
    mx = warp_max(mx);
    T sum = T(0);
    for (std::int64_t a = lane; a < n; a += 32) sum += exp(x[a] - mx);
    sum = warp_sum(sum);
    const T log_sum = log(sum);
    for (std::int64_t a = lane; a < n; a += 32) {
      const T v = x[a] - mx;
      o[a] = kLog ? v - log_sum : exp(v) / sum;
    }
  }
}

template <typename T, bool kLog>
void run(T* out, const T* in, const AxisSplit& s, int device) {
  if (s.inner == 1) {
    softmax_rows<T, kLog><<<cuda_grid_blocks(s.outer * 32, 256, device), 256>>>(out, in, s.outer, s.axis);
  } else {
    softmax_kernel<T, kLog><<<cuda_grid_blocks(s.outer * s.inner, 256, device), 256>>>(out, in, s);
  }
}

template <bool kLog>
void launch(NDArray& out, const NDArray& x, std::int64_t dim) {
  const char* op = kLog ? "log_softmax" : "softmax";
  const AxisSplit s = split_around(x.shape(), wrap_axis(op, dim, x.shape()));
  if (x.numel() == 0) return;
  cuda_select_device(op, out.device().id);
  const NDArray src = x.contiguous();
  const int device = out.device().id;
  switch (x.dtype()) {
    case DType::kFloat32: run<float, kLog>(out.data<float>(), src.data<const float>(), s, device); break;
    case DType::kFloat64: run<double, kLog>(out.data<double>(), src.data<const double>(), s, device); break;
    default: LOOM_THROW(ErrorKind::kType, op, ": no CUDA kernel for dtype ", dtype_name(x.dtype()));
  }
  check_cuda_launch(op);
}

}  // namespace

void softmax_cuda(NDArray& out, const NDArray& x, std::int64_t dim) { launch<false>(out, x, dim); }
void log_softmax_cuda(NDArray& out, const NDArray& x, std::int64_t dim) { launch<true>(out, x, dim); }

}  // namespace loom::kernels
