// Direct CPU kernels for depthwise convolutions (groups == channels, one
// filter per channel: MobileNet's 3x3 layers) in 1-D and 2-D, any stride,
// padding and dilation. Each (sample, channel) plane is independent, so
// these loop over planes and, inside one, over output rows with the inner
// loop along a row: contiguous loads the compiler vectorises, no im2col
// columns and no reorder to a blocked layout. oneDNN ran these 1.4-1.9x
// slower than torch in loom's NCHW layout (docs/nn-ops.md).
#pragma once

#include "runtime/kernels/conv_geometry.h"
#include "runtime/ndarray/ndarray.h"

namespace loom::kernels {

// A depthwise geometry these kernels take: groups == input channels ==
// output channels, at most two spatial dims, float32 or float64.
bool depthwise_applies(const ConvGeometry& g, DType dtype);

// out (N, C, *cols) = x (N, C, *image) correlated with weight (C, 1, *kernel), plus bias (C) when defined.
void depthwise_forward(const ConvGeometry& g, NDArray& out, const NDArray& x, const NDArray& weight,
                       const NDArray& bias);
// out (N, C, *image) = the transposed convolution of dy (N, C, *cols): the
// gradient of x, or deconvolution's result before its bias.
void depthwise_transposed(const ConvGeometry& g, NDArray& out, const NDArray& dy, const NDArray& weight);
// out (C, 1, *kernel) = the gradient of weight, from x and dy.
void depthwise_weight_grad(const ConvGeometry& g, NDArray& out, const NDArray& x, const NDArray& dy);

}  // namespace loom::kernels
