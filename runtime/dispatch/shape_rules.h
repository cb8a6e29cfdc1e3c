// Shape rules an opdef names instead of writing a C++ shape function
// (`shape: {matmul: [a, b]}`); the generated dispatch calls them.
#pragma once

#include <string_view>

#include "runtime/ndarray/ndarray.h"

namespace loom {

// NumPy's matmul rule: the last two dims multiply ((n, k) @ (k, m) ->
// (n, m)), leading batch dims broadcast, a 1-D operand is a vector (a row on
// the left, a column on the right) whose dim is dropped. Errors name `op`
// and both shapes.
Shape matmul_shape(std::string_view op, const NDArray& a, const NDArray& b);

}  // namespace loom
