// Direct kernels for depthwise convolutions (groups == input channels ==
// output channels). On the CPU: float32 and float64, any spatial rank,
// stride, padding and dilation (runtime/kernels/cpu/isa/conv_depthwise.cc). conv_cpu.cc
// routes such convolutions here: measured faster than both im2col + GEMM
// and oneDNN on them (docs/nn-ops.md).
#pragma once

#include "runtime/kernels/conv_geometry.h"
#include "runtime/ndarray/ndarray.h"

namespace loom::kernels {

// True when the kernels below take this convolution in this dtype.
bool is_depthwise(const ConvGeometry& g, DType dtype);

// out (batch, C, *cols) = the convolution of x (batch, C, *image) with
// weight (C, 1, *kernel), plus bias (C,) when defined.
void conv_depthwise_forward(const ConvGeometry& g, NDArray& out, const NDArray& x, const NDArray& weight,
                            const NDArray& bias);
// image (batch, C, *image) = the transposed convolution of cols (batch, C,
// *cols) with weight (C, 1, *kernel), plus bias when defined: the data
// gradient of the forward one (with grad_out as cols).
void conv_depthwise_transposed(const ConvGeometry& g, NDArray& image, const NDArray& cols, const NDArray& weight,
                               const NDArray& bias);
// out (C, 1, *kernel) = the weight gradient for x and grad_out (batch, C, *cols).
void conv_depthwise_weight_grad(const ConvGeometry& g, NDArray& out, const NDArray& x, const NDArray& grad_out);

// The GPU's direct kernels (runtime/kernels/cuda/depthwise_conv_cuda.cu),
// which conv_cudnn.cu runs instead of cuDNN's one-channel groups: the
// same three products, for 2-D convolutions with a square 3x3, 5x5 or
// 7x7 kernel in float32 or float64 (depthwise_direct_cuda says which).
// Only in builds with CUDA.
bool depthwise_direct_cuda(const ConvGeometry& g, DType dtype);
void depthwise_forward_cuda(const ConvGeometry& g, NDArray& out, const NDArray& x, const NDArray& w,
                            const NDArray& bias);
void depthwise_data_grad_cuda(const ConvGeometry& g, NDArray& out, const NDArray& dy, const NDArray& w,
                              const NDArray& bias);
void depthwise_weight_grad_cuda(const ConvGeometry& g, NDArray& out, const NDArray& x, const NDArray& dy);

}  // namespace loom::kernels
