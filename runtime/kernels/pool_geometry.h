// Pooling windows over 1 to 3 spatial dims, in the canonical 3-D form of
// conv_geometry.h (missing leading dims have size 1): output sizes with
// PyTorch's rules (floor, or ceil_mode keeping a last partial window that
// starts inside the input or its left padding), checked once for the CPU
// and GPU kernels alike.
#pragma once

#include <array>
#include <cstdint>

#include "runtime/dispatch/reduce_call.h"
#include "runtime/ndarray/ndarray.h"

#if defined(__CUDACC__)
#define LOOM_HD_POOL __host__ __device__
#else
#define LOOM_HD_POOL
#endif

namespace loom::kernels {

struct PoolGeometry {
  int spatial_dims = 0;
  std::int64_t planes = 0;  // batch * channels: each pooled on its own
  std::array<std::int64_t, 3> in{1, 1, 1}, out{1, 1, 1}, kernel{1, 1, 1};
  std::array<std::int64_t, 3> stride{1, 1, 1}, pad{0, 0, 0}, dilation{1, 1, 1};

  std::int64_t in_size() const { return in[0] * in[1] * in[2]; }
  std::int64_t out_size() const { return out[0] * out[1] * out[2]; }
};

// x_shape: (batch, channels, *spatial). stride None: the kernel.
PoolGeometry pool_geometry(const char* op, const Shape& x_shape, const ReduceDims& kernel, const ReduceDims& stride,
                           const ReduceDims& padding, const ReduceDims& dilation, bool ceil_mode);

// (batch, channels, *out)
Shape pool_output_shape(const PoolGeometry& g, const Shape& x_shape);

// avg_pool_grad's geometry: that of the forward pooling of an input with
// spatial size input_size and grad_out's batch and channels, which must
// be that pooling's output shape. Writes the input's full shape to `input`.
PoolGeometry pool_grad_geometry(const NDArray& grad_out, const ReduceDims& input_size, const ReduceDims& kernel,
                                const ReduceDims& stride, const ReduceDims& padding, bool ceil_mode, Shape* input);

// adaptive_avg_pool: x_shape (batch, channels, *in) pooled to `out` (one
// value or one per spatial dim, each >= 1), windows [floor(i in / out),
// ceil((i + 1) in / out)); stride, padding and dilation unused.
PoolGeometry adaptive_geometry(const char* op, const Shape& x_shape, const ReduceDims& output_size,
                               const char* attr = "output_size");
// The window of output i along a dim of input size `in` and output size `out`.
LOOM_HD_POOL inline void adaptive_window(std::int64_t i, std::int64_t in, std::int64_t out, std::int64_t& start,
                                         std::int64_t& end) {
  start = i * in / out;
  end = ((i + 1) * in + out - 1) / out;
}

// The divisor of avg_pool's window at output (od, oh, ow) along one dim:
// [start, end) clipped to the padded input (count_include_pad) or to the
// input itself.
struct WindowSpan {
  std::int64_t start, end, padded;  // clipped to the input, and the padded length
};
inline WindowSpan window_span(std::int64_t o, std::int64_t stride, std::int64_t pad, std::int64_t kernel,
                              std::int64_t in) {
  std::int64_t start = o * stride - pad, end = start + kernel;
  const std::int64_t padded_end = end < in + pad ? end : in + pad;
  const std::int64_t padded = padded_end - start;
  start = start < 0 ? 0 : start;
  end = end < in ? end : in;
  return {start, end, padded};
}

}  // namespace loom::kernels
