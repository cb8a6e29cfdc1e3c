// What the CPU and CUDA halves of the indexing kernels (take, index_add,
// one_hot) share: the (outer, axis, inner) view of an array around one dim,
// and the index checks with their error message.
#pragma once

#include <cstdint>
#include <string_view>

#include "runtime/ndarray/ndarray.h"

namespace loom::kernels {

// An array seen as (outer, axis, inner) around dim `dim`: row-major offsets
// are (o * axis + a) * inner + r.
struct AxisSplit {
  std::int64_t outer = 1, axis = 1, inner = 1;
};
AxisSplit split_around(const Shape& shape, std::int64_t dim);

// `dim` wrapped into [0, rank); an IndexError naming `op` when out of range.
std::int64_t wrap_axis(std::string_view op, std::int64_t dim, const Shape& shape);

// Throws the IndexError an out-of-range index gets: names the op, the
// index, the dim and its size.
[[noreturn]] void throw_bad_index(std::string_view op, std::int64_t index, std::int64_t dim, std::int64_t size);

}  // namespace loom::kernels
