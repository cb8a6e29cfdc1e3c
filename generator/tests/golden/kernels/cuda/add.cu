// generated from opdefs/elementwise/add.yaml:1 — do not edit
#include "generated/kernels/add.h"
#include "runtime/kernels/cuda/pointwise_cuda.cuh"

namespace loom::kernels {

void add_cuda(const PointwiseCall& call, const AddFunctor& f) {
  switch (call.out.dtype()) {
    case DType::kFloat32: return run_pointwise_cuda<float, 2>("add", f, call);
    case DType::kFloat64: return run_pointwise_cuda<double, 2>("add", f, call);
    case DType::kInt8: return run_pointwise_cuda<std::int8_t, 2>("add", f, call);
    case DType::kUInt8: return run_pointwise_cuda<std::uint8_t, 2>("add", f, call);
    case DType::kInt32: return run_pointwise_cuda<std::int32_t, 2>("add", f, call);
    case DType::kInt64: return run_pointwise_cuda<std::int64_t, 2>("add", f, call);
    default: throw_unsupported_dtype("add", call.out.dtype(), "float32, float64, int8, uint8, int32, int64");
  }
}

}  // namespace loom::kernels
