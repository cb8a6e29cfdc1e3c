// What a generated reduction receives: the input, the output, and the
// iteration split into kept ("outer") and reduced ("inner") dimensions.
//
//   prepare_reduce("sum", x, dims, keepdim, result_dtype, out)
//
// normalises `dims` (negative counts from the end; a repeated or out-of-range
// dim is an IndexError naming the op and the shape), computes the result
// shape (NumPy's: reduced dims dropped, or kept as 1 with keepdim), allocates
// the output or checks out=, and lays out both index spaces. `dims` absent
// (std::nullopt, Python None) reduces every dim; an empty list reduces none.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "runtime/ndarray/ndarray.h"

namespace loom {

struct ReduceCall {
  NDArray in;
  NDArray out;
  // Kept dims of the input: shape, input strides, output strides (elements).
  Shape outer_shape;
  Strides outer_in_strides, outer_out_strides;
  // Reduced dims of the input, merged where contiguous; never empty
  // ((1,) with stride 0 when nothing is reduced).
  Shape inner_shape;
  Strides inner_strides;
  std::int64_t outer_count() const { return shape_numel(outer_shape); }
  std::int64_t inner_count() const { return shape_numel(inner_shape); }
};

using ReduceDims = std::optional<std::vector<std::int64_t>>;

// Which dims of `shape` `dims` reduces (NumPy's rules: None is every dim,
// negative counts from the end); an out-of-range dim is an IndexError and a
// repeated one a ValueError, both naming `op` and the shape.
std::vector<bool> reduced_dims(std::string_view op, const Shape& shape, const ReduceDims& dims);

// `has_identity` false (max, min): reducing over an empty dimension is a
// ValueError, as in NumPy, instead of returning the monoid's init.
ReduceCall prepare_reduce(std::string_view op, const NDArray& in, const ReduceDims& dims,
                          bool keepdim, DType result_dtype, const NDArray* out, bool has_identity);

}  // namespace loom
