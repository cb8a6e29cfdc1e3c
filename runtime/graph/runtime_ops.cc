// Graph operators for the runtime's array functions that are not YAML ops
// (runtime/autograd/functions.h): reshape, flatten, broadcast_to, astype,
// and the constant a Python number becomes in `sym + 1`. Their schemas sit in the
// same table as the generated ones; their gradients are the functions' own.
#include <cmath>

#include "microkernel/base/error.h"
#include "runtime/autograd/functions.h"
#include "runtime/graph/op_schema.h"

namespace loom::graph {
namespace {

ArgSchema array(const char* name) { return ArgSchema{name, ArgKind::kTensor, AttrType::kInt, false, AttrValue(), false, ""}; }

ArgSchema attribute(const char* name, AttrType type, const char* doc, std::optional<AttrValue> fallback = std::nullopt) {
  return ArgSchema{name, ArgKind::kAttr, type, fallback.has_value(), fallback.value_or(AttrValue()), false, doc};
}

std::vector<NDArray> invoke_reshape(const OpCall& c) {
  const NDArray& x = c.tensor(0);
  Shape shape = c.dims_attr("shape").value_or(Shape{});
  for (std::size_t k = 0; k < shape.size(); ++k) {
    if (shape[k] != 0) continue;
    LOOM_CHECK(static_cast<int>(k) < x.ndim(), "reshape: 0 at position ", k, " copies that dim of the input, but ",
               x.describe(), " has only ", x.ndim());
    shape[k] = x.shape()[k];
  }
  return {autograd::reshape(x, shape)};
}

std::vector<NDArray> invoke_flatten(const OpCall& c) {
  const NDArray& x = c.tensor(0);
  LOOM_CHECK(x.ndim() >= 1, "flatten: expects at least one dim (the batch), got ", x.describe());
  Shape shape{x.shape()[0], 1};
  for (int d = 1; d < x.ndim(); ++d) shape[1] *= x.shape()[d];
  return {autograd::reshape(x, shape)};
}

std::vector<NDArray> invoke_broadcast_to(const OpCall& c) {
  return {autograd::broadcast_to(c.tensor(0), c.dims_attr("shape").value_or(Shape{}))};
}

// Python's rule for a number beside an array (runtime/python/loom/operators.py):
// it takes the array's dtype when of the same kind, else its kind's default.
std::vector<NDArray> invoke_scalar(const OpCall& c) {
  const NDArray& like = c.tensor(0);
  const double value = c.float_attr("value");
  DType dtype = like.dtype();
  if (c.bool_attr("integral")) {
    if (dtype == DType::kBool) dtype = DType::kInt64;
  } else if (!is_floating(dtype)) {
    dtype = DType::kFloat32;
  }
  return {autograd::full({}, value, dtype, like.device())};
}

std::vector<NDArray> invoke_astype(const OpCall& c) { return {autograd::astype(c.tensor(0), c.dtype_attr("dtype"))}; }

// reshape, flatten and broadcast_to keep their input's dtype: so says the
// schema, for infer_type without shapes.
OpSchema keeps_dtype(OpSchema schema) {
  schema.dtype_slots = {0};
  schema.output_dtypes = {std::nullopt};
  return schema;
}

// _astype makes its `dtype` attribute's dtype.
OpSchema dtype_from_attr(OpSchema schema) {
  schema.dtype_attr = "dtype";
  return schema;
}

const bool registered = [] {
  register_schema(dtype_from_attr(OpSchema{"_astype", "runtime/graph/runtime_ops.cc",
                           "x converted to another dtype (by its enum value): NDArray.astype.",
                           {array("x"), attribute("dtype", AttrType::kInt, "runtime/core/dtype.h's DType, as an int")},
                           {"out"},
                           &invoke_astype}));
  register_schema(keeps_dtype(OpSchema{"reshape", "runtime/graph/runtime_ops.cc",
                           "x with the same elements in a new shape: -1 infers one dim, 0 copies the input's dim at "
                           "that position (MXNet's rule). A view when x is contiguous.",
                           {array("x"), attribute("shape", AttrType::kIntList, "the new shape")},
                           {"out"},
                           &invoke_reshape}));
  register_schema(keeps_dtype(OpSchema{"flatten", "runtime/graph/runtime_ops.cc",
                           "x as (batch, everything else): the first dim kept, the rest merged.",
                           {array("x")},
                           {"out"},
                           &invoke_flatten}));
  register_schema(keeps_dtype(OpSchema{"broadcast_to", "runtime/graph/runtime_ops.cc",
                           "x repeated along its size-1 (or missing leading) dims to `shape`, as a view.",
                           {array("x"), attribute("shape", AttrType::kIntList, "the target shape")},
                           {"out"},
                           &invoke_broadcast_to}));
  register_schema(OpSchema{"_scalar", "runtime/graph/runtime_ops.cc",
                           "A 0-d constant beside `like`: a Python number in `sym + 1`, with Python's weak-scalar "
                           "dtype rule.",
                           {array("like"), attribute("value", AttrType::kFloat, "the number"),
                            attribute("integral", AttrType::kBool, "an int (rather than a float) in Python",
                                      AttrValue(false))},
                           {"out"},
                           &invoke_scalar});
  return true;
}();

}  // namespace
}  // namespace loom::graph
