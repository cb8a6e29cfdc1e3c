// See pool_geometry.h.
#include "runtime/kernels/pool_geometry.h"

#include "microkernel/base/error.h"
#include "runtime/core/shape.h"
#include "runtime/kernels/conv_geometry.h"

namespace loom::kernels {

PoolGeometry pool_geometry(const char* op, const Shape& x, const ReduceDims& kernel, const ReduceDims& stride,
                           const ReduceDims& padding, const ReduceDims& dilation, bool ceil_mode) {
  LOOM_CHECK(x.size() >= 3 && x.size() <= 5, op, ": x must be (batch, channels, *spatial) with 1 to 3 spatial "
             "dims, got shape ", shape_str(x));
  LOOM_CHECK(kernel.has_value(), op, ": kernel (the window size) is required");
  PoolGeometry g;
  const int n = static_cast<int>(x.size()) - 2;
  g.spatial_dims = n;
  g.planes = x[0] * x[1];
  g.kernel = spatial_values(op, "kernel", kernel, n, 1);
  g.stride = stride ? spatial_values(op, "stride", stride, n, 1) : g.kernel;
  g.pad = spatial_values(op, "padding", padding, n, 0);
  g.dilation = spatial_values(op, "dilation", dilation, n, 1);
  for (int k = 3 - n; k < 3; ++k) {
    const int dim = k - (3 - n);
    LOOM_CHECK(g.kernel[k] >= 1 && g.stride[k] >= 1 && g.dilation[k] >= 1, op, ": kernel, stride and dilation must "
               "be >= 1, got kernel ", g.kernel[k], ", stride ", g.stride[k], ", dilation ", g.dilation[k],
               " in spatial dim ", dim);
    LOOM_CHECK(g.pad[k] >= 0 && 2 * g.pad[k] <= g.kernel[k], op, ": padding must be between 0 and half the "
               "window, got padding ", g.pad[k], " for kernel ", g.kernel[k], " in spatial dim ", dim);
    g.in[k] = x[2 + dim];
    const std::int64_t span = g.dilation[k] * (g.kernel[k] - 1) + 1, padded = g.in[k] + 2 * g.pad[k];
    LOOM_CHECK(span <= padded, op, ": the window (", g.kernel[k], ", dilation ", g.dilation[k], ", spanning ", span,
               ") is larger than the padded input (", g.in[k], " + 2 * ", g.pad[k], " = ", padded,
               ") in spatial dim ", dim, "; x ", shape_str(x));
    std::int64_t out = (padded - span + (ceil_mode ? g.stride[k] - 1 : 0)) / g.stride[k] + 1;
    // ceil mode: a last window must start inside the input or its left padding
    if (ceil_mode && (out - 1) * g.stride[k] >= g.in[k] + g.pad[k]) --out;
    g.out[k] = out;
  }
  return g;
}

PoolGeometry adaptive_geometry(const char* op, const Shape& x, const ReduceDims& output_size, const char* attr) {
  LOOM_CHECK(x.size() >= 3 && x.size() <= 5, op, ": x must be (batch, channels, *spatial) with 1 to 3 spatial "
             "dims, got shape ", shape_str(x));
  LOOM_CHECK(output_size.has_value(), op, ": ", attr, " is required");
  PoolGeometry g;
  const int n = static_cast<int>(x.size()) - 2;
  g.spatial_dims = n;
  g.planes = x[0] * x[1];
  g.out = spatial_values(op, attr, output_size, n, 1);
  for (int k = 3 - n; k < 3; ++k) {
    g.in[k] = x[2 + k - (3 - n)];
    LOOM_CHECK(g.out[k] >= 1, op, ": ", attr, " must be >= 1, got ", g.out[k]);
  }
  return g;
}

Shape pool_output_shape(const PoolGeometry& g, const Shape& x) {
  Shape s{x[0], x[1]};
  for (int k = 3 - g.spatial_dims; k < 3; ++k) s.push_back(g.out[k]);
  return s;
}

PoolGeometry pool_grad_geometry(const NDArray& grad_out, const ReduceDims& input_size, const ReduceDims& kernel,
                                const ReduceDims& stride, const ReduceDims& padding, bool ceil_mode, Shape* input) {
  constexpr const char* kOp = "avg_pool_grad";
  LOOM_CHECK(grad_out.ndim() >= 3 && grad_out.ndim() <= 5, kOp, ": grad_out must be (batch, channels, *spatial) "
             "with 1 to 3 spatial dims, got ", grad_out.describe());
  const int n = grad_out.ndim() - 2;
  LOOM_CHECK(input_size.has_value(), kOp, ": input_size (the pooled input's spatial size) is required");
  const auto size = spatial_values(kOp, "input_size", input_size, n, 1);
  *input = Shape{grad_out.shape()[0], grad_out.shape()[1]};
  for (int k = 3 - n; k < 3; ++k) input->push_back(size[k]);
  const PoolGeometry g = pool_geometry(kOp, *input, kernel, stride, padding, ReduceDims(), ceil_mode);
  LOOM_CHECK(pool_output_shape(g, *input) == grad_out.shape(), kOp, ": grad_out must be avg_pool's output shape ",
             shape_str(pool_output_shape(g, *input)), " for an input of ", shape_str(*input), ", got ",
             grad_out.describe());
  return g;
}

}  // namespace loom::kernels
