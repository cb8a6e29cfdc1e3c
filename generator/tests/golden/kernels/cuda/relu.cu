// generated from opdefs/elementwise/relu.yaml:1 — do not edit
#include "generated/kernels/relu.h"
#include "runtime/kernels/cuda/pointwise_cuda.cuh"

namespace loom::kernels {

void relu_cuda(const PointwiseCall& call, const ReluFunctor& f) {
  switch (call.out.dtype()) {
    case DType::kFloat32: return run_pointwise_cuda<float, 1>("relu", f, call);
    case DType::kFloat64: return run_pointwise_cuda<double, 1>("relu", f, call);
    case DType::kInt32: return run_pointwise_cuda<std::int32_t, 1>("relu", f, call);
    case DType::kInt64: return run_pointwise_cuda<std::int64_t, 1>("relu", f, call);
    default: throw_unsupported_dtype("relu", call.out.dtype(), "float32, float64, int32, int64");
  }
}

}  // namespace loom::kernels
