// generated from opdefs/elementwise/add.yaml:1 — do not edit
#include "loom/ops/add.h"

#include "generated/kernels/add.h"
#include "runtime/dispatch/op_registry.h"
#include "runtime/dispatch/pointwise_call.h"

namespace loom::op {
namespace {

constexpr const char* kOp = "add";

NDArray run(const NDArray* out, const NDArray& x, const NDArray& y) {
  const DType dtype = promote_types(x.dtype(), y.dtype());
  check_op_dtype(kOp, dtype, {DType::kFloat32, DType::kFloat64, DType::kInt8, DType::kUInt8, DType::kInt32, DType::kInt64}, {DType::kFloat16, DType::kBFloat16});
  PointwiseCall call = prepare_pointwise(kOp, {{"x", &x}, {"y", &y}}, dtype, out);
  const kernels::AddFunctor f{};
  if (call.out.device().is_cpu()) {
    kernels::add_cpu(call, f);
  } else {
#if LOOM_WITH_CUDA
    kernels::add_cuda(call, f);
#else
    throw_without_cuda(kOp, call.out.device());
#endif
  }
  return call.out;
}

const bool registered = register_op({
    "add", "opdefs/elementwise/add.yaml:1", {"x", "y"}, {"float32", "float64", "float16", "bfloat16", "int8", "uint8", "int32", "int64"},
    {"pointwise"}, LOOM_WITH_CUDA != 0});

}  // namespace

NDArray add(const NDArray& x, const NDArray& y) {
  return run(nullptr, x, y);
}

NDArray& add_out(NDArray& out, const NDArray& x, const NDArray& y) {
  run(&out, x, y);
  return out;
}

}  // namespace loom::op
