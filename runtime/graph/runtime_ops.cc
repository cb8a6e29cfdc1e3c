// The one graph operator that is not a YAML op: the constant a Python number
// becomes in `sym + 1`, with Python's weak-scalar dtype rule. Its schema
// sits in the same table as the generated ones.
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

const bool registered = [] {
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
