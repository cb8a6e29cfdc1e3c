// Max and average pooling on the CPU (opdefs/nn/pooling.yaml): shape rules
// and kernels. Every (batch, channel) plane is pooled on its own, planes
// split across OpenMP threads; a window visits only the elements inside
// the input (padding never wins a max, and avg_pool's divisor counts it
// only with count_include_pad).
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>

#include "generated/kernels/avg_pool.h"
#include "generated/kernels/avg_pool_grad.h"
#include "generated/kernels/max_pool.h"
#include "microkernel/base/error.h"
#include "runtime/core/shape.h"
#include "runtime/kernels/pool_geometry.h"

namespace loom::kernels {
namespace {

template <typename Fn>
void by_dtype(const char* op, DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::kFloat32: return fn(float{});
    case DType::kFloat64: return fn(double{});
    default: LOOM_THROW(ErrorKind::kType, op, ": no CPU kernel for dtype ", dtype_name(dtype));
  }
}

// Calls fn(plane, od, oh, ow, output offset) for every output position,
// planes across threads.
template <typename Fn>
void for_each_output(const PoolGeometry& g, Fn&& fn) {
  const auto& [OD, OH, OW] = g.out;
  const std::int64_t per_plane = g.out_size();
#pragma omp parallel for schedule(static) if (g.planes * per_plane > 16384)
  for (std::int64_t p = 0; p < g.planes; ++p) {
    std::int64_t at = p * per_plane;
    for (std::int64_t od = 0; od < OD; ++od) {
      for (std::int64_t oh = 0; oh < OH; ++oh) {
        for (std::int64_t ow = 0; ow < OW; ++ow, ++at) fn(p, od, oh, ow, at);
      }
    }
  }
}

// The taps t in [lo, hi) of a window whose t-th element, base + t * dilation,
// lies in [0, size): computed once per window, so the loops over taps
// carry no bounds checks.
inline void tap_range(std::int64_t base, std::int64_t dilation, std::int64_t size, std::int64_t kernel,
                      std::int64_t& lo, std::int64_t& hi) {
  lo = base >= 0 ? 0 : (-base + dilation - 1) / dilation;
  hi = base >= size ? 0 : std::min(kernel, (size - base + dilation - 1) / dilation);
  hi = std::max(hi, lo);
}

template <typename T>
void max_pool_typed(const PoolGeometry& g, const NDArray& x_in, NDArray& out, NDArray& indices) {
  const NDArray x = x_in.contiguous();
  const T* in = x.data<const T>();
  T* po = out.data<T>();
  std::int64_t* pi = indices.data<std::int64_t>();
  const auto& [ID, IH, IW] = g.in;
  std::atomic<bool> empty_window{false};
  for_each_output(g, [&](std::int64_t p, std::int64_t od, std::int64_t oh, std::int64_t ow, std::int64_t at) {
    const T* plane = in + p * g.in_size();
    const std::int64_t d0 = od * g.stride[0] - g.pad[0], h0 = oh * g.stride[1] - g.pad[1];
    const std::int64_t w0 = ow * g.stride[2] - g.pad[2];
    std::int64_t dlo, dhi, hlo, hhi, wlo, whi;
    tap_range(d0, g.dilation[0], ID, g.kernel[0], dlo, dhi);
    tap_range(h0, g.dilation[1], IH, g.kernel[1], hlo, hhi);
    tap_range(w0, g.dilation[2], IW, g.kernel[2], wlo, whi);
    T best = -std::numeric_limits<T>::infinity();
    std::int64_t where = -1;
    for (std::int64_t kd = dlo; kd < dhi; ++kd) {
      for (std::int64_t kh = hlo; kh < hhi; ++kh) {
        const std::int64_t row = ((d0 + kd * g.dilation[0]) * IH + h0 + kh * g.dilation[1]) * IW + w0;
        for (std::int64_t kw = wlo; kw < whi; ++kw) {
          const std::int64_t i = row + kw * g.dilation[2];
          const T v = plane[i];
          if (where < 0 || v > best || std::isnan(v)) {  // NaN wins, as in PyTorch
            best = v;
            where = i;
            if (std::isnan(v)) goto done;
          }
        }
      }
    }
  done:
    if (where < 0) empty_window = true;
    po[at] = best;
    pi[at] = where < 0 ? 0 : where;
  });
  LOOM_CHECK(!empty_window, "max_pool: a window lies entirely in the padding (x ", x_in.describe(),
             "); use less padding or dilation");
}

template <typename T>
void avg_pool_typed(const PoolGeometry& g, const NDArray& x_in, NDArray& out, bool count_include_pad) {
  const NDArray x = x_in.contiguous();
  const T* in = x.data<const T>();
  T* po = out.data<T>();
  const auto& [ID, IH, IW] = g.in;
  for_each_output(g, [&](std::int64_t p, std::int64_t od, std::int64_t oh, std::int64_t ow, std::int64_t at) {
    const WindowSpan d = window_span(od, g.stride[0], g.pad[0], g.kernel[0], ID);
    const WindowSpan h = window_span(oh, g.stride[1], g.pad[1], g.kernel[1], IH);
    const WindowSpan w = window_span(ow, g.stride[2], g.pad[2], g.kernel[2], IW);
    const T* plane = in + p * g.in_size();
    T total = 0;
    for (std::int64_t id = d.start; id < d.end; ++id) {
      for (std::int64_t ih = h.start; ih < h.end; ++ih) {
        const T* row = plane + (id * IH + ih) * IW;
        for (std::int64_t iw = w.start; iw < w.end; ++iw) total += row[iw];
      }
    }
    const std::int64_t count = count_include_pad ? d.padded * h.padded * w.padded
                                                 : (d.end - d.start) * (h.end - h.start) * (w.end - w.start);
    po[at] = count > 0 ? total / T(count) : T(0);
  });
}

template <typename T>
void avg_pool_grad_typed(const PoolGeometry& g, const NDArray& dy_in, NDArray& out, bool count_include_pad) {
  const NDArray dy = dy_in.contiguous();
  const T* pd = dy.data<const T>();
  T* po = out.data<T>();
  const auto& [ID, IH, IW] = g.in;
  const auto& [OD, OH, OW] = g.out;
  // one plane per thread: windows of a plane overlap, planes never do
#pragma omp parallel for schedule(static) if (g.planes * g.in_size() > 16384)
  for (std::int64_t p = 0; p < g.planes; ++p) {
    T* plane = po + p * g.in_size();
    std::fill(plane, plane + g.in_size(), T(0));
    const T* grads = pd + p * g.out_size();
    for (std::int64_t od = 0; od < OD; ++od) {
      const WindowSpan d = window_span(od, g.stride[0], g.pad[0], g.kernel[0], ID);
      for (std::int64_t oh = 0; oh < OH; ++oh) {
        const WindowSpan h = window_span(oh, g.stride[1], g.pad[1], g.kernel[1], IH);
        for (std::int64_t ow = 0; ow < OW; ++ow) {
          const WindowSpan w = window_span(ow, g.stride[2], g.pad[2], g.kernel[2], IW);
          const std::int64_t count = count_include_pad ? d.padded * h.padded * w.padded
                                                       : (d.end - d.start) * (h.end - h.start) * (w.end - w.start);
          if (count <= 0) continue;
          const T share = grads[(od * OH + oh) * OW + ow] / T(count);
          for (std::int64_t id = d.start; id < d.end; ++id) {
            for (std::int64_t ih = h.start; ih < h.end; ++ih) {
              T* row = plane + (id * IH + ih) * IW;
              for (std::int64_t iw = w.start; iw < w.end; ++iw) row[iw] += share;
            }
          }
        }
      }
    }
  }
}

}  // namespace

