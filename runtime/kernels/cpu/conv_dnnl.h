// oneDNN's convolutions for loom's CPU convolution kernels (conv_cpu.cc),
// when loom is built with oneDNN (Debian's libdnnl-dev). oneDNN's JIT
// kernels work on channel-blocked layouts (nChw16c on AVX-512): loom's
// row-major arrays are reordered into them and back, and the whole still
// ran 1.9x faster than im2col + GEMM on ResNet's 3x3 layers here
// (bench/bench_nn.py). Each function returns false when it does not take
// the call (built without oneDNN, a dtype other than float32, or
// LOOM_CONV_BACKEND=im2col), and the caller runs im2col + GEMM instead.
#pragma once

#include <string>

#include "runtime/kernels/conv_geometry.h"
#include "runtime/ndarray/ndarray.h"

namespace loom::kernels {

// LOOM_CONV_BACKEND, read once ("" when unset): =im2col forces loom's own
// CPU kernels, =dnnl sends every convolution oneDNN takes to it (stride-1
// depthwise ones included, which otherwise run conv_depthwise.h's kernels).
const std::string& conv_backend_override();
// Which CPU convolution backend runs: oneDNN takes float32 convolutions
// unless LOOM_CONV_BACKEND=im2col.
bool conv_dnnl_enabled(DType dtype);

// out (batch, col_channels, *cols) = convolution(x, w) + bias
bool dnnl_convolution(const ConvGeometry& g, NDArray& out, const NDArray& x, const NDArray& w, const NDArray& bias);
// out (batch, image_channels, *image) = the transposed convolution of x (no bias)
bool dnnl_conv_transposed(const ConvGeometry& g, NDArray& out, const NDArray& x, const NDArray& w);
// out (weight's shape) = the weight gradient for input x and output gradient dy
bool dnnl_conv_weight_grad(const ConvGeometry& g, NDArray& out, const NDArray& x, const NDArray& dy);

// oneDNN's name for the kernel a float32 convolution of geometry g runs in
// `direction` ("forward", "data" or "weight"), e.g. "jit_wino_4x3:avx512_core";
// "" when loom's own kernels take it (for tests and the bench's notes).
std::string dnnl_conv_implementation(const ConvGeometry& g, const std::string& direction);

}  // namespace loom::kernels
