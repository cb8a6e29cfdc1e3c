// generated from opdefs/elementwise/relu.yaml:1 — do not edit
#include "loom/ops/relu.h"

#include "generated/kernels/relu.h"
#include "runtime/dispatch/op_registry.h"
#include "runtime/dispatch/pointwise_call.h"

namespace loom::op {
namespace {

constexpr const char* kOp = "relu";

NDArray run(const NDArray* out, const NDArray& x) {
  const DType dtype = x.dtype();
  check_op_dtype(kOp, dtype, {DType::kFloat32, DType::kFloat64, DType::kInt32, DType::kInt64}, {DType::kFloat16, DType::kBFloat16});
  PointwiseCall call = prepare_pointwise(kOp, {{"x", &x}}, dtype, out);
  const kernels::ReluFunctor f{};
  if (call.out.device().is_cpu()) {
    kernels::relu_cpu(call, f);
  } else {
#if LOOM_WITH_CUDA
    kernels::relu_cuda(call, f);
#else
    throw_without_cuda(kOp, call.out.device());
#endif
  }
  return call.out;
}

const bool registered = register_op({
    "relu", "opdefs/elementwise/relu.yaml:1", {"x"}, {"float32", "float64", "float16", "bfloat16", "int32", "int64"},
    {"pointwise"}, LOOM_WITH_CUDA != 0});

}  // namespace

NDArray relu(const NDArray& x) {
  return run(nullptr, x);
}

NDArray& relu_out(NDArray& out, const NDArray& x) {
  run(&out, x);
  return out;
}

}  // namespace loom::op
