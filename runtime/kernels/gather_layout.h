// The index arithmetic gather and scatter_add share between their CPU and
// CUDA kernels (runtime/kernels/gather.cc, cuda/gather_cuda.cu).
#pragma once

#include <cstdint>

#include "runtime/kernels/pointwise_math.h"  // LOOM_HD
#include "runtime/ndarray/ndarray.h"

namespace loom::kernels {

inline constexpr int kGatherMaxDims = 10;

struct GatherOffsets {
  std::int64_t x, src;
};

struct GatherLayout {
  int rank = 0;
  std::int64_t dim = 0, axis = 1, count = 0;   // axis: x's size along dim; count: index's elements
  std::int64_t index_shape[kGatherMaxDims] = {};
  std::int64_t x_strides[kGatherMaxDims] = {};    // dense strides of x (and of the output of scatter_add)
  std::int64_t src_strides[kGatherMaxDims] = {};  // dense strides of src (scatter_add)

  // For the i-th element of index (row-major) holding `value`: the offset in
  // x with the dim coordinate replaced by value, and the offset in src.
  LOOM_HD GatherOffsets source(std::int64_t i, std::int64_t value) const {
    std::int64_t x_off = 0, src_off = 0;
    for (int d = rank - 1; d >= 0; --d) {
      const std::int64_t c = i % index_shape[d];
      i /= index_shape[d];
      x_off += (d == dim ? (value < 0 ? value + axis : value) : c) * x_strides[d];
      src_off += c * src_strides[d];
    }
    return {x_off, src_off};
  }
};

// Checks x, index (and src) against each other; errors name `op` and the shapes.
GatherLayout gather_layout(const char* op, const NDArray& x, const NDArray& index, std::int64_t dim,
                           const NDArray* src);

}  // namespace loom::kernels
