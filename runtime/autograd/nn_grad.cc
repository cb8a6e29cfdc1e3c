// See nn_grad.h.
#include "runtime/autograd/nn_grad.h"

#include <vector>

#include "loom/ops/convolution.h"
#include "loom/ops/convolution_weight_grad.h"
#include "loom/ops/avg_pool_grad.h"
#include "loom/ops/deconvolution.h"
#include "loom/ops/scatter_add.h"
#include "loom/ops/sum.h"
#include "microkernel/base/error.h"
#include "runtime/autograd/functions.h"
#include "runtime/kernels/conv_geometry.h"

namespace loom::autograd {

NDArray conv_data_grad(const NDArray& grad, const NDArray& weight, const Shape& x_shape, const ReduceDims& stride,
                       const ReduceDims& padding, const ReduceDims& dilation, std::int64_t groups) {
  const kernels::ConvGeometry g = kernels::conv_geometry("convolution (backward)", x_shape, weight.shape(), stride,
                                                         padding, dilation, groups);
  // The transposed convolution's natural size can fall short of x's by up
  // to stride - 1 (a strided convolution drops the input's last rows):
  // output_padding restores them.
  std::vector<std::int64_t> extra(static_cast<std::size_t>(g.spatial_dims));
  for (int d = 0; d < g.spatial_dims; ++d) {
    const int k = 3 - g.spatial_dims + d;
    extra[static_cast<std::size_t>(d)] =
        g.image[k] - ((g.cols[k] - 1) * g.stride[k] - 2 * g.pad[k] + g.dilation[k] * (g.kernel[k] - 1) + 1);
  }
  return op::deconvolution(grad, weight, NDArray(), stride, padding, ReduceDims(extra), dilation, groups);
}

NDArray conv_weight_grad(const NDArray& x, const NDArray& grad_out, const Shape& weight_shape,
                         const ReduceDims& stride, const ReduceDims& padding, const ReduceDims& dilation,
                         std::int64_t groups) {
  const std::vector<std::int64_t> kernel(weight_shape.begin() + 2, weight_shape.end());
  return op::convolution_weight_grad(x, grad_out, ReduceDims(kernel), stride, padding, dilation, groups);
}

NDArray convolution_nobias(const NDArray& x, const NDArray& weight, const ReduceDims& stride,
                           const ReduceDims& padding, const ReduceDims& dilation, std::int64_t groups) {
  return op::convolution(x, weight, NDArray(), stride, padding, dilation, groups);
}

NDArray pool_scatter(const NDArray& grad, const NDArray& indices, const Shape& x_shape) {
  // each (batch, channel) plane flattened: indices are positions within one
  const auto planes = [](const Shape& s) {
    const std::int64_t lead = s[0] * s[1];
    return Shape{s[0], s[1], lead == 0 ? 0 : shape_numel(s) / lead};
  };
  const NDArray zeros = full(planes(x_shape), 0.0, grad.dtype(), grad.device());
  const NDArray spread = op::scatter_add(zeros, reshape(indices, planes(indices.shape())),
                                         reshape(grad, planes(grad.shape())), 2);
  return reshape(spread, x_shape);
}

NDArray avg_pool_data_grad(const NDArray& grad, const Shape& x_shape, const ReduceDims& kernel,
                           const ReduceDims& stride, const ReduceDims& padding, bool ceil_mode,
                           bool count_include_pad) {
  const std::vector<std::int64_t> size(x_shape.begin() + 2, x_shape.end());
  return op::avg_pool_grad(grad, ReduceDims(size), kernel, stride, padding, ceil_mode, count_include_pad);
}

NDArray channel_sum(const NDArray& grad) {
  LOOM_CHECK(grad.ndim() >= 2, "channel_sum: expected (batch, channels, ...), got ", grad.describe());
  std::vector<std::int64_t> dims{0};
  for (int d = 2; d < grad.ndim(); ++d) dims.push_back(d);
  return op::sum(grad, ReduceDims(dims), false);
}

}  // namespace loom::autograd
