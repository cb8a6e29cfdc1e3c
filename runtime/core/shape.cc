#include "runtime/core/shape.h"

#include <algorithm>

#include "microkernel/base/error.h"

namespace loom {

std::string shape_str(const Shape& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

std::int64_t shape_numel(const Shape& shape) {
  std::int64_t n = 1;
  for (auto d : shape) {
    LOOM_CHECK(!__builtin_mul_overflow(n, d, &n), "shape ", shape_str(shape),
               " has more elements than a 64-bit count holds");
  }
  return n;
}

Strides contiguous_strides(const Shape& shape) {
  Strides strides(shape.size());
  std::int64_t step = 1;
  for (std::size_t i = shape.size(); i-- > 0;) {
    strides[i] = step;
    step *= std::max<std::int64_t>(shape[i], 1);
  }
  return strides;
}

ElementRange element_range(const Shape& shape, const Strides& strides, std::int64_t offset) {
  ElementRange r{offset, offset, false};
  for (std::size_t i = 0; i < shape.size(); ++i) {
    // Huge strides must not wrap around into a range that looks valid.
    std::int64_t reach = 0;
    r.overflow |= __builtin_mul_overflow(shape[i] == 0 ? 0 : shape[i] - 1, strides[i], &reach);
    std::int64_t& end = reach < 0 ? r.lowest : r.highest;
    r.overflow |= __builtin_add_overflow(end, reach, &end);
  }
  return r;
}

Shape broadcast_shapes(std::string_view op, const Shape& a, const Shape& b) {
  const std::size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (std::size_t i = 0; i < rank; ++i) {
    // Align from the right, as NumPy does.
    std::int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    std::int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    LOOM_CHECK(da == db || da == 1 || db == 1, op, ": cannot broadcast shapes ", shape_str(a),
               " and ", shape_str(b), " (dim ", i, ": ", da, " vs ", db, ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Strides broadcast_strides(const Shape& shape, const Strides& strides, const Shape& target) {
  Strides out(target.size(), 0);
  const std::size_t lead = target.size() - shape.size();
  for (std::size_t i = 0; i < shape.size(); ++i) {
    out[lead + i] = shape[i] == 1 && target[lead + i] != 1 ? 0 : strides[i];
  }
  return out;
}

}  // namespace loom
