// generated from opdefs/elementwise/add.yaml:1 — do not edit
#include "generated/kernels/add.h"
#include "runtime/kernels/cpu/pointwise_cpu.h"

namespace loom::kernels {

void add_cpu(const PointwiseCall& call, const AddFunctor& f) {
  switch (call.out.dtype()) {
    case DType::kFloat32: return run_pointwise_cpu<float, 2>(f, call);
    case DType::kFloat64: return run_pointwise_cpu<double, 2>(f, call);
    case DType::kInt8: return run_pointwise_cpu<std::int8_t, 2>(f, call);
    case DType::kUInt8: return run_pointwise_cpu<std::uint8_t, 2>(f, call);
    case DType::kInt32: return run_pointwise_cpu<std::int32_t, 2>(f, call);
    case DType::kInt64: return run_pointwise_cpu<std::int64_t, 2>(f, call);
    default: throw_unsupported_dtype("add", call.out.dtype(), "float32, float64, int8, uint8, int32, int64");
  }
}

}  // namespace loom::kernels
