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
#include <vector>

#include "generated/kernels/adaptive_avg_pool.h"
#include "generated/kernels/adaptive_avg_pool_grad.h"
#include "generated/kernels/adaptive_max_pool.h"
#include "generated/kernels/avg_pool.h"
#include "generated/kernels/avg_pool_grad.h"
#include "generated/kernels/max_pool.h"
#include "microkernel/base/error.h"
#include "runtime/kernels/float_dtype.h"
#include "runtime/core/shape.h"
#include "runtime/kernels/conv_geometry.h"
#include "runtime/kernels/pool_geometry.h"
#include "runtime/kernels/pool_kernels.h"

namespace loom::kernels {
namespace {

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

// Whether `v` replaces `best` in a max scan: larger, or NaN (the first NaN
// wins and stays, as in PyTorch); ties keep the earlier element.
template <typename T>
inline bool takes_over(T v, T best) {
  return !(best != best) && (v > best || v != v);
}

// The common case of CNNs, 2x2 windows with stride 2 and no padding, in one
// pass. Each output takes the max of its four inputs, then the first of
// them in row-major order that equals it (the direct scan's winner), all
// with selects: the loop vectorises and has no branch to mispredict on
// random data, about 7x faster than comparing element by element. A row
// holding a NaN is redone by that scan, where NaN wins as in PyTorch.
template <typename T>
bool max_pool_2x2(const PoolGeometry& g, const T* in, T* po, std::int64_t* pi) {
  if (g.in[0] != 1 || g.kernel[0] != 1 || g.kernel[1] != 2 || g.kernel[2] != 2 || g.stride[1] != 2 ||
      g.stride[2] != 2 || g.pad[1] != 0 || g.pad[2] != 0 || g.dilation[1] != 1 || g.dilation[2] != 1) {
    return false;
  }
  const std::int64_t IH = g.in[1], IW = g.in[2], OH = g.out[1], OW = g.out[2];
  if (2 * OH > IH || 2 * OW > IW || IW > (std::int64_t{1} << 30)) return false;  // a partial window (ceil_mode)
  const std::int64_t rows = g.planes * OH;
  constexpr std::int64_t kChunk = 256;
  const auto iw = static_cast<std::int32_t>(IW);
#pragma omp parallel for schedule(static) if (rows * OW > 16384)
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t p = r / OH, oh = r % OH;
    const std::int64_t top = 2 * oh * IW;
    const T* r0 = in + p * IH * IW + top;
    const T* r1 = r0 + IW;
    T* o = po + r * OW;
    std::int64_t* oi = pi + r * OW;
    std::int32_t offset[kChunk];
    int nan = 0;
    for (std::int64_t begin = 0; begin < OW; begin += kChunk) {
      const std::int64_t n = std::min(kChunk, OW - begin);
      const T* a0 = r0 + 2 * begin;
      const T* a1 = r1 + 2 * begin;
#pragma omp simd reduction(| : nan)
      for (std::int64_t j = 0; j < n; ++j) {
        const T a = a0[2 * j], b = a0[2 * j + 1], c = a1[2 * j], d = a1[2 * j + 1];
        const T ab = a < b ? b : a, cd = c < d ? d : c;
        const T m = ab < cd ? cd : ab;
        offset[j] = a == m ? 0 : b == m ? 1 : c == m ? iw : iw + 1;
        nan |= static_cast<int>(a != a) | static_cast<int>(b != b) | static_cast<int>(c != c) |
               static_cast<int>(d != d);
        o[begin + j] = m;
      }
      for (std::int64_t j = 0; j < n; ++j) oi[begin + j] = top + 2 * (begin + j) + offset[j];
    }
    if (nan == 0) continue;
    for (std::int64_t ow = 0; ow < OW; ++ow) {  // the scan, for rows with a NaN
      const std::int64_t at = top + 2 * ow;
      const T window[4] = {r0[2 * ow], r0[2 * ow + 1], r1[2 * ow], r1[2 * ow + 1]};
      const std::int64_t where[4] = {at, at + 1, at + IW, at + IW + 1};
      int best = 0;
      for (int k = 1; k < 4; ++k) {
        if (takes_over(window[k], window[best])) best = k;
      }
      o[ow] = window[best];
      oi[ow] = where[best];
    }
  }
  return true;
}

// max_pool over at most 2 spatial dims without dilation, separably: each
// input row is max-pooled along W (remembering the column), then each
// output row takes the max over its window's rows, a loop along the
// output row that vectorises. A window's first maximum in row-major order
// wins, as in the direct scan. Returns false where this does not apply.
template <typename T>
bool max_pool_2d(const PoolGeometry& g, const T* in, T* po, std::int64_t* pi) {
  if (g.in[0] != 1 || g.kernel[0] != 1 || g.dilation[1] != 1 || g.dilation[2] != 1) return false;
  const std::int64_t IH = g.in[1], IW = g.in[2], OH = g.out[1], OW = g.out[2];
  bool empty = false;
#pragma omp parallel reduction(|| : empty) if (g.planes * g.out_size() > 16384)
  {
    std::vector<T> row_max(static_cast<std::size_t>(IH * OW));
    std::vector<std::int64_t> row_col(static_cast<std::size_t>(IH * OW));
#pragma omp for schedule(static)
    for (std::int64_t p = 0; p < g.planes; ++p) {
      const T* plane = in + p * IH * IW;
      for (std::int64_t ih = 0; ih < IH; ++ih) {  // along W
        const T* row = plane + ih * IW;
        for (std::int64_t ow = 0; ow < OW; ++ow) {
          const std::int64_t w0 = ow * g.stride[2] - g.pad[2];
          const std::int64_t lo = std::max<std::int64_t>(w0, 0), hi = std::min(w0 + g.kernel[2], IW);
          T best = lo < hi ? row[lo] : T(0);
          std::int64_t col = lo;
          for (std::int64_t iw = lo + 1; iw < hi; ++iw) {
            if (takes_over(row[iw], best)) {
              best = row[iw];
              col = iw;
            }
          }
          empty = empty || lo >= hi;
          row_max[ih * OW + ow] = best;
          row_col[ih * OW + ow] = col;
        }
      }
      for (std::int64_t oh = 0; oh < OH; ++oh) {  // along H, across the output row
        const std::int64_t h0 = oh * g.stride[1] - g.pad[1];
        const std::int64_t lo = std::max<std::int64_t>(h0, 0), hi = std::min(h0 + g.kernel[1], IH);
        T* o = po + (p * OH + oh) * OW;
        std::int64_t* oi = pi + (p * OH + oh) * OW;
        if (lo >= hi) {
          empty = true;
          continue;
        }
        const T* first = row_max.data() + lo * OW;
        const std::int64_t* first_col = row_col.data() + lo * OW;
        for (std::int64_t ow = 0; ow < OW; ++ow) {
          o[ow] = first[ow];
          oi[ow] = lo * IW + first_col[ow];
        }
        for (std::int64_t ih = lo + 1; ih < hi; ++ih) {
          const T* v = row_max.data() + ih * OW;
          const std::int64_t* c = row_col.data() + ih * OW;
#pragma omp simd
          for (std::int64_t ow = 0; ow < OW; ++ow) {
            const bool take = takes_over(v[ow], o[ow]);
            o[ow] = take ? v[ow] : o[ow];
            oi[ow] = take ? ih * IW + c[ow] : oi[ow];
          }
        }
      }
    }
  }
  LOOM_CHECK(!empty, "max_pool: a window lies entirely in the padding; use less padding");
  return true;
}

template <typename T>
void max_pool_typed(const PoolGeometry& g, const NDArray& x_in, NDArray& out, NDArray& indices) {
  const NDArray x = x_in.contiguous();
  if (max_pool_2x2(g, x.data<const T>(), out.data<T>(), indices.data<std::int64_t>())) return;
  if (max_pool_2d(g, x.data<const T>(), out.data<T>(), indices.data<std::int64_t>())) return;
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

// avg_pool over 2-D windows that all lie inside the input (no padding, no
// partial window of ceil_mode): every divisor is the window's size. Each
// output row is one loop along the row that vectorises (the generic loop
// calls window_span per output), summing its window in the generic loop's
// order, rows then columns, so results are bit-identical; 2x2 windows at
// stride 2 spell their four loads out. Returns false where this does not apply.
inline bool full_2d_windows(const PoolGeometry& g) {
  return g.in[0] == 1 && g.kernel[0] == 1 && g.pad[0] == 0 && g.pad[1] == 0 && g.pad[2] == 0 &&
         g.dilation[1] == 1 && g.dilation[2] == 1 &&
         (g.out[1] - 1) * g.stride[1] + g.kernel[1] <= g.in[1] && (g.out[2] - 1) * g.stride[2] + g.kernel[2] <= g.in[2];
}

template <typename T>
bool avg_pool_full_windows(const PoolGeometry& g, const T* in, T* po) {
  if (!full_2d_windows(g)) return false;
  const std::int64_t IH = g.in[1], IW = g.in[2], OH = g.out[1], OW = g.out[2];
  const std::int64_t KH = g.kernel[1], KW = g.kernel[2], SH = g.stride[1], SW = g.stride[2];
  const T count = T(KH * KW);
  const std::int64_t rows = g.planes * OH;
#pragma omp parallel for schedule(static) if (rows * OW > 16384)
  for (std::int64_t r = 0; r < rows; ++r) {
    const T* top = in + (r / OH) * IH * IW + (r % OH) * SH * IW;
    T* o = po + r * OW;
    if (KH == 2 && KW == 2 && SW == 2) {
      const T* r1 = top + IW;
#pragma omp simd
      for (std::int64_t j = 0; j < OW; ++j) o[j] = (((T(0) + top[2 * j]) + top[2 * j + 1]) + r1[2 * j]) + r1[2 * j + 1];
    } else {
      for (std::int64_t j = 0; j < OW; ++j) o[j] = T(0);
      for (std::int64_t kh = 0; kh < KH; ++kh) {
        for (std::int64_t kw = 0; kw < KW; ++kw) {
          const T* src = top + kh * IW + kw;
#pragma omp simd
          for (std::int64_t j = 0; j < OW; ++j) o[j] += src[j * SW];
        }
      }
    }
#pragma omp simd
    for (std::int64_t j = 0; j < OW; ++j) o[j] = o[j] / count;
  }
  return true;
}

// avg_pool_grad where the windows tile the input (full windows, stride =
// kernel): each input element takes exactly one share, 0 + dy / count as in
// the generic loop, and rows or columns past the last window take 0. Written
// once, without the zero fill and read-modify-write of the generic loop.
template <typename T>
bool avg_pool_grad_tiled(const PoolGeometry& g, const T* pd, T* po) {
  if (!full_2d_windows(g) || g.stride[1] != g.kernel[1] || g.stride[2] != g.kernel[2]) return false;
  const std::int64_t IH = g.in[1], IW = g.in[2], OH = g.out[1], OW = g.out[2];
  const std::int64_t KH = g.kernel[1], KW = g.kernel[2];
  const T count = T(KH * KW);
  const std::int64_t rows = g.planes * IH;
#pragma omp parallel for schedule(static) if (rows * IW > 16384)
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t oh = (r % IH) / KH;
    T* o = po + r * IW;
    if (oh >= OH) {
      std::fill(o, o + IW, T(0));
      continue;
    }
    const T* grads = pd + (r / IH) * OH * OW + oh * OW;
    if (KW == 2) {
#pragma omp simd
      for (std::int64_t j = 0; j < OW; ++j) {
        const T share = T(0) + grads[j] / count;
        o[2 * j] = share;
        o[2 * j + 1] = share;
      }
    } else {
      for (std::int64_t j = 0; j < OW; ++j) {
        const T share = T(0) + grads[j] / count;
        for (std::int64_t k = 0; k < KW; ++k) o[j * KW + k] = share;
      }
    }
    std::fill(o + OW * KW, o + IW, T(0));
  }
  return true;
}

template <typename T>
void avg_pool_typed(const PoolGeometry& g, const NDArray& x_in, NDArray& out, bool count_include_pad) {
  const NDArray x = x_in.contiguous();
  const T* in = x.data<const T>();
  T* po = out.data<T>();
  if (avg_pool_full_windows(g, in, po)) return;
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
  if (avg_pool_grad_tiled(g, pd, po)) return;
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

void max_pool_scatter_cpu(NDArray& dx, const NDArray& grad_in, const NDArray& indices_in) {
  const NDArray grad = grad_in.contiguous(), indices = indices_in.contiguous();
  const std::int64_t planes = dx.ndim() >= 2 ? dx.shape()[0] * dx.shape()[1] : 1;
  if (planes == 0) return;
  const std::int64_t plane_size = dx.numel() / planes, per_plane = grad.numel() / planes;
  const std::int64_t* idx = indices.data<const std::int64_t>();
  by_dtype("max_pool (backward)", dx.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* g = grad.data<const T>();
    T* out = dx.data<T>();
    // a plane per thread: windows of one plane may share an argmax
#pragma omp parallel for schedule(static) if (dx.numel() > 32768)
    for (std::int64_t p = 0; p < planes; ++p) {
      T* plane = out + p * plane_size;
      std::fill(plane, plane + plane_size, T(0));
      for (std::int64_t k = p * per_plane; k < (p + 1) * per_plane; ++k) plane[idx[k]] += g[k];
    }
  });
}

namespace {

// Calls fn(p, k, d0, d1, h0, h1, w0, w1, count) for output k of plane p
// and its window [d0, d1) x [h0, h1) x [w0, w1) of `count` elements,
// planes across threads (each call touches its own plane only).
template <typename Fn>
void for_each_adaptive_window(const PoolGeometry& g, Fn&& fn) {
#pragma omp parallel for schedule(static) if (g.planes * g.in_size() > 32768)
  for (std::int64_t p = 0; p < g.planes; ++p) {
    std::int64_t k = 0;
    for (std::int64_t od = 0; od < g.out[0]; ++od) {
      std::int64_t d0, d1;
      adaptive_window(od, g.in[0], g.out[0], d0, d1);
      for (std::int64_t oh = 0; oh < g.out[1]; ++oh) {
        std::int64_t h0, h1;
        adaptive_window(oh, g.in[1], g.out[1], h0, h1);
        for (std::int64_t ow = 0; ow < g.out[2]; ++ow, ++k) {
          std::int64_t w0, w1;
          adaptive_window(ow, g.in[2], g.out[2], w0, w1);
          fn(p, k, d0, d1, h0, h1, w0, w1, (d1 - d0) * (h1 - h0) * (w1 - w0));
        }
      }
    }
  }
}

// Each output averages its window.
template <typename T>
void adaptive_forward(const PoolGeometry& g, const T* in, T* out) {
  for_each_adaptive_window(g, [&](std::int64_t p, std::int64_t k, std::int64_t d0, std::int64_t d1, std::int64_t h0,
                                  std::int64_t h1, std::int64_t w0, std::int64_t w1, std::int64_t count) {
    const T* plane = in + p * g.in_size();
    T total = 0;
    for (std::int64_t d = d0; d < d1; ++d) {
      for (std::int64_t h = h0; h < h1; ++h) {
        const T* row = plane + (d * g.in[1] + h) * g.in[2];
        for (std::int64_t w = w0; w < w1; ++w) total += row[w];
      }
    }
    out[p * g.out_size() + k] = total / T(count);
  });
}

// Each output takes its window's maximum and where it lies in the plane
// (row-major first among equals; the first NaN wins, as max_pool's scan).
// Adaptive windows are never empty, so every output has an argmax.
template <typename T>
void adaptive_max_forward(const PoolGeometry& g, const T* in, T* out, std::int64_t* indices) {
  for_each_adaptive_window(g, [&](std::int64_t p, std::int64_t k, std::int64_t d0, std::int64_t d1, std::int64_t h0,
                                  std::int64_t h1, std::int64_t w0, std::int64_t w1, std::int64_t) {
    const T* plane = in + p * g.in_size();
    std::int64_t where = (d0 * g.in[1] + h0) * g.in[2] + w0;
    T best = plane[where];
    for (std::int64_t d = d0; d < d1; ++d) {
      for (std::int64_t h = h0; h < h1; ++h) {
        const std::int64_t row = (d * g.in[1] + h) * g.in[2];
        for (std::int64_t w = w0; w < w1; ++w) {
          if (takes_over(plane[row + w], best)) {
            best = plane[row + w];
            where = row + w;
          }
        }
      }
    }
    out[p * g.out_size() + k] = best;
    indices[p * g.out_size() + k] = where;
  });
}

// Each output's gradient spread evenly over its window (the adjoint).
template <typename T>
void adaptive_backward(const PoolGeometry& g, const T* dy, T* dx) {
  std::fill(dx, dx + g.planes * g.in_size(), T(0));
  for_each_adaptive_window(g, [&](std::int64_t p, std::int64_t k, std::int64_t d0, std::int64_t d1, std::int64_t h0,
                                  std::int64_t h1, std::int64_t w0, std::int64_t w1, std::int64_t count) {
    T* plane = dx + p * g.in_size();
    const T share = dy[p * g.out_size() + k] / T(count);
    for (std::int64_t d = d0; d < d1; ++d) {
      for (std::int64_t h = h0; h < h1; ++h) {
        T* row = plane + (d * g.in[1] + h) * g.in[2];
        for (std::int64_t w = w0; w < w1; ++w) row[w] += share;
      }
    }
  });
}

// The shape adaptive pooling gives x: every window must hold an element,
// so no spatial dim of a non-empty x may be 0.
Shape adaptive_output_shape(const char* op, const NDArray& x, const ReduceDims& output_size) {
  const PoolGeometry g = adaptive_geometry(op, x.shape(), output_size);
  Shape s{x.shape()[0], x.shape()[1]};
  for (int k = 3 - g.spatial_dims; k < 3; ++k) {
    LOOM_CHECK(g.in[k] >= 1 || x.shape()[0] * x.shape()[1] == 0, op, ": every spatial dim of x must be >= 1, got ",
               x.describe());
    s.push_back(g.out[k]);
  }
  return s;
}

// grad_out (batch, channels, *out) and the input's spatial size: the input's shape.
Shape adaptive_input_shape(const NDArray& grad_out, const ReduceDims& input_size) {
  constexpr const char* kOp = "adaptive_avg_pool_grad";
  LOOM_CHECK(grad_out.ndim() >= 3 && grad_out.ndim() <= 5, kOp, ": grad_out must be (batch, channels, *spatial) "
             "with 1 to 3 spatial dims, got ", grad_out.describe());
  LOOM_CHECK(input_size.has_value(), kOp, ": input_size is required");
  const int n = grad_out.ndim() - 2;
  const auto sizes = spatial_values(kOp, "input_size", input_size, n, 1);
  Shape input{grad_out.shape()[0], grad_out.shape()[1]};
  for (int k = 3 - n; k < 3; ++k) {
    LOOM_CHECK(sizes[k] >= 1, kOp, ": input_size must be >= 1, got ", sizes[k]);
    input.push_back(sizes[k]);
  }
  return input;
}

}  // namespace

Shape infer_adaptive_avg_pool(const NDArray& x, ReduceDims output_size) {
  return adaptive_output_shape("adaptive_avg_pool", x, output_size);
}

void adaptive_avg_pool_cpu(NDArray& out, const NDArray& x_in, ReduceDims output_size) {
  const PoolGeometry g = adaptive_geometry("adaptive_avg_pool", x_in.shape(), output_size);
  if (out.numel() == 0) return;
  const NDArray x = x_in.contiguous();
  by_dtype("adaptive_avg_pool", out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    adaptive_forward<T>(g, x.data<const T>(), out.data<T>());
  });
}

