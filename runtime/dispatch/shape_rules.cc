#include "runtime/dispatch/shape_rules.h"

#include <algorithm>

#include "microkernel/base/error.h"

namespace loom {

Shape matmul_shape(std::string_view op, const NDArray& a, const NDArray& b) {
  LOOM_CHECK(a.ndim() >= 1 && b.ndim() >= 1, op, ": operands need at least one dimension, got ", a.describe(),
             " and ", b.describe());
  const std::int64_t ka = a.shape().back();
  const std::int64_t kb = b.ndim() == 1 ? b.shape()[0] : b.shape()[b.ndim() - 2];
  LOOM_CHECK(ka == kb, op, ": shapes ", shape_str(a.shape()), " and ", shape_str(b.shape()),
             " do not multiply (inner dimensions ", ka, " and ", kb, " differ)");
  const Shape a_batch(a.shape().begin(), a.shape().end() - std::min(a.ndim(), 2));
  const Shape b_batch(b.shape().begin(), b.shape().end() - std::min(b.ndim(), 2));
  Shape out = broadcast_shapes(op, a_batch, b_batch);
  if (a.ndim() >= 2) out.push_back(a.shape()[a.ndim() - 2]);
  if (b.ndim() >= 2) out.push_back(b.shape().back());
  return out;
}

}  // namespace loom
