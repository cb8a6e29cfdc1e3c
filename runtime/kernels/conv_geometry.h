// The geometry every convolution kernel shares: sizes, strides, padding
// and dilation of 1 to 3 spatial dims, in one canonical 3-D form (missing
// leading dims have size 1), seen from the forward convolution:
//   image: the convolution's input (a transposed convolution's output),
//   cols:  the convolution's output (a transposed convolution's input).
// Built and checked once per call, so shape errors name the op, the
// arrays and the attribute that is wrong.
#pragma once

#include <array>
#include <cstdint>

#include "runtime/dispatch/reduce_call.h"
#include "runtime/ndarray/ndarray.h"

namespace loom::kernels {

struct ConvGeometry {
  int spatial_dims = 0;                 // 1, 2 or 3
  std::int64_t batch = 0;
  std::int64_t image_channels = 0;      // the convolution's input channels
  std::int64_t col_channels = 0;        // its output channels (weight's dim 0)
  std::int64_t groups = 1;
  std::array<std::int64_t, 3> image{1, 1, 1}, cols{1, 1, 1}, kernel{1, 1, 1};
  std::array<std::int64_t, 3> stride{1, 1, 1}, pad{0, 0, 0}, dilation{1, 1, 1};

  std::int64_t image_size() const { return image[0] * image[1] * image[2]; }
  std::int64_t col_size() const { return cols[0] * cols[1] * cols[2]; }
  std::int64_t kernel_size() const { return kernel[0] * kernel[1] * kernel[2]; }
  // rows of one group's im2col matrix: (image_channels / groups) * kernel
  std::int64_t col_rows() const { return image_channels / groups * kernel_size(); }
  // True when im2col is the identity (1x1 kernel, stride 1, no padding):
  // the image itself is the column matrix.
  bool is_pointwise() const;
};

// Geometry of convolution(x, weight): x (batch, channels, *spatial), weight
// (out, channels / groups, *kernel). Checks ranks, channels, groups, the
// attribute lists (one value, or one per spatial dim) and that the dilated
// kernel fits the padded input.
ConvGeometry conv_geometry(const char* op, const Shape& x, const Shape& weight, const ReduceDims& stride,
                           const ReduceDims& padding, const ReduceDims& dilation, std::int64_t groups);

// Geometry of deconvolution(x, weight): x is the cols side (batch, in,
// *spatial), weight (in, out / groups, *kernel); the image side's size
// follows from output_padding (each value below its dim's stride).
ConvGeometry deconv_geometry(const char* op, const Shape& x, const Shape& weight, const ReduceDims& stride,
                             const ReduceDims& padding, const ReduceDims& output_padding,
                             const ReduceDims& dilation, std::int64_t groups);

// The output shapes: (batch, col_channels, *cols) and (batch, image_channels, *image).
Shape conv_cols_shape(const ConvGeometry& g);
Shape conv_image_shape(const ConvGeometry& g);
// The weight's shape, (col_channels, image_channels / groups, *kernel).
Shape conv_weight_shape(const ConvGeometry& g);

// An attribute list (stride, padding, ...) for `n` spatial dims: one value
// for all, or exactly n; None takes `fallback`. Throws naming op and attribute.
std::array<std::int64_t, 3> spatial_values(const char* op, const char* attr, const ReduceDims& values, int n,
                                           std::int64_t fallback);

}  // namespace loom::kernels