std::vector<Shape> infer_adaptive_max_pool(const NDArray& x, ReduceDims output_size) {
  const Shape out = adaptive_output_shape("adaptive_max_pool", x, output_size);
  return {out, out};
}

void adaptive_max_pool_cpu(NDArray& out, NDArray& indices, const NDArray& x_in, ReduceDims output_size) {
  const PoolGeometry g = adaptive_geometry("adaptive_max_pool", x_in.shape(), output_size);
  if (out.numel() == 0) return;
  const NDArray x = x_in.contiguous();
  by_dtype("adaptive_max_pool", out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    adaptive_max_forward<T>(g, x.data<const T>(), out.data<T>(), indices.data<std::int64_t>());
  });
}

Shape infer_adaptive_avg_pool_grad(const NDArray& grad_out, ReduceDims input_size) {
  return adaptive_input_shape(grad_out, input_size);
}

void adaptive_avg_pool_grad_cpu(NDArray& out, const NDArray& grad_out, ReduceDims input_size) {
  const Shape input = adaptive_input_shape(grad_out, input_size);
  std::vector<std::int64_t> sizes(grad_out.shape().begin() + 2, grad_out.shape().end());
  const PoolGeometry g = adaptive_geometry("adaptive_avg_pool_grad", input, ReduceDims(sizes));
  if (out.numel() == 0) return;
  const NDArray dy = grad_out.contiguous();
  by_dtype("adaptive_avg_pool_grad", out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    adaptive_backward<T>(g, dy.data<const T>(), out.data<T>());
  });
}

}  // namespace loom::kernels
