#include "runtime/dispatch/impl_call.h"

#include <limits>
#include <string>

#include "loom/ops/copy.h"
#include "loom/ops/ne.h"
#include "loom/ops/where.h"
#include "microkernel/base/error.h"
#include "runtime/autograd/functions.h"
#include "runtime/dispatch/launch.h"

namespace loom {

ImplCall prepare_impl(std::string_view op, std::initializer_list<NamedInput> inputs, DType dtype) {
  ImplCall call;
  check_inputs(op, inputs);
  call.inputs.reserve(inputs.size());
  for (const NamedInput& in : inputs) {
    if (!in.array->defined()) {  // an optional input not given: the kernel sees an undefined array
      call.inputs.emplace_back();
      continue;
    }
    if (!in.index) {
      call.inputs.push_back(in.array->dtype() == dtype ? in.array->without_autograd()
                                                       : in.array->astype(dtype).without_autograd());
      continue;
    }
    // Integer indices, or floating arrays holding them (lm.nd.array([0, 2])
    // is float32, as in MXNet, whose take casts float indices the same way:
    // toward zero).
    const DType d = in.array->dtype();
    LOOM_CHECK_KIND(d != DType::kBool, ErrorKind::kType, op, ": ", in.name,
                    " must be an array of integer indices, got ", dtype_name(d), " ", shape_str(in.array->shape()));
    NDArray indices = in.array->without_autograd();
    if (is_floating(d)) {
      // The cast turns NaN into 0, a valid index: a NaN label would pick
      // class 0 silently. As -inf it saturates to the lowest int64, which
      // the op's range check rejects (naming NaN as a likely cause).
      indices = op::where(op::ne(indices, indices), autograd::scalar_like(-std::numeric_limits<double>::infinity(), indices),
                          indices);
    }
    call.inputs.push_back(indices.astype(DType::kInt64));
  }
  return call;
}

DType promote_list(std::string_view op, std::string_view name, const std::vector<NDArray>& arrays) {
  LOOM_CHECK(!arrays.empty(), op, ": '", name, "' needs at least one array, got none");
  for (std::size_t i = 0; i < arrays.size(); ++i) {
    LOOM_CHECK(arrays[i].defined(), op, ": ", name, "[", i, "] is an undefined NDArray");
  }
  DType dtype = arrays[0].dtype();
  for (const NDArray& a : arrays) dtype = promote_types(dtype, a.dtype());
  return dtype;
}

ImplCall prepare_impl_list(std::string_view op, std::string_view name, const std::vector<NDArray>& arrays,
                           DType dtype) {
  promote_list(op, name, arrays);  // non-empty, defined
  for (std::size_t i = 1; i < arrays.size(); ++i) {
    LOOM_CHECK(arrays[i].device() == arrays[0].device(), op, ": ", name, "[", i, "] is on ",
               arrays[i].device().str(), " but ", name, "[0] is on ", arrays[0].device().str(),
               " (move them to one device first)");
  }
  ImplCall call;
  for (const NDArray& a : arrays) call.inputs.push_back(a.astype(dtype).without_autograd());
  return call;
}

namespace {

// The op's output memory; a failure (out of memory, a byte count past 64
// bits) names the op, which NDArray::empty cannot.
NDArray output_array(std::string_view op, const Shape& shape, DType dtype, Device device) {
  try {
    return NDArray::empty(shape, dtype, device);
  } catch (const Error& e) {
    throw Error(e.kind(), std::string(op) + ": " + e.what());
  }
}

}  // namespace

void ImplCall::allocate(std::string_view op, const Shape& shape, DType dtype, const NDArray* caller_out,
                        std::optional<DType> result, int writable_input) {
  const Device device = inputs.at(0).device();
  result_dtype = result.value_or(dtype);
  if (caller_out == nullptr) {
    out = output_array(op, shape, dtype, device);
    return;
  }
  check_out_array(op, *caller_out, shape, result_dtype, device);
  note_overwrite(*caller_out);
  bool shares = false;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const NDArray& in = inputs[i];
    if (!in.defined() || in.storage() != caller_out->storage()) continue;
    // The input the kernel may write over, when out= is that very array
    // (the in-place variant, or a graph plan placing the result over an
    // input that dies there), needs no stand-in.
    const bool same_array = static_cast<int>(i) == writable_input && in.raw_data() == caller_out->raw_data() &&
                            in.shape() == caller_out->shape() && in.dtype() == caller_out->dtype() &&
                            in.is_contiguous() && caller_out->is_contiguous();
    shares |= !same_array;
  }
  if (shares || !caller_out->is_contiguous() || dtype != result_dtype) {
    // Kernels get a dense, private output; the result is copied over at the end.
    out = output_array(op, shape, dtype, device);
    user_out = caller_out->without_autograd();
  } else {
    out = caller_out->without_autograd();
  }
}

NDArray ImplCall::finish() {
  const NDArray result = out.dtype() == result_dtype ? out : out.astype(result_dtype);  // one rounding
  if (!user_out.defined()) return result;
  op::copy_out(user_out, result);
  return user_out;
}

void throw_without_option(std::string_view op, std::string_view missing, Device device) {
  LOOM_THROW(ErrorKind::kNotImplemented, op, ": cannot run on ", device.str(), ": this loom was built without ",
             missing, " (re-run configure.py after installing it)");
}

void check_mutated(std::string_view op, std::string_view name, const NDArray& array, DType compute, Device device) {
  if (!array.defined()) return;
  LOOM_CHECK_KIND(array.device() == device, ErrorKind::kValue, op, ": ", name, " is on ", array.device().str(),
                  " but the inputs are on ", device.str());
  LOOM_CHECK_KIND(array.dtype() == compute, ErrorKind::kType, op, ": ", name, " (written in place) must be ",
                  dtype_name(compute), ", got ", array.describe());
  LOOM_CHECK(array.is_contiguous(), op, ": ", name, " (written in place) must be contiguous, got a strided view ",
             array.describe());
}

NDArray output_or_empty(std::string_view op, const std::vector<NDArray>* into, std::size_t k, const Shape& shape,
                        DType dtype, Device device) {
  if (into == nullptr || k >= into->size() || !(*into)[k].defined()) return NDArray::empty(shape, dtype, device);
  const NDArray& out = (*into)[k];
  check_out_array(op, out, shape, dtype, device);
  LOOM_CHECK(out.is_contiguous(), op, ": output ", k, " must be contiguous, got a strided view ", out.describe());
  return out;
}

}  // namespace loom
