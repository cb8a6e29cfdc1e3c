#include "runtime/dispatch/impl_call.h"

#include "loom/ops/copy.h"
#include "microkernel/base/error.h"

namespace loom {

ImplCall prepare_impl(std::string_view op, std::initializer_list<NamedInput> inputs, DType dtype) {
  ImplCall call;
  check_inputs(op, inputs);
  for (const NamedInput& in : inputs) call.inputs.push_back(in.array->astype(dtype).without_autograd());
  return call;
}

void ImplCall::allocate(std::string_view op, const Shape& shape, DType dtype, const NDArray* caller_out) {
  const Device device = inputs.at(0).device();
  if (caller_out == nullptr) {
    out = NDArray::empty(shape, dtype, device);
    return;
  }
  check_out_array(op, *caller_out, shape, dtype, device);
  caller_out->storage()->bump_version();
  bool shares = false;
  for (const NDArray& in : inputs) shares |= in.storage() == caller_out->storage();
  if (shares || !caller_out->is_contiguous()) {
    // Kernels get a dense, private output; the result is copied over at the end.
    out = NDArray::empty(shape, dtype, device);
    user_out = *caller_out;
  } else {
    out = *caller_out;
  }
}

NDArray ImplCall::finish() {
  if (!user_out.defined()) return out;
  op::copy_out(user_out, out);
  return user_out;
}

void throw_without_option(std::string_view op, std::string_view missing, Device device) {
  LOOM_THROW(ErrorKind::kNotImplemented, op, ": cannot run on ", device.str(), ": this loom was built without ",
             missing, " (re-run configure.py after installing it)");
}

}  // namespace loom
