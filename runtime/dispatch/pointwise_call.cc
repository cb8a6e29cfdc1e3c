#include "runtime/dispatch/pointwise_call.h"

#include <string>

#include "microkernel/base/error.h"

namespace loom {

kernels::StridedLayout PointwiseCall::layout() const {
  std::vector<Strides> strides;
  strides.reserve(inputs.size() + 1);
  strides.push_back(out.strides());
  for (const NDArray& in : inputs) {
    strides.push_back(broadcast_strides(in.shape(), in.strides(), out.shape()));
  }
  return kernels::make_strided_layout(out.shape(), std::move(strides));
}

PointwiseCall prepare_pointwise(std::string_view op, std::initializer_list<NamedInput> inputs,
                                DType compute_dtype, const NDArray* out) {
  PointwiseCall call;
  Shape shape;
  const NamedInput* first = nullptr;
  for (const NamedInput& in : inputs) {
    LOOM_CHECK(in.array->defined(), op, ": argument '", in.name, "' is an undefined NDArray");
    if (first == nullptr) {
      first = &in;
      shape = in.array->shape();
    } else {
      LOOM_CHECK(in.array->device() == first->array->device(), op,
                 ": all inputs must be on one device, but '", first->name, "' is on ",
                 first->array->device().str(), " and '", in.name, "' is on ",
                 in.array->device().str());
      shape = broadcast_shapes(op, shape, in.array->shape());
    }
  }
  const Device device = first->array->device();
  for (const NamedInput& in : inputs) call.inputs.push_back(in.array->astype(compute_dtype));

  if (out == nullptr) {
    call.out = NDArray::empty(shape, compute_dtype, device);
    return call;
  }
  LOOM_CHECK(out->defined(), op, ": out= is an undefined NDArray");
  LOOM_CHECK(out->shape() == shape, op, ": out= has shape ", shape_str(out->shape()),
             " but the result has shape ", shape_str(shape));
  LOOM_CHECK_KIND(out->dtype() == compute_dtype, ErrorKind::kType, op, ": out= has dtype ",
                  dtype_name(out->dtype()), " but the result has dtype ",
                  dtype_name(compute_dtype));
  LOOM_CHECK(out->device() == device, op, ": out= is on ", out->device().str(),
             " but the inputs are on ", device.str());
  call.out = *out;
  return call;
}

void check_op_dtype(std::string_view op, DType dtype, std::initializer_list<DType> built,
                    std::initializer_list<DType> pending) {
  for (DType d : built) {
    if (d == dtype) return;
  }
  std::string supported;
  for (DType d : built) supported += (supported.empty() ? "" : ", ") + std::string(dtype_name(d));
  for (DType d : pending) {
    LOOM_CHECK_KIND(d != dtype, ErrorKind::kNotImplemented, op, ": ", dtype_name(dtype),
                    " is declared but its kernels are not generated yet (built: ", supported, ")");
  }
  throw_unsupported_dtype(op, dtype, supported);
}

void throw_without_cuda(std::string_view op, Device device) {
  LOOM_THROW(ErrorKind::kNotImplemented, op, ": cannot run on ", device.str(),
             ": this loom was built without CUDA");
}

void throw_unsupported_dtype(std::string_view op, DType dtype, std::string_view supported) {
  LOOM_THROW(ErrorKind::kType, op, ": no kernel for dtype ", dtype_name(dtype),
             " (supported: ", supported, ")");
}

}  // namespace loom
