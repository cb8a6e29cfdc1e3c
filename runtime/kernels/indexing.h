// What the hand-written kernels around one dim share (take, index_add,
// one_hot, cumsum, softmax, the views, concat/stack, tile/repeat): the
// (outer, axis, inner) view of an array around a dim, dim wrapping, and the
// index checks, each with its error message.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/ndarray/ndarray.h"

namespace loom::kernels {

// An array seen as (outer, axis, inner) around dim `dim`: row-major offsets
// are (o * axis + a) * inner + r.
struct AxisSplit {
  std::int64_t outer = 1, axis = 1, inner = 1;
};
AxisSplit split_around(const Shape& shape, std::int64_t dim);

// `dim` wrapped into [0, positions) (negative counts from the end); an
// IndexError naming `op` and `shape` when out of range. `positions` is
// usually the rank; expand_dims has one more.
std::int64_t wrap_dim(std::string_view op, std::int64_t dim, std::int64_t positions, const Shape& shape);
// The same over the dims of `shape`, which must have at least one.
std::int64_t wrap_axis(std::string_view op, std::int64_t dim, const Shape& shape);

// Throws the IndexError an out-of-range index gets: names the op, the
// index, the dim and its size.
[[noreturn]] void throw_bad_index(std::string_view op, std::int64_t index, std::int64_t dim, std::int64_t size);
// The same for one_hot, whose indices must lie in [0, depth).
[[noreturn]] void throw_bad_depth_index(std::string_view op, std::int64_t index, std::int64_t depth);

// "(1, 2)" / "(3,)": a list of dims or sizes, spelled as Python does.
std::string dims_str(const std::vector<std::int64_t>& dims);

}  // namespace loom::kernels
