// generated from opdefs/elementwise/add.yaml:1 — do not edit
#pragma once

#include <cstdint>

#include "runtime/ndarray/ndarray.h"

namespace loom::op {

// Elementwise sum x + y, with NumPy broadcasting and type promotion.
// dtypes: float32, float64, float16, bfloat16, int8, uint8, int32, int64
NDArray add(const NDArray& x, const NDArray& y);
// out= variant: writes the result into `out`, which must already have the
// result's shape, dtype and device. Returns `out`.
NDArray& add_out(NDArray& out, const NDArray& x, const NDArray& y);

}  // namespace loom::op
