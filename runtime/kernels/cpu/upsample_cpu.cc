// Upsampling on the CPU (opdefs/nn/upsample.yaml): shape rules and the four
// kernels. Planes ((batch, channel) pairs) split across OpenMP threads;
// the gradients add into their own plane only, so no two threads share an
// element. Index arithmetic: runtime/kernels/upsample_layout.h.
#include <algorithm>
#include <vector>

#include "generated/kernels/upsample_bilinear.h"
#include "generated/kernels/upsample_bilinear_grad.h"
#include "generated/kernels/upsample_nearest.h"
#include "generated/kernels/upsample_nearest_grad.h"
#include "microkernel/base/error.h"
#include "runtime/kernels/float_dtype.h"
#include "runtime/core/shape.h"
#include "runtime/kernels/conv_geometry.h"
#include "runtime/kernels/pool_geometry.h"
#include "runtime/kernels/upsample_layout.h"

namespace loom::kernels {
namespace {

// (batch, channels, *size) for x's batch and channels; checks size >= 1 and x's spatial dims >= 1.
Shape resized(const char* op, const Shape& x, const ReduceDims& size, int required_dims = 0) {
  LOOM_CHECK(x.size() >= 3 && x.size() <= 5, op, ": x must be (batch, channels, *spatial) with 1 to 3 spatial "
             "dims, got shape ", shape_str(x));
  const int n = static_cast<int>(x.size()) - 2;
  LOOM_CHECK(required_dims == 0 || n == required_dims, op, ": x must have ", required_dims, " spatial dims, got ",
             shape_str(x));
  const PoolGeometry g = adaptive_geometry(op, x, size, "size");
  Shape out{x[0], x[1]};
  for (int k = 3 - n; k < 3; ++k) {
    LOOM_CHECK(g.in[k] >= 1, op, ": every spatial dim must be >= 1, got ", shape_str(x));
    out.push_back(g.out[k]);
  }
  return out;
}

// The input shape of a *_grad op: grad_out's batch and channels, input_size's spatial dims.
Shape input_of(const char* op, const NDArray& grad_out, const ReduceDims& input_size, int required_dims = 0) {
  LOOM_CHECK(grad_out.ndim() >= 3 && grad_out.ndim() <= 5, op, ": grad_out must be (batch, channels, *spatial), "
             "got ", grad_out.describe());
  LOOM_CHECK(input_size.has_value(), op, ": input_size is required");
  const int n = grad_out.ndim() - 2;
  const auto sizes = spatial_values(op, "input_size", input_size, n, 1);
  Shape in{grad_out.shape()[0], grad_out.shape()[1]};
  for (int k = 3 - n; k < 3; ++k) in.push_back(sizes[k]);
  // the forward op's own checks, and grad_out must be its output
  const std::vector<std::int64_t> out_sizes(grad_out.shape().begin() + 2, grad_out.shape().end());
  LOOM_CHECK(resized(op, in, ReduceDims(out_sizes), required_dims) == grad_out.shape(), op, ": grad_out ",
             grad_out.describe(), " does not match input_size");
  return in;
}

PoolGeometry planes(const Shape& in, const Shape& out) {
  return adaptive_geometry("upsample", in, ReduceDims(std::vector<std::int64_t>(out.begin() + 2, out.end())));
}

template <typename T>
void nearest(const PoolGeometry& g, const T* in, T* out, bool adjoint) {
  std::vector<std::int64_t> src[3];
  for (int k = 0; k < 3; ++k) {
    for (std::int64_t i = 0; i < g.out[k]; ++i) src[k].push_back(nearest_source(i, g.in[k], g.out[k]));
  }
#pragma omp parallel for schedule(static) if (g.planes * g.out_size() > 32768)
  for (std::int64_t p = 0; p < g.planes; ++p) {
    const T* pin = in + p * (adjoint ? g.out_size() : g.in_size());
    T* pout = out + p * (adjoint ? g.in_size() : g.out_size());
    if (adjoint) std::fill(pout, pout + g.in_size(), T(0));
    std::int64_t at = 0;
    for (std::int64_t d = 0; d < g.out[0]; ++d) {
      for (std::int64_t h = 0; h < g.out[1]; ++h) {
        const std::int64_t row = (src[0][d] * g.in[1] + src[1][h]) * g.in[2];
        for (std::int64_t w = 0; w < g.out[2]; ++w, ++at) {
          if (adjoint) {
            pout[row + src[2][w]] += pin[at];
          } else {
            pout[at] = pin[row + src[2][w]];
          }
        }
      }
    }
  }
}

template <typename T>
void bilinear(const PoolGeometry& g, const T* in, T* out, bool align_corners, bool adjoint) {
  std::vector<LinearTap> th, tw;
  for (std::int64_t i = 0; i < g.out[1]; ++i) th.push_back(linear_tap(i, g.in[1], g.out[1], align_corners));
  for (std::int64_t i = 0; i < g.out[2]; ++i) tw.push_back(linear_tap(i, g.in[2], g.out[2], align_corners));
  const std::int64_t IW = g.in[2];
#pragma omp parallel for schedule(static) if (g.planes * g.out_size() > 32768)
  for (std::int64_t p = 0; p < g.planes; ++p) {
    const T* pin = in + p * (adjoint ? g.out_size() : g.in_size());
    T* pout = out + p * (adjoint ? g.in_size() : g.out_size());
    if (adjoint) std::fill(pout, pout + g.in_size(), T(0));
    for (std::int64_t h = 0; h < g.out[1]; ++h) {
      const LinearTap a = th[static_cast<std::size_t>(h)];
      for (std::int64_t w = 0; w < g.out[2]; ++w) {
        const LinearTap b = tw[static_cast<std::size_t>(w)];
        const T w00 = T((1 - a.lambda) * (1 - b.lambda)), w01 = T((1 - a.lambda) * b.lambda);
        const T w10 = T(a.lambda * (1 - b.lambda)), w11 = T(a.lambda * b.lambda);
        const std::int64_t at = h * g.out[2] + w;
        if (adjoint) {
          const T v = pin[at];
          pout[a.i0 * IW + b.i0] += w00 * v;
          pout[a.i0 * IW + b.i1] += w01 * v;
          pout[a.i1 * IW + b.i0] += w10 * v;
          pout[a.i1 * IW + b.i1] += w11 * v;
        } else {
          pout[at] = w00 * pin[a.i0 * IW + b.i0] + w01 * pin[a.i0 * IW + b.i1] + w10 * pin[a.i1 * IW + b.i0] +
                     w11 * pin[a.i1 * IW + b.i1];
        }
      }
    }
  }
}

template <typename Kernel>
void run(const char* op, NDArray& out, const NDArray& src, const PoolGeometry& g, Kernel kernel) {
  if (out.numel() == 0) return;
  const NDArray c = src.contiguous();
  by_dtype(op, out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    kernel(g, c.data<const T>(), out.data<T>());
  });
}

}  // namespace

