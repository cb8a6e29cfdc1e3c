// The iteration layout of a pointwise loop: the output and its inputs viewed
// with one common shape, dimensions merged where every operand is dense
// across them. Merging first means a broadcast like (N, C) + (C,) runs as a
// plain inner loop and most strided cases need only one or two dimensions.
#pragma once

#include <vector>

#include "runtime/core/shape.h"

namespace loom::kernels {

struct StridedLayout {
  Shape shape;                   // after merging; never empty (0-d becomes (1,))
  std::vector<Strides> strides;  // per operand, in elements, same rank as shape
  bool all_contiguous = false;   // every operand dense and unbroadcast
};

// `shape` is the common (broadcast) shape; `strides[k]` are operand k's
// strides already broadcast to it.
StridedLayout make_strided_layout(const Shape& shape, std::vector<Strides> strides);

}  // namespace loom::kernels
