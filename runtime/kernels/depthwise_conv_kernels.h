// Direct CUDA kernels for depthwise 2-D convolution
// (runtime/kernels/cuda/depthwise_conv_cuda.cu), which conv_cudnn.cu runs
// instead of cuDNN's grouped convolution when depthwise_direct_cuda says
// they take the geometry: one channel per group on both sides, a square
// 3x3, 5x5 or 7x7 kernel, float32 or float64.
#pragma once

#include "runtime/core/dtype.h"
#include "runtime/kernels/conv_geometry.h"
#include "runtime/ndarray/ndarray.h"

namespace loom::kernels {

bool depthwise_direct_cuda(const ConvGeometry& g, DType dtype);

// convolution(x, w, bias): out is the cols side of g.
void depthwise_forward_cuda(const ConvGeometry& g, NDArray& out, const NDArray& x, const NDArray& w,
                            const NDArray& bias);
// deconvolution(dy, w, bias), the data gradient: out is the image side.
void depthwise_data_grad_cuda(const ConvGeometry& g, NDArray& out, const NDArray& dy, const NDArray& w,
                              const NDArray& bias);
// convolution_weight_grad(x, dy): out is (channels, 1, k, k).
void depthwise_weight_grad_cuda(const ConvGeometry& g, NDArray& out, const NDArray& x, const NDArray& dy);

}  // namespace loom::kernels
