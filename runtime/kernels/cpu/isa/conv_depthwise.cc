// See conv_depthwise.h. Built per ISA (isa_dispatch.h): the row loops are
// where the time goes, and AVX-512 runs a 28-wide row in two vectors.
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "microkernel/base/error.h"
#include "runtime/kernels/cpu/conv_depthwise.h"
#include "runtime/kernels/cpu/isa_dispatch.h"
#include "runtime/kernels/float_dtype.h"

namespace loom::kernels {
inline namespace LOOM_CPU_ISA {
namespace {

// The output columns ox in [lo, hi) whose input column ox * stride + off
// falls inside [0, width).
struct ColumnRange {
  std::int64_t lo, hi;
};

ColumnRange valid_columns(std::int64_t off, std::int64_t stride, std::int64_t width, std::int64_t out_width) {
  const std::int64_t lo = off >= 0 ? 0 : (-off + stride - 1) / stride;
  const std::int64_t last = width - 1 - off;  // ox * stride <= last
  const std::int64_t hi = last < 0 ? 0 : std::min(out_width, last / stride + 1);
  return {lo, std::max(lo, hi)};
}

// The geometry of one plane: rows and columns of the image (input) and of
// the columns (output), kernel, stride, padding and dilation per axis.
struct Plane {
  std::int64_t h, w, oh, ow, kh, kw, sy, sx, py, px, dy, dx;
};

Plane plane_of(const ConvGeometry& g) {
  return {g.image[1], g.image[2], g.cols[1], g.cols[2], g.kernel[1], g.kernel[2], g.stride[1], g.stride[2],
          g.pad[1],   g.pad[2],   g.dilation[1], g.dilation[2]};
}

// Threads over planes once the work repays waking them (see conv_cpu.cc's SerialIfSmall).
constexpr std::int64_t kParallelMacs = 1 << 16;

// Per kernel column kx: the offset of its input column (ox * sx + off) and
// the output columns where that input exists; `inner` is where every kx's
// does, so a row's interior runs all taps in one pass.
struct Taps {
  std::vector<std::int64_t> off;
  std::vector<ColumnRange> cols;
  ColumnRange inner{0, 0};
};

Taps taps_of(const Plane& p) {
  Taps t;
  std::int64_t lo = 0, hi = p.ow;
  for (std::int64_t kx = 0; kx < p.kw; ++kx) {
    const std::int64_t off = kx * p.dx - p.px;
    const ColumnRange r = valid_columns(off, p.sx, p.w, p.ow);
    t.off.push_back(off);
    t.cols.push_back(r);
    lo = std::max(lo, r.lo);
    hi = std::min(hi, r.hi);
  }
  t.inner = {lo, std::max(lo, hi)};
  return t;
}

// orow[ox] += sum over kx of w[kx] * irow[ox * sx + off[kx]] for every valid
// (ox, kx): the edges tap by tap, the interior in one pass over the row
// (one load and store of orow per element instead of one per tap).
template <typename T>
inline void correlate_row(T* orow, const T* irow, const T* w, const Plane& p, const Taps& t) {
  for (std::int64_t kx = 0; kx < p.kw; ++kx) {
    const T wv = w[kx];
    const ColumnRange r = t.cols[kx];
    for (std::int64_t ox = r.lo; ox < std::min(r.hi, t.inner.lo); ++ox) orow[ox] += wv * irow[ox * p.sx + t.off[kx]];
    for (std::int64_t ox = std::max(r.lo, t.inner.hi); ox < r.hi; ++ox) orow[ox] += wv * irow[ox * p.sx + t.off[kx]];
  }
  const std::int64_t lo = t.inner.lo, hi = t.inner.hi;
  if (p.sx == 1 && p.kw == 3) {  // the common 3x3: three taps unrolled
    const T w0 = w[0], w1 = w[1], w2 = w[2];
    const T *s0 = irow + t.off[0], *s1 = irow + t.off[1], *s2 = irow + t.off[2];
#pragma omp simd
    for (std::int64_t ox = lo; ox < hi; ++ox) orow[ox] += w0 * s0[ox] + w1 * s1[ox] + w2 * s2[ox];
    return;
  }
  for (std::int64_t kx = 0; kx < p.kw; ++kx) {
    const T wv = w[kx];
    const std::int64_t off = t.off[kx];
    if (p.sx == 1) {
#pragma omp simd
      for (std::int64_t ox = lo; ox < hi; ++ox) orow[ox] += wv * irow[ox + off];
    } else {
      for (std::int64_t ox = lo; ox < hi; ++ox) orow[ox] += wv * irow[ox * p.sx + off];
    }
  }
}

template <typename T>
void forward(const ConvGeometry& g, NDArray& out, const NDArray& x_in, const NDArray& w_in, const NDArray& bias) {
  const NDArray x = x_in.contiguous(), wt = w_in.contiguous();
  const NDArray b = bias.defined() ? bias.contiguous() : NDArray();
  const Plane p = plane_of(g);
  const Taps taps = taps_of(p);
  const T* px = x.data<const T>();
  const T* pw = wt.data<const T>();
  const T* pb = b.defined() ? b.data<const T>() : nullptr;
  T* po = out.data<T>();
  const std::int64_t planes = g.batch * g.image_channels, C = g.image_channels;
#pragma omp parallel for schedule(static) if (planes * p.oh * p.ow * p.kh * p.kw > kParallelMacs)
  for (std::int64_t q = 0; q < planes; ++q) {
    const T* in = px + q * p.h * p.w;
    const T* wk = pw + (q % C) * p.kh * p.kw;
    const T start = pb != nullptr ? pb[q % C] : T(0);
    T* o = po + q * p.oh * p.ow;
    for (std::int64_t oy = 0; oy < p.oh; ++oy) {
      T* orow = o + oy * p.ow;
      for (std::int64_t ox = 0; ox < p.ow; ++ox) orow[ox] = start;
      for (std::int64_t ky = 0; ky < p.kh; ++ky) {
        const std::int64_t iy = oy * p.sy - p.py + ky * p.dy;
        if (iy >= 0 && iy < p.h) correlate_row(orow, in + iy * p.w, wk + ky * p.kw, p, taps);
      }
    }
  }
}

template <typename T>
void transposed(const ConvGeometry& g, NDArray& out, const NDArray& dy_in, const NDArray& w_in) {
  const NDArray dy = dy_in.contiguous(), wt = w_in.contiguous();
  const Plane p = plane_of(g);
  const Taps taps = taps_of(p);
  const T* pd = dy.data<const T>();
  const T* pw = wt.data<const T>();
  T* po = out.data<T>();
  const std::int64_t planes = g.batch * g.image_channels, C = g.image_channels;
#pragma omp parallel for schedule(static) if (planes * p.oh * p.ow * p.kh * p.kw > kParallelMacs)
  for (std::int64_t q = 0; q < planes; ++q) {
    const T* d = pd + q * p.oh * p.ow;
    const T* wk = pw + (q % C) * p.kh * p.kw;
    T* gx = po + q * p.h * p.w;
    for (std::int64_t i = 0; i < p.h * p.w; ++i) gx[i] = T(0);
    for (std::int64_t oy = 0; oy < p.oh; ++oy) {
      const T* drow = d + oy * p.ow;
      for (std::int64_t ky = 0; ky < p.kh; ++ky) {
        const std::int64_t iy = oy * p.sy - p.py + ky * p.dy;
        if (iy < 0 || iy >= p.h) continue;
        T* grow = gx + iy * p.w;
        // The scatter of forward's taps: input column ox * sx + off[kx]
        // gathers w[kx] * dy[ox] (taps in a fixed order, no races: one plane per thread).
        for (std::int64_t kx = 0; kx < p.kw; ++kx) {
          const T wv = wk[ky * p.kw + kx];
          const std::int64_t off = taps.off[kx];
          const ColumnRange r = taps.cols[kx];
          if (p.sx == 1) {
            T* dst = grow + off;
#pragma omp simd
            for (std::int64_t ox = r.lo; ox < r.hi; ++ox) dst[ox] += wv * drow[ox];
          } else {
            for (std::int64_t ox = r.lo; ox < r.hi; ++ox) grow[ox * p.sx + off] += wv * drow[ox];
          }
        }
      }
    }
  }
}

template <typename T>
void weight_grad(const ConvGeometry& g, NDArray& out, const NDArray& x_in, const NDArray& dy_in) {
  const NDArray x = x_in.contiguous(), dy = dy_in.contiguous();
  const Plane p = plane_of(g);
  const Taps taps = taps_of(p);
  const T* px = x.data<const T>();
  const T* pd = dy.data<const T>();
  T* po = out.data<T>();
  const std::int64_t C = g.image_channels;
  // One channel's weights per iteration (no two threads write one weight).
  // Each tap keeps a row of partial sums across the batch and the rows, so
  // the inner loop is an elementwise multiply-add; each row of partials is
  // summed once at the end.
#pragma omp parallel for schedule(static) if (g.batch * C * p.oh * p.ow * p.kh * p.kw > kParallelMacs)
  for (std::int64_t c = 0; c < C; ++c) {
    std::vector<T> partial(static_cast<std::size_t>(p.kw * p.ow));
    for (std::int64_t ky = 0; ky < p.kh; ++ky) {
      std::fill(partial.begin(), partial.end(), T(0));
      for (std::int64_t n = 0; n < g.batch; ++n) {
        const T* in = px + (n * C + c) * p.h * p.w;
        const T* d = pd + (n * C + c) * p.oh * p.ow;
        for (std::int64_t oy = 0; oy < p.oh; ++oy) {
          const std::int64_t iy = oy * p.sy - p.py + ky * p.dy;
          if (iy < 0 || iy >= p.h) continue;
          const T* irow = in + iy * p.w;
          const T* drow = d + oy * p.ow;
          for (std::int64_t kx = 0; kx < p.kw; ++kx) {
            T* acc = partial.data() + kx * p.ow;
            const std::int64_t off = taps.off[kx];
            const ColumnRange r = taps.cols[kx];
            if (p.sx == 1) {
              const T* src = irow + off;
#pragma omp simd
              for (std::int64_t ox = r.lo; ox < r.hi; ++ox) acc[ox] += drow[ox] * src[ox];
            } else {
              for (std::int64_t ox = r.lo; ox < r.hi; ++ox) acc[ox] += drow[ox] * irow[ox * p.sx + off];
            }
          }
        }
      }
      for (std::int64_t kx = 0; kx < p.kw; ++kx) {
        T sum = T(0);
        for (std::int64_t ox = 0; ox < p.ow; ++ox) sum += partial[static_cast<std::size_t>(kx * p.ow + ox)];
        po[(c * p.kh + ky) * p.kw + kx] = sum;
      }
    }
  }
}

}  // namespace

void LOOM_ISA_NAME(depthwise_forward_isa)(const ConvGeometry& g, NDArray& out, const NDArray& x, const NDArray& w,
                                          const NDArray& bias) {
  by_dtype("convolution", out.dtype(), [&](auto tag) { forward<decltype(tag)>(g, out, x, w, bias); });
}

void LOOM_ISA_NAME(depthwise_transposed_isa)(const ConvGeometry& g, NDArray& out, const NDArray& dy,
                                             const NDArray& w) {
  by_dtype("deconvolution", out.dtype(), [&](auto tag) { transposed<decltype(tag)>(g, out, dy, w); });
}

void LOOM_ISA_NAME(depthwise_weight_grad_isa)(const ConvGeometry& g, NDArray& out, const NDArray& x,
                                              const NDArray& dy) {
  by_dtype("convolution_weight_grad", out.dtype(), [&](auto tag) { weight_grad<decltype(tag)>(g, out, x, dy); });
}

}  // inline namespace LOOM_CPU_ISA

#if !defined(LOOM_CPU_ISA_BUILD)
LOOM_ISA_DECLARE(depthwise_forward_isa, (const ConvGeometry&, NDArray&, const NDArray&, const NDArray&,
                                         const NDArray&))
LOOM_ISA_DECLARE(depthwise_transposed_isa, (const ConvGeometry&, NDArray&, const NDArray&, const NDArray&))
LOOM_ISA_DECLARE(depthwise_weight_grad_isa, (const ConvGeometry&, NDArray&, const NDArray&, const NDArray&))

bool depthwise_applies(const ConvGeometry& g, DType dtype) {
  // LOOM_CONV_BACKEND=im2col or =onednn pins a backend (for comparisons:
  // bench/conv_directions.py); by default depthwise layers come here.
  static const bool enabled = [] {
    const char* v = std::getenv("LOOM_CONV_BACKEND");
    return v == nullptr || (std::string(v) != "im2col" && std::string(v) != "onednn");
  }();
  return enabled && (dtype == DType::kFloat32 || dtype == DType::kFloat64) && g.groups > 1 &&
         g.groups == g.image_channels && g.col_channels == g.groups && g.image[0] == 1 && g.cols[0] == 1 &&
         g.kernel[0] == 1;
}

void depthwise_forward(const ConvGeometry& g, NDArray& out, const NDArray& x, const NDArray& weight,
                       const NDArray& bias) {
  LOOM_ISA_CALL(depthwise_forward_isa, g, out, x, weight, bias);
}

void depthwise_transposed(const ConvGeometry& g, NDArray& out, const NDArray& dy, const NDArray& weight) {
  LOOM_ISA_CALL(depthwise_transposed_isa, g, out, dy, weight);
}

void depthwise_weight_grad(const ConvGeometry& g, NDArray& out, const NDArray& x, const NDArray& dy) {
  LOOM_ISA_CALL(depthwise_weight_grad_isa, g, out, x, dy);
}
#endif  // !LOOM_CPU_ISA_BUILD

}  // namespace loom::kernels
