#include "runtime/dispatch/reduce_call.h"

#include <algorithm>
#include <string>

#include "microkernel/base/error.h"
#include "runtime/dispatch/launch.h"

namespace loom {
namespace {

std::string dims_str(const std::vector<std::int64_t>& dims) {
  std::string s = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

// Merges adjacent reduced dims that are dense across each other, so the
// innermost loop is as long as possible.
void merge_inner(Shape& shape, Strides& strides) {
  Shape merged_shape;
  Strides merged_strides;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 1) continue;
    if (!merged_shape.empty() && merged_strides.back() == strides[i] * shape[i]) {
      merged_shape.back() *= shape[i];
      merged_strides.back() = strides[i];
    } else {
      merged_shape.push_back(shape[i]);
      merged_strides.push_back(strides[i]);
    }
  }
  if (merged_shape.empty()) {
    merged_shape = {1};
    merged_strides = {0};
  }
  shape = std::move(merged_shape);
  strides = std::move(merged_strides);
}

}  // namespace

std::vector<bool> reduced_dims(std::string_view op, const Shape& shape, const ReduceDims& dims) {
  const int rank = static_cast<int>(shape.size());
  std::vector<bool> reduced(rank, !dims.has_value());
  if (dims) {
    for (std::int64_t d : *dims) {
      LOOM_CHECK_KIND(d >= -rank && d < rank,
                      ErrorKind::kIndex, op, ": dim ", d, " is out of range for an array of shape ",
                      shape_str(shape), " (rank ", rank, ")");
      const std::int64_t norm = d < 0 ? d + rank : d;
      LOOM_CHECK(!reduced[norm], op, ": dim ", d, " is repeated in dims ", dims_str(*dims));
      reduced[norm] = true;
    }
  }
  return reduced;
}

ReduceCall prepare_reduce(std::string_view op, const NDArray& in, const ReduceDims& dims,
                          bool keepdim, DType result_dtype, const NDArray* out, bool has_identity) {
  LOOM_CHECK(in.defined(), op, ": argument 'x' is an undefined NDArray");
  const int rank = in.ndim();
  const std::vector<bool> reduced = reduced_dims(op, in.shape(), dims);

  ReduceCall call;
  Shape result_shape, inner_shape;
  Strides inner_strides;
  std::vector<int> kept;
  for (int d = 0; d < rank; ++d) {
    if (reduced[d]) {
      LOOM_CHECK(has_identity || in.shape()[d] != 0, op, ": cannot reduce over dim ", d,
                 " of shape ", shape_str(in.shape()), ": it has size 0 and ", op,
                 " has no identity");
      inner_shape.push_back(in.shape()[d]);
      inner_strides.push_back(in.strides()[d]);
      if (keepdim) result_shape.push_back(1);
    } else {
      kept.push_back(d);
      result_shape.push_back(in.shape()[d]);
    }
  }
  // A 0-d input reduces to itself; max/min of it are defined.
  call.in = in.without_autograd();  // the kernel owns it; see prepare_pointwise
  if (out == nullptr) {
    call.out = NDArray::empty(result_shape, result_dtype, in.device());
  } else {
    LOOM_CHECK(out->defined(), op, ": out= is an undefined NDArray");
    LOOM_CHECK(out->shape() == result_shape, op, ": out= has shape ", shape_str(out->shape()),
               " but the result has shape ", shape_str(result_shape));
    LOOM_CHECK_KIND(out->dtype() == result_dtype, ErrorKind::kType, op, ": out= has dtype ",
                    dtype_name(out->dtype()), " but the result has dtype ", dtype_name(result_dtype));
    LOOM_CHECK(out->device() == in.device(), op, ": out= is on ", out->device().str(),
               " but the input is on ", in.device().str());
    call.out = out->without_autograd();
    note_overwrite(*out);  // arrays autograd saved from this storage are now stale
    // Reading the input while writing an overlapping out= would mix old and
    // new values; reduce a private copy instead.
    if (out->storage() == in.storage()) call.in = in.to(in.device());
  }
  // Output strides of the kept dims: skip the size-1 dims keepdim inserted.
  Strides out_strides;
  for (std::size_t i = 0, k = 0; i < result_shape.size(); ++i) {
    const int source = keepdim ? static_cast<int>(i) : kept[k];
    if (keepdim && reduced[source]) continue;
    out_strides.push_back(call.out.strides()[i]);
    ++k;
  }
  for (std::size_t k = 0; k < kept.size(); ++k) {
    call.outer_shape.push_back(in.shape()[kept[k]]);
    call.outer_in_strides.push_back(call.in.strides()[kept[k]]);
    call.outer_out_strides.push_back(out_strides[k]);
  }
  // Strides of the reduced dims come from call.in (it may be a private copy).
  inner_strides.clear();
  for (int d = 0; d < rank; ++d)
    if (reduced[d]) inner_strides.push_back(call.in.strides()[d]);
  merge_inner(inner_shape, inner_strides);
  call.inner_shape = std::move(inner_shape);
  call.inner_strides = std::move(inner_strides);
  return call;
}

}  // namespace loom