Shape infer_upsample_nearest(const NDArray& x, ReduceDims size) { return resized("upsample_nearest", x.shape(), size); }

void upsample_nearest_cpu(NDArray& out, const NDArray& x, ReduceDims size) {
  run("upsample_nearest", out, x, planes(x.shape(), out.shape()),
      [](const PoolGeometry& g, const auto* in, auto* o) { nearest(g, in, o, false); });
}

Shape infer_upsample_nearest_grad(const NDArray& grad_out, ReduceDims input_size) {
  return input_of("upsample_nearest_grad", grad_out, input_size);
}

void upsample_nearest_grad_cpu(NDArray& out, const NDArray& grad_out, ReduceDims input_size) {
  run("upsample_nearest_grad", out, grad_out, planes(out.shape(), grad_out.shape()),
      [](const PoolGeometry& g, const auto* in, auto* o) { nearest(g, in, o, true); });
}

Shape infer_upsample_bilinear(const NDArray& x, ReduceDims size, bool align_corners) {
  return resized("upsample_bilinear", x.shape(), size, 2);
}

void upsample_bilinear_cpu(NDArray& out, const NDArray& x, ReduceDims size, bool align_corners) {
  run("upsample_bilinear", out, x, planes(x.shape(), out.shape()),
      [=](const PoolGeometry& g, const auto* in, auto* o) { bilinear(g, in, o, align_corners, false); });
}

Shape infer_upsample_bilinear_grad(const NDArray& grad_out, ReduceDims input_size, bool align_corners) {
  return input_of("upsample_bilinear_grad", grad_out, input_size, 2);
}

void upsample_bilinear_grad_cpu(NDArray& out, const NDArray& grad_out, ReduceDims input_size, bool align_corners) {
  run("upsample_bilinear_grad", out, grad_out, planes(out.shape(), grad_out.shape()),
      [=](const PoolGeometry& g, const auto* in, auto* o) { bilinear(g, in, o, align_corners, true); });
}

}  // namespace loom::kernels
