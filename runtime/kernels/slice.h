// MXNet's slice (opdefs/shape/views.yaml): begin/end/step resolved per dim
// with Python's slicing rules, shared by the view (runtime/kernels/slice.cc)
// and its gradient (runtime/autograd/functions.cc: unslice).
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/dispatch/reduce_call.h"
#include "runtime/core/shape.h"

namespace loom::kernels {

// One dim of a slice: `size` elements from `start`, `step` apart.
struct SliceDim {
  std::int64_t start = 0, step = 1, size = 0;
};

// Every dim of `shape`: the first len(begin) as sliced, the rest whole.
// Errors name `slice` and the shape.
std::vector<SliceDim> resolve_slice(const Shape& shape, const ReduceDims& begin, const ReduceDims& end,
                                    const ReduceDims& step);

}  // namespace loom::kernels
