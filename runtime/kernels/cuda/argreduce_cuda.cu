// argmax / argmin on a GPU (opdefs/argreduce.yaml), with the CPU's rules:
// ties keep the first position and a NaN beats every number (the first
// NaN wins). Reducing the last dim (a classifier's logits, the common case)
// takes one warp per line, reading coalesced and combining lanes by
// shuffles; any other dim takes one thread per output, where neighbouring
// threads read neighbouring elements.
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "generated/kernels/argmax.h"
#include "generated/kernels/argmin.h"
#include "microkernel/base/error.h"
#include "runtime/core/dtype_visit.h"
#include "runtime/kernels/cuda/pointwise_cuda.cuh"
#include "runtime/kernels/indexing.h"

namespace loom::kernels {
namespace {

template <typename T>
__device__ bool nan_of(T v) {
  if constexpr (std::is_floating_point_v<T>) {
    return v != v;
  } else {
    return false;
  }
}

// True when (a, ia) ranks before (b, ib): NaN first, then the extreme, then
// the lower position.
template <bool kMax, typename T>
__device__ bool before(T a, std::int64_t ia, T b, std::int64_t ib) {
  const bool na = nan_of(a), nb = nan_of(b);
  if (na || nb) return na && (!nb || ia < ib);
  if (a == b) return ia < ib;
  return kMax ? a > b : a < b;
}

// Values compare and cross lanes as V: the element type, or int for the
// one-byte types (a warp shuffle moves 4 or 8 bytes).
template <typename T>
using Wide = std::conditional_t<(sizeof(T) < 4), int, T>;

template <bool kMax, typename T>
__global__ void argreduce_rows(std::int64_t* out, const T* in, std::int64_t rows, std::int64_t n) {
  using V = Wide<T>;
  const int lane = threadIdx.x % 32;
  const std::int64_t warps = std::int64_t(gridDim.x) * (blockDim.x / 32);
  // every lane of a warp takes the same rows, so the shuffles below see all 32
  for (std::int64_t row = (blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x) / 32; row < rows; row += warps) {
    const T* p = in + row * n;
    V best = static_cast<V>(p[0]);
    std::int64_t at = 0;
    for (std::int64_t k = lane; k < n; k += 32) {
      const V v = static_cast<V>(p[k]);
      if (before<kMax>(v, k, best, at)) {
        best = v;
        at = k;
      }
    }
    for (int offset = 16; offset > 0; offset /= 2) {
      const V other = __shfl_down_sync(0xffffffffu, best, offset);
      const std::int64_t other_at = __shfl_down_sync(0xffffffffu, at, offset);
      if (before<kMax>(other, other_at, best, at)) {
        best = other;
        at = other_at;
      }
    }
    if (lane == 0) out[row] = at;
  }
}

template <bool kMax, typename T>
__global__ void argreduce_strided(std::int64_t* out, const T* in, AxisSplit s) {
  const std::int64_t total = s.outer * s.inner;
  const std::int64_t stride = std::int64_t(blockDim.x) * gridDim.x;
  for (std::int64_t o = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; o < total; o += stride) {
    const T* p = in + (o / s.inner) * s.axis * s.inner + o % s.inner;
    T best = p[0];
    std::int64_t at = 0;
    for (std::int64_t k = 1; k < s.axis && !nan_of(best); ++k) {
      if (before<kMax>(p[k * s.inner], k, best, at)) {
        best = p[k * s.inner];
        at = k;
      }
    }
    out[o] = at;
  }
}

template <bool kMax>
void argreduce(const char* op, NDArray& out, const NDArray& x, std::int64_t dim) {
  cuda_select_device(op, out.device().id);
  if (x.ndim() == 0) {  // one element: position 0
    LOOM_CHECK(cudaMemsetAsync(out.raw_data(), 0, sizeof(std::int64_t)) == cudaSuccess, op,
               ": cudaMemsetAsync failed on ", out.device().str());
    return;
  }
  const NDArray src = x.contiguous();
  const AxisSplit s = split_around(x.shape(), wrap_axis(op, dim, x.shape()));
  if (s.outer * s.inner == 0) return;
  std::int64_t* result = out.data<std::int64_t>();
  visit_dtype(x.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* p = src.data<const T>();
    if (s.inner == 1) {
      const unsigned blocks = cuda_grid_blocks(s.outer * 32, 256, out.device().id);
      argreduce_rows<kMax, T><<<blocks, 256>>>(result, p, s.outer, s.axis);
    } else {
      const unsigned blocks = cuda_grid_blocks(s.outer * s.inner, 256, out.device().id);
      argreduce_strided<kMax, T><<<blocks, 256>>>(result, p, s);
    }
  });
  check_cuda_launch(op);
}

}  // namespace

void argmax_cuda(NDArray& out, const NDArray& x, std::int64_t dim, bool) { argreduce<true>("argmax", out, x, dim); }
void argmin_cuda(NDArray& out, const NDArray& x, std::int64_t dim, bool) { argreduce<false>("argmin", out, x, dim); }

}  // namespace loom::kernels
