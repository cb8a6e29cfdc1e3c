// The index arithmetic of the upsampling ops (opdefs/nn/upsample.yaml),
// shared by the CPU and CUDA kernels so both pick the same source pixels
// and weights: nearest's source index, bilinear's two neighbours and the
// second one's weight along one dim (PyTorch's rules).
#pragma once

#include <cstdint>

#include "runtime/kernels/pointwise_math.h"  // LOOM_HD

namespace loom::kernels {

// floor(i * in / out), exactly (integers), at most in - 1.
LOOM_HD std::int64_t nearest_source(std::int64_t i, std::int64_t in, std::int64_t out) {
  const std::int64_t s = i * in / out;
  return s < in ? s : in - 1;
}

// Bilinear along one dim: output i reads inputs i0 and i1 with weights
// (1 - lambda) and lambda.
struct LinearTap {
  std::int64_t i0, i1;
  double lambda;
};
LOOM_HD LinearTap linear_tap(std::int64_t i, std::int64_t in, std::int64_t out, bool align_corners) {
  double src;
  if (align_corners) {
    src = out > 1 ? double(i) * double(in - 1) / double(out - 1) : 0.0;
  } else {
    src = (double(i) + 0.5) * double(in) / double(out) - 0.5;
    src = src < 0 ? 0 : src;
  }
  std::int64_t i0 = static_cast<std::int64_t>(src);  // src >= 0: truncation is floor
  i0 = i0 < in - 1 ? i0 : in - 1;
  const std::int64_t i1 = i0 + 1 < in ? i0 + 1 : in - 1;
  return {i0, i1, src - double(i0)};
}

}  // namespace loom::kernels
