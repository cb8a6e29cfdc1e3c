// Shapes and strides (in elements), and the broadcasting rule.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace loom {

using Shape = std::vector<std::int64_t>;
using Strides = std::vector<std::int64_t>;

// "(2, 3)"; "()" for a 0-d shape. The spelling used in every error message.
std::string shape_str(const Shape& shape);
std::int64_t shape_numel(const Shape& shape);
// Row-major strides of a contiguous array of this shape.
Strides contiguous_strides(const Shape& shape);

// The lowest and highest element offsets a view of `shape`/`strides`
// starting at `offset` can address (strides may be negative). `overflow` is
// set when they do not fit in 64 bits. Meaningless for zero-size shapes.
struct ElementRange {
  std::int64_t lowest, highest;
  bool overflow;
};
ElementRange element_range(const Shape& shape, const Strides& strides, std::int64_t offset);

// NumPy broadcasting of two shapes. Throws loom::Error naming `op`, both
// shapes and the first dimension that does not match.
Shape broadcast_shapes(std::string_view op, const Shape& a, const Shape& b);

// Strides that read an array of `shape`/`strides` as if it had `target`
// shape: broadcast dimensions get stride 0. `shape` must broadcast to target.
Strides broadcast_strides(const Shape& shape, const Strides& strides, const Shape& target);

}  // namespace loom
