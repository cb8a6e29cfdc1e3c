// take, index_add and one_hot on a GPU (the CPU half and the shape rules are
// in runtime/kernels/indexing.cc). Indices are checked on the device: the
// first bad one is recorded in a small device buffer, read back after the
// kernel (which synchronises), and raised as the CPU's IndexError.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "generated/kernels/index_add.h"
#include "generated/kernels/one_hot.h"
#include "generated/kernels/take.h"
#include "microkernel/base/error.h"
#include "microkernel/storage/storage.h"
#include "runtime/core/dtype_visit.h"
#include "runtime/kernels/cuda/index_flag.cuh"
#include "runtime/kernels/cuda/pointwise_cuda.cuh"
#include "runtime/kernels/indexing.h"

namespace loom::kernels {
namespace {

// Element i of take's output (and of index_add's src), shaped (outer, n,
// inner): which index j it uses, and where that row sits in the indexed
// array (row o, inner position r).
struct Position {
  std::int64_t o, j, r;
};
__device__ inline Position decode(std::int64_t i, std::int64_t n, const AxisSplit& s) {
  return {i / (s.inner * n), (i / s.inner) % n, i % s.inner};
}

template <typename T>
__global__ void take_kernel(T* out, const T* x, const std::int64_t* idx, std::int64_t n, AxisSplit s,
                            std::int64_t total, long long* flag) {
  const std::int64_t stride = std::int64_t(blockDim.x) * gridDim.x;
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < total; i += stride) {
    const Position p = decode(i, n, s);
    std::int64_t a;
    if (resolve_index(idx[p.j], s.axis, true, flag, a)) out[i] = x[(p.o * s.axis + a) * s.inner + p.r];
  }
}

template <typename T>
__global__ void index_add_kernel(T* out, const T* src, const std::int64_t* idx, std::int64_t n, AxisSplit s,
                                 std::int64_t total, long long* flag) {
  const std::int64_t stride = std::int64_t(blockDim.x) * gridDim.x;
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < total; i += stride) {
    const Position p = decode(i, n, s);
    std::int64_t a;
    if (resolve_index(idx[p.j], s.axis, true, flag, a)) atomicAdd(&out[(p.o * s.axis + a) * s.inner + p.r], src[i]);
  }
}

__global__ void one_hot_kernel(float* out, const std::int64_t* idx, std::int64_t depth, std::int64_t total,
                               float on, float off, long long* flag) {
  const std::int64_t stride = std::int64_t(blockDim.x) * gridDim.x;
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < total; i += stride) {
    std::int64_t a;
    const bool ok = resolve_index(idx[i / depth], depth, false, flag, a);
    out[i] = ok && a == i % depth ? on : off;
  }
}

}  // namespace

void take_cuda(NDArray& out, const NDArray& x, const NDArray& indices, std::int64_t dim) {
  const std::int64_t d = wrap_axis("take", dim, x.shape());
  const AxisSplit s = split_around(x.shape(), d);
  const std::int64_t total = out.numel();
  if (total == 0) return;
  cuda_select_device("take", out.device().id);
  const NDArray src = x.contiguous(), idx = indices.contiguous();
  DeviceIndexFlag bad(out.device());
  visit_dtype(x.dtype(), "take", [&](auto tag) {
    using T = typename decltype(tag)::type;
    take_kernel<T><<<cuda_grid_blocks(total, 256, out.device().id), 256>>>(out.data<T>(), src.data<const T>(),
                                                                 idx.data<const std::int64_t>(), idx.numel(), s,
                                                                 total, bad.flag);
  });
  check_cuda_launch("take");
  std::int64_t v;
  if (bad.bad("take", v)) throw_bad_index("take", v, d, s.axis);
}

void index_add_cuda(NDArray& out, const NDArray& x, const NDArray& indices, const NDArray& src, std::int64_t dim) {
  const std::int64_t d = wrap_axis("index_add", dim, x.shape());
  const AxisSplit s = split_around(x.shape(), d);
  cuda_select_device("index_add", out.device().id);
  const NDArray base = x.contiguous(), add = src.contiguous(), idx = indices.contiguous();
  storage::copy(out.raw_data(), out.device(), base.raw_data(), base.device(), out.nbytes());
  const std::int64_t total = add.numel();
  if (total == 0) return;
  DeviceIndexFlag bad(out.device());
  auto launch = [&](auto* o, const auto* a) {
    index_add_kernel<<<cuda_grid_blocks(total, 256, out.device().id), 256>>>(o, a, idx.data<const std::int64_t>(),
                                                                  idx.numel(), s, total, bad.flag);
  };
  switch (out.dtype()) {  // the dtypes CUDA has an atomicAdd for
    case DType::kFloat32: launch(out.data<float>(), add.data<const float>()); break;
    case DType::kFloat64: launch(out.data<double>(), add.data<const double>()); break;
    case DType::kInt32: launch(out.data<int>(), add.data<const int>()); break;
    case DType::kInt64:
      launch(reinterpret_cast<unsigned long long*>(out.data<std::int64_t>()),
             reinterpret_cast<const unsigned long long*>(add.data<const std::int64_t>()));
      break;
    default: LOOM_THROW(ErrorKind::kType, "index_add: no CUDA kernel for dtype ", dtype_name(out.dtype()));
  }
  check_cuda_launch("index_add");
  std::int64_t v;
  if (bad.bad("index_add", v)) throw_bad_index("index_add", v, d, s.axis);
}

void one_hot_cuda(NDArray& out, const NDArray& indices, std::int64_t depth, double on_value, double off_value) {
  const std::int64_t total = out.numel();
  if (total == 0) return;
  cuda_select_device("one_hot", out.device().id);
  const NDArray idx = indices.contiguous();
  DeviceIndexFlag bad(out.device());
  one_hot_kernel<<<cuda_grid_blocks(total, 256, out.device().id), 256>>>(out.data<float>(), idx.data<const std::int64_t>(),
                                                              depth, total, static_cast<float>(on_value),
                                                              static_cast<float>(off_value), bad.flag);
  check_cuda_launch("one_hot");
  std::int64_t v;
  if (bad.bad("one_hot", v)) throw_bad_depth_index("one_hot", v, depth);
}

}  // namespace loom::kernels
