// gather and scatter_add on a GPU (the CPU half and the checks of shapes are
// in runtime/kernels/gather.cc): one thread per index element; scatter_add
// adds with atomicAdd (float32, float64, int32, int64), so repeated targets
// accumulate, in an unspecified order. Bad index values are recorded in a
// device flag and raised after the kernel, as take does.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "generated/kernels/gather.h"
#include "generated/kernels/scatter_add.h"
#include "microkernel/base/error.h"
#include "microkernel/storage/storage.h"
#include "runtime/core/dtype_visit.h"
#include "runtime/kernels/cuda/index_flag.cuh"
#include "runtime/kernels/cuda/pointwise_cuda.cuh"
#include "runtime/kernels/gather_layout.h"
#include "runtime/kernels/indexing.h"

namespace loom::kernels {
namespace {

template <typename T>
__global__ void gather_kernel(T* out, const T* x, const std::int64_t* idx, GatherLayout g, long long* flag) {
  const std::int64_t stride = std::int64_t(blockDim.x) * gridDim.x;
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < g.count; i += stride) {
    std::int64_t a;
    if (resolve_index(idx[i], g.axis, true, flag, a)) out[i] = x[g.source(i, idx[i]).x];
  }
}

template <typename T>
__global__ void scatter_add_kernel(T* out, const T* src, const std::int64_t* idx, GatherLayout g, long long* flag) {
  const std::int64_t stride = std::int64_t(blockDim.x) * gridDim.x;
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < g.count; i += stride) {
    std::int64_t a;
    if (!resolve_index(idx[i], g.axis, true, flag, a)) continue;
    const GatherOffsets o = g.source(i, idx[i]);
    atomicAdd(&out[o.x], src[o.src]);
  }
}

// Runs `launch(flag, blocks)` with a zeroed device flag, then raises the
// first bad index it recorded.
template <typename Launch>
void with_index_check(const char* op, Device device, const GatherLayout& g, Launch launch) {
  cuda_select_device(op, device.id);
  DeviceIndexFlag bad(device);
  launch(bad.flag, cuda_grid_blocks(g.count, 256, device.id));
  std::int64_t v;
  if (bad.bad(op, v)) throw_bad_index(op, v, g.dim, g.axis);
}

}  // namespace

void gather_cuda(NDArray& out, const NDArray& x, const NDArray& index, std::int64_t dim) {
  const GatherLayout g = gather_layout("gather", x, index, dim, nullptr);
  if (g.count == 0) return;
  const NDArray xc = x.contiguous(), ic = index.contiguous();
  with_index_check("gather", out.device(), g, [&](long long* flag, unsigned blocks) {
    visit_dtype(x.dtype(), "gather", [&](auto tag) {
      using T = typename decltype(tag)::type;
      gather_kernel<T><<<blocks, 256>>>(out.data<T>(), xc.data<const T>(), ic.data<const std::int64_t>(), g, flag);
    });
  });
}

void scatter_add_cuda(NDArray& out, const NDArray& x, const NDArray& index, const NDArray& src, std::int64_t dim) {
  const GatherLayout g = gather_layout("scatter_add", x, index, dim, &src);
  const NDArray xc = x.contiguous(), ic = index.contiguous(), sc = src.contiguous();
  // out may be x itself (scatter_add_, or a plan writing over a dying x).
  // A bad index is found only as the kernel runs, so in place x may keep
  // the additions made before it (PyTorch's device-side check alike).
  if (out.raw_data() != xc.raw_data()) {
    storage::copy(out.raw_data(), out.device(), xc.raw_data(), xc.device(), out.nbytes());
  }
  if (g.count == 0) return;
  with_index_check("scatter_add", out.device(), g, [&](long long* flag, unsigned blocks) {
    const std::int64_t* idx = ic.data<const std::int64_t>();
    switch (out.dtype()) {  // the dtypes CUDA has an atomicAdd for
      case DType::kFloat32: scatter_add_kernel<<<blocks, 256>>>(out.data<float>(), sc.data<const float>(), idx, g, flag); break;
      case DType::kFloat64: scatter_add_kernel<<<blocks, 256>>>(out.data<double>(), sc.data<const double>(), idx, g, flag); break;
      case DType::kInt32: scatter_add_kernel<<<blocks, 256>>>(out.data<int>(), sc.data<const int>(), idx, g, flag); break;
      case DType::kInt64:
        scatter_add_kernel<<<blocks, 256>>>(reinterpret_cast<unsigned long long*>(out.data<std::int64_t>()),
                                            reinterpret_cast<const unsigned long long*>(sc.data<const std::int64_t>()),
                                            idx, g, flag);
        break;
      default: LOOM_THROW(ErrorKind::kType, "scatter_add: no CUDA kernel for dtype ", dtype_name(out.dtype()));
    }
  });
}

}  // namespace loom::kernels
