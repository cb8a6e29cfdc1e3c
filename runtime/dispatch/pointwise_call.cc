#include "runtime/dispatch/pointwise_call.h"

#include <algorithm>
#include <cstdlib>
#include <string>
#include <utility>

#include "microkernel/base/error.h"
#include "runtime/dispatch/launch.h"

namespace loom {
namespace {

// [first, last] byte offsets into the storage that a view can touch.
std::pair<std::int64_t, std::int64_t> byte_range(const NDArray& a) {
  const ElementRange r = element_range(a.shape(), a.strides(), a.offset());
  const auto item = static_cast<std::int64_t>(dtype_size(a.dtype()));
  return {r.lowest * item, r.highest * item + item - 1};
}

// True when two distinct indices of `a` address the same element: writing
// through such a view would race and lose values.
bool overlaps_itself(const NDArray& a) {
  std::vector<std::pair<std::int64_t, std::int64_t>> dims;  // (|stride|, size)
  for (int d = 0; d < a.ndim(); ++d) {
    if (a.shape()[d] > 1) dims.emplace_back(std::abs(a.strides()[d]), a.shape()[d]);
  }
  std::sort(dims.begin(), dims.end());
  std::int64_t span = 0;  // furthest reach of the smaller-stride dims
  for (auto [stride, size] : dims) {
    if (stride <= span) return true;
    span += stride * (size - 1);
  }
  return false;
}

}  // namespace

kernels::StridedLayout PointwiseCall::layout() const {
  std::vector<Strides> strides;
  strides.reserve(inputs.size() + 1);
  strides.push_back(out.strides());
  for (const NDArray& in : inputs) {
    strides.push_back(broadcast_strides(in.shape(), in.strides(), out.shape()));
  }
  return kernels::make_strided_layout(out.shape(), std::move(strides));
}

Device check_inputs(std::string_view op, std::initializer_list<NamedInput> inputs) {
  const NamedInput* first = nullptr;
  for (const NamedInput& in : inputs) {
    if (!in.array->defined() && in.optional && first != nullptr) continue;  // not given
    LOOM_CHECK(in.array->defined(), op, ": argument '", in.name, "' is an undefined NDArray");
    if (first == nullptr) first = &in;
    LOOM_CHECK(in.array->device() == first->array->device(), op,
               ": all inputs must be on one device, but '", first->name, "' is on ",
               first->array->device().str(), " and '", in.name, "' is on ", in.array->device().str());
  }
  return first->array->device();
}

PointwiseCall prepare_pointwise(std::string_view op, std::initializer_list<NamedInput> inputs,
                                DType compute_dtype, const NDArray* out, DType result_dtype) {
  PointwiseCall call;
  const Device device = check_inputs(op, inputs);
  Shape shape = inputs.begin()->array->shape();
  for (const NamedInput& in : inputs) {
    if (in.array->shape() != shape) shape = broadcast_shapes(op, shape, in.array->shape());
  }
  // Without autograd state: the kernel owns these copies, possibly on an
  // engine worker, which must never free a graph (it may hold Python objects).
  // (Same dtype, the common case: one copy, not astype's plus without_autograd's.)
  call.inputs.reserve(inputs.size());
  for (const NamedInput& in : inputs) {
    call.inputs.push_back(in.array->dtype() == compute_dtype ? in.array->without_autograd()
                                                             : in.array->astype(compute_dtype).without_autograd());
  }

  if (out == nullptr) {
    call.out = NDArray::empty(shape, result_dtype, device);
    return call;
  }
  check_out_array(op, *out, shape, result_dtype, device);
  call.out = out->without_autograd();
  note_overwrite(*out);  // arrays autograd saved from this storage are now stale
  // An input that shares memory with out= is read before it is overwritten
  // only when it is exactly the same view (elementwise, same position). Any
  // other overlap (e.g. out=a.T with input a) reads a private copy instead.
  const auto out_range = byte_range(*out);
  for (NDArray& in : call.inputs) {
    if (in.storage() != out->storage() || in.numel() == 0 || out->numel() == 0) continue;
    const bool same_view = in.offset() == out->offset() && in.shape() == out->shape() &&
                           in.strides() == out->strides() && in.dtype() == out->dtype();
    const auto in_range = byte_range(in);
    const bool disjoint = in_range.second < out_range.first || out_range.second < in_range.first;
    if (!same_view && !disjoint) in = in.to(in.device());
  }
  return call;
}

void check_out_array(std::string_view op, const NDArray& out, const Shape& shape, DType dtype,
                     Device device) {
  LOOM_CHECK(out.defined(), op, ": out= is an undefined NDArray");
  LOOM_CHECK(out.shape() == shape, op, ": out= has shape ", shape_str(out.shape()),
             " but the result has shape ", shape_str(shape));
  LOOM_CHECK_KIND(out.dtype() == dtype, ErrorKind::kType, op, ": out= has dtype ",
                  dtype_name(out.dtype()), " but the result has dtype ", dtype_name(dtype));
  LOOM_CHECK(out.device() == device, op, ": out= is on ", out.device().str(),
             " but the inputs are on ", device.str());
  LOOM_CHECK(out.numel() == 0 || !overlaps_itself(out), op, ": out= ", out.describe(),
             " addresses some elements more than once (a broadcast or overlapping view)");
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
