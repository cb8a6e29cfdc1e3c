// The index arithmetic of the upsampling ops (opdefs/nn/upsample.yaml),
// shared by the CPU and CUDA kernels so both pick the same source pixels
// and weights: nearest's source index, bilinear's two neighbours and the
// second one's weight along one dim (PyTorch's rules).
#pragma once

#include <cstdint>

#include "runtime/kernels/pointwise_math.h"  // LOOM_HD

namespace loom::kernels {

// PyTorch's nearest rule, its float32 rounding included: floor(i * scale)
// with scale = float(in) / out, at most in - 1 (equal sizes and doubling
// are exact shortcuts). The exact floor(i * in / out) picked a different
// source on 70 of the 7,611 size pairs up to 127 (2 -> 82: output 41 read
// input 1 where torch reads 0), and so did its gradient.
LOOM_HD std::int64_t nearest_source(std::int64_t i, std::int64_t in, std::int64_t out) {
  if (out == in) return i;
  if (out == 2 * in) return i / 2;
  const float scale = static_cast<float>(in) / static_cast<float>(out);
  const auto s = static_cast<std::int64_t>(floorf(static_cast<float>(i) * scale));
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