std::vector<Shape> infer_max_pool(const NDArray& x, ReduceDims kernel, ReduceDims stride, ReduceDims padding,
                                  ReduceDims dilation, bool ceil_mode) {
  const PoolGeometry g = pool_geometry("max_pool", x.shape(), kernel, stride, padding, dilation, ceil_mode);
  const Shape out = pool_output_shape(g, x.shape());
  return {out, out};
}

void max_pool_cpu(NDArray& out, NDArray& indices, const NDArray& x, ReduceDims kernel, ReduceDims stride,
                  ReduceDims padding, ReduceDims dilation, bool ceil_mode) {
  const PoolGeometry g = pool_geometry("max_pool", x.shape(), kernel, stride, padding, dilation, ceil_mode);
  if (out.numel() == 0) return;
  by_dtype("max_pool", out.dtype(), [&](auto tag) { max_pool_typed<decltype(tag)>(g, x, out, indices); });
}

Shape infer_avg_pool(const NDArray& x, ReduceDims kernel, ReduceDims stride, ReduceDims padding, bool ceil_mode,
                     bool count_include_pad) {
  const PoolGeometry g = pool_geometry("avg_pool", x.shape(), kernel, stride, padding, ReduceDims(), ceil_mode);
  return pool_output_shape(g, x.shape());
}

void avg_pool_cpu(NDArray& out, const NDArray& x, ReduceDims kernel, ReduceDims stride, ReduceDims padding,
                  bool ceil_mode, bool count_include_pad) {
  const PoolGeometry g = pool_geometry("avg_pool", x.shape(), kernel, stride, padding, ReduceDims(), ceil_mode);
  if (out.numel() == 0) return;
  by_dtype("avg_pool", out.dtype(),
           [&](auto tag) { avg_pool_typed<decltype(tag)>(g, x, out, count_include_pad); });
}

Shape infer_avg_pool_grad(const NDArray& grad_out, ReduceDims input_size, ReduceDims kernel, ReduceDims stride,
                          ReduceDims padding, bool ceil_mode, bool count_include_pad) {
  Shape input;
  pool_grad_geometry(grad_out, input_size, kernel, stride, padding, ceil_mode, &input);
  return input;
}

void avg_pool_grad_cpu(NDArray& out, const NDArray& grad_out, ReduceDims input_size, ReduceDims kernel,
                       ReduceDims stride, ReduceDims padding, bool ceil_mode, bool count_include_pad) {
  Shape input;
  const PoolGeometry g = pool_grad_geometry(grad_out, input_size, kernel, stride, padding, ceil_mode, &input);
  if (out.numel() == 0) return;
  by_dtype("avg_pool_grad", out.dtype(),
           [&](auto tag) { avg_pool_grad_typed<decltype(tag)>(g, grad_out, out, count_include_pad); });
}

}  // namespace loom::kernels
