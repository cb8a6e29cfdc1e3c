// generated from opdefs/elementwise/relu.yaml:1 — do not edit
#pragma once

#include <cstdint>

#include "runtime/ndarray/ndarray.h"

namespace loom::op {

// Rectified linear unit, max(x, 0), elementwise.
// dtypes: float32, float64, float16, bfloat16, int32, int64
NDArray relu(const NDArray& x);
// out= variant: writes the result into `out`, which must already have the
// result's shape, dtype and device. Returns `out`.
NDArray& relu_out(NDArray& out, const NDArray& x);

}  // namespace loom::op
