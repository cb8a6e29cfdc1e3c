#include "runtime/dispatch/generate_call.h"

#include "loom/ops/copy.h"
#include "microkernel/base/error.h"
#include "runtime/dispatch/launch.h"
#include "runtime/dispatch/pointwise_call.h"

namespace loom {

Shape generate_shape(std::string_view op, const char* name, const ReduceDims& dims) {
  LOOM_CHECK(dims.has_value(), op, ": ", name, " is required (a shape: an int or a list of ints)");
  for (std::size_t k = 0; k < dims->size(); ++k) {
    LOOM_CHECK((*dims)[k] >= 0, op, ": ", name, "[", k, "] is ", (*dims)[k], "; sizes must be >= 0");
  }
  return Shape(dims->begin(), dims->end());
}

NDArray GenerateCall::finish() const {
  if (!user_out.defined()) return out;
  NDArray target = user_out;
  op::copy_out(target, out);
  return user_out;
}

GenerateCall prepare_generate(std::string_view op, const Shape& shape, DType dtype, Device device,
                              const NDArray* caller_out) {
  GenerateCall call;
  if (caller_out == nullptr) {
    call.out = NDArray::empty(shape, dtype, device);
    return call;
  }
  check_out_array(op, *caller_out, shape, dtype, device);
  note_overwrite(*caller_out);
  if (caller_out->is_contiguous()) {
    call.out = caller_out->without_autograd();
  } else {
    call.out = NDArray::empty(shape, dtype, device);
    call.user_out = caller_out->without_autograd();
  }
  return call;
}

}  // namespace loom
