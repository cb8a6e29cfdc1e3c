// See nn_grad.h.
#include "runtime/autograd/nn_grad.h"

#include <vector>

#include "loom/ops/convolution.h"
#include "loom/ops/convolution_weight_grad.h"
#include "loom/ops/add.h"
#include "loom/ops/avg_pool_grad.h"
#include "loom/ops/deconvolution.h"
#include "loom/ops/mean.h"
#include "loom/ops/mul.h"
#include "loom/ops/rsqrt.h"
#include "loom/ops/scatter_add.h"
#include "loom/ops/sub.h"
#include "loom/ops/sum.h"
#include "microkernel/base/error.h"
#include "runtime/autograd/functions.h"
#include "runtime/autograd/grad_mode.h"
#include "runtime/dispatch/launch.h"
#include "runtime/kernels/batch_norm_kernels.h"
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

namespace {

// every dim of an (N, C, ...) array but the channels
ReduceDims all_but_channels(int ndim) {
  std::vector<std::int64_t> dims{0};
  for (int d = 2; d < ndim; ++d) dims.push_back(d);
  return ReduceDims(dims);
}

// (C,) as (1, C, 1, ...): broadcastable against an (N, C, ...) array
NDArray per_channel(const NDArray& v, int ndim) {
  Shape s(static_cast<std::size_t>(ndim), 1);
  s[1] = v.shape()[0];
  return reshape(v, s);
}

std::vector<NDArray> batch_norm_backward_ops(const NDArray& g, const NDArray& x, const NDArray& weight,
                                             const NDArray& mean, const NDArray& invstd, bool training, double eps,
                                             const std::vector<bool>& wanted) {
  const int nd = x.ndim();
  const ReduceDims dims = all_but_channels(nd);
  NDArray mu, inv;
  if (training) {  // recomputed from x, so their dependence on x is differentiated too
    mu = op::mean(x, dims, true);
    const NDArray centered = op::sub(x, mu);
    const NDArray var = op::mean(op::mul(centered, centered), dims, true);
    inv = op::rsqrt(op::add(var, full({}, eps, var.dtype(), var.device())));
  } else {
    mu = per_channel(mean, nd);
    inv = per_channel(invstd, nd);
  }
  const NDArray xhat = op::mul(op::sub(x, mu), inv);
  std::vector<NDArray> out(3);
  if (wanted[0]) {
    const NDArray gw = weight.defined() ? op::mul(g, per_channel(weight, nd)) : g;
    if (training) {
      const NDArray centered_g = op::sub(op::sub(gw, op::mean(gw, dims, true)),
                                         op::mul(xhat, op::mean(op::mul(gw, xhat), dims, true)));
      out[0] = op::mul(inv, centered_g);
    } else {
      out[0] = op::mul(gw, inv);
    }
  }
  if (wanted[1]) out[1] = op::sum(op::mul(g, xhat), dims, false);
  if (wanted[2]) out[2] = op::sum(g, dims, false);
  return out;
}

}  // namespace

std::vector<NDArray> batch_norm_backward(const NDArray& grad, const NDArray& x, const NDArray& weight,
                                         const NDArray& mean, const NDArray& invstd, bool training, double eps,
                                         const std::vector<bool>& wanted) {
  if (is_recording() || x.numel() == 0) {
    return batch_norm_backward_ops(grad, x, weight, mean, invstd, training, eps, wanted);
  }
  // the kernels compute in float32 or float64: float16/bfloat16 via float32 copies
  const DType dtype = x.dtype();
  const DType compute = dtype == DType::kFloat64 ? DType::kFloat64 : DType::kFloat32;
  auto as_compute = [&](const NDArray& a) { return a.defined() && a.dtype() != compute ? a.astype(compute) : a; };
  const NDArray g = as_compute(grad), xc = as_compute(x), w = as_compute(weight), m = as_compute(mean),
                i = as_compute(invstd);
  const Shape channels{x.shape()[1]};
  std::vector<NDArray> out{wanted[0] ? NDArray::empty(x.shape(), compute, x.device()) : NDArray(),
                           wanted[1] ? NDArray::empty(channels, compute, x.device()) : NDArray(),
                           wanted[2] ? NDArray::empty(channels, compute, x.device()) : NDArray()};
  if (x.device().is_cpu()) {
    std::vector<NDArray> reads{g, xc, m, i};
    if (w.defined()) reads.push_back(w);
    std::vector<NDArray> writes;
    for (const NDArray& o : out) {
      if (o.defined()) writes.push_back(o);
    }
    launch("batch_norm (backward)", reads, writes, [=]() mutable {
      kernels::batch_norm_backward_cpu(out[0], out[1], out[2], g, xc, w, m, i, training);
    });
  } else {
#if LOOM_WITH_CUDA
    kernels::batch_norm_backward_cuda(out[0], out[1], out[2], g, xc, w, m, i, training);
#else
    LOOM_THROW(ErrorKind::kNotImplemented, "batch_norm (backward): ", x.describe(), " is on a GPU in a build "
               "without CUDA");
#endif
  }
  for (NDArray& o : out) {
    if (o.defined() && o.dtype() != dtype) o = o.astype(dtype);
  }
  return out;
}

NDArray channel_sum(const NDArray& grad) {
  LOOM_CHECK(grad.ndim() >= 2, "channel_sum: expected (batch, channels, ...), got ", grad.describe());
  return op::sum(grad, all_but_channels(grad.ndim()), false);
}

}  // namespace loom::autograd
