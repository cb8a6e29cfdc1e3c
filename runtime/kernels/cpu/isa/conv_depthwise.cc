// Depthwise convolution on the CPU at stride 1 (groups == in channels ==
// out channels): one small filter per channel plane. im2col + a GEMM per
// channel is all overhead there (a (1 x 9) by (9 x 784) product per plane),
// and a loop per output row and tap runs a few vector iterations per setup
// on rows of ~30 elements.
//
// So each plane is copied once into a zero-padded buffer (padded sizes
// PD x PH x PW) and the output is computed in the padded buffer's
// coordinates: output (od, oh, ow) sits at j = (od * PH + oh) * PW + ow, and
// tap (kd, kh, kw) reads padded element j + off_k with off_k = (kd*dd * PH
// + kh*dh) * PW + kw*dw. Every tap is then one multiply-add over one
// contiguous range of j (the whole plane, ~900 elements), and the columns
// past OW in each row are computed and dropped. The transposed convolution
// (the data gradient) scatters through the same offsets, and the weight
// gradient is one dot product per tap over the same range, with the
// gradient laid out in padded coordinates (dropped columns zero).
// Built per ISA (isa_dispatch.h). This file avoids instantiating standard
// templates (std::fill, std::vector, std::min) in its loops: such an
// instantiation is a weak symbol the ISA builds share, and the linker may
// keep the AVX-512 one.
#include <omp.h>

#include <array>
#include <cstring>
#include <memory>

#include "microkernel/base/error.h"
#include "runtime/kernels/cpu/conv_depthwise.h"
#include "runtime/kernels/cpu/isa_dispatch.h"
#include "runtime/kernels/float_dtype.h"

namespace loom::kernels {
inline namespace LOOM_CPU_ISA {
namespace {

template <typename T>
inline void fill(T* p, std::int64_t n, T v) {
  for (std::int64_t i = 0; i < n; ++i) p[i] = v;
}

// One plane's layout in padded coordinates.
struct Padded {
  std::int64_t PD, PH, PW;  // padded sizes
  std::int64_t size;        // PD * PH * PW
  std::int64_t span;        // j's range: one past the last output position
  std::int64_t taps;
  std::unique_ptr<std::int64_t[]> off;  // per tap

  explicit Padded(const ConvGeometry& g)
      : PD(g.image[0] + 2 * g.pad[0]), PH(g.image[1] + 2 * g.pad[1]), PW(g.image[2] + 2 * g.pad[2]),
        size(PD * PH * PW),
        span(((g.cols[0] - 1) * PH + (g.cols[1] - 1)) * PW + g.cols[2]),
        taps(g.kernel_size()),
        off(new std::int64_t[static_cast<std::size_t>(g.kernel_size())]) {
    std::int64_t k = 0;
    for (std::int64_t kd = 0; kd < g.kernel[0]; ++kd) {
      for (std::int64_t kh = 0; kh < g.kernel[1]; ++kh) {
        for (std::int64_t kw = 0; kw < g.kernel[2]; ++kw) {
          off[k++] = (kd * g.dilation[0] * PH + kh * g.dilation[1]) * PW + kw * g.dilation[2];
        }
      }
    }
  }
  // Where image element (d, h, w) and output element (od, oh, ow) sit.
  std::int64_t image_at(const ConvGeometry& g, std::int64_t d, std::int64_t h) const {
    return ((d + g.pad[0]) * PH + h + g.pad[1]) * PW + g.pad[2];
  }
  std::int64_t out_at(std::int64_t od, std::int64_t oh) const { return (od * PH + oh) * PW; }
};

// An array (batch, C, *spatial) read in place, whatever its strides: the
// planes are copied into padded buffers anyway, so a strided or broadcast
// operand (the stride-0 gradient of a sum) needs no dense copy first.
template <typename T>
struct Planes {
  const T* base;
  std::int64_t batch_stride, channel_stride;
  std::array<std::int64_t, 3> strides{0, 0, 0};  // per canonical spatial dim (0 where absent)
  std::int64_t channels;

  Planes(const NDArray& a, int spatial_dims)
      : base(a.data<const T>()), batch_stride(a.strides()[0]), channel_stride(a.strides()[1]),
        channels(a.shape()[1]) {
    for (int i = 0; i < spatial_dims; ++i) strides[3 - spatial_dims + i] = a.strides()[2 + i];
  }
  // Plane q = sample * channels + channel.
  const T* plane(std::int64_t q) const { return base + (q / channels) * batch_stride + (q % channels) * channel_stride; }
};

// size elements of a row with element stride `step` (1: contiguous, 0: one
// value repeated) into dst.
template <typename T>
inline void copy_row(T* __restrict dst, const T* __restrict src, std::int64_t size, std::int64_t step) {
  if (step == 1) {
    for (std::int64_t i = 0; i < size; ++i) dst[i] = src[i];
  } else if (step == 0) {
    fill(dst, size, src[0]);
  } else {
    for (std::int64_t i = 0; i < size; ++i) dst[i] = src[i * step];
  }
}

// Plane q of the image into the zeroed padded buffer `dst`.
template <typename T>
void pad_image(const ConvGeometry& g, const Padded& p, const Planes<T>& src, std::int64_t q, T* __restrict dst) {
  fill(dst, p.size, T(0));
  const auto& [ID, IH, IW] = g.image;
  const T* plane = src.plane(q);
  for (std::int64_t d = 0; d < ID; ++d) {
    for (std::int64_t h = 0; h < IH; ++h) {
      copy_row(dst + p.image_at(g, d, h), plane + d * src.strides[0] + h * src.strides[1], IW, src.strides[2]);
    }
  }
}

// Plane q of an output-shaped array into padded coordinates (`span`
// elements, the dropped columns zero).
template <typename T>
void pad_cols(const ConvGeometry& g, const Padded& p, const Planes<T>& src, std::int64_t q, T* __restrict dst) {
  fill(dst, p.span, T(0));
  const auto& [OD, OH, OW] = g.cols;
  const T* plane = src.plane(q);
  for (std::int64_t od = 0; od < OD; ++od) {
    for (std::int64_t oh = 0; oh < OH; ++oh) {
      copy_row(dst + p.out_at(od, oh), plane + od * src.strides[0] + oh * src.strides[1], OW, src.strides[2]);
    }
  }
}

// Planes (sample, channel) across threads when there is enough work, each
// thread with its own scratch of `scratch` elements.
template <typename T, typename Body>
void for_each_plane(const ConvGeometry& g, std::int64_t scratch, Body&& body) {
  const std::int64_t planes = g.batch * g.image_channels;
  const bool parallel = planes > 1 && planes * scratch * g.kernel_size() > (1 << 16);
#pragma omp parallel if (parallel)
  {
    const std::unique_ptr<T[]> buffer(new T[static_cast<std::size_t>(scratch)]);
#pragma omp for schedule(static)
    for (std::int64_t q = 0; q < planes; ++q) body(q, buffer.get());
  }
}

// The ISA's vector width (this file is built once per ISA).
#if defined(__AVX512F__)
constexpr std::size_t kVectorBytes = 64;
#elif defined(__AVX__)
constexpr std::size_t kVectorBytes = 32;
#else
constexpr std::size_t kVectorBytes = 16;
#endif
// Elements a caller leaves (zeroed) after what taps_into reads: at least
// one block of the widest ISA (4 vectors of 16 floats).
constexpr std::int64_t kBlock = 64;

// dst[j] = bias + sum_k w[k] * src[j + shift[k]] for j in [0, count), a
// block of four vectors at a time, held in registers while the K taps add
// into them: one store per element, not a load and a store per tap, and
// four independent multiply-add chains. The block is one native vector
// each (GCC/Clang vector types): written with `#pragma omp simd` over a
// local array instead, GCC's unroll-and-jam turned the tap loop scalar, and
// a wider vector type goes through the stack. Reads up to a block past
// src + shift[k] + count - 1.
template <typename T>
void taps_into(T* __restrict dst, const T* __restrict src, std::int64_t count, const T* w, const std::int64_t* shift,
               std::int64_t K, T bias) {
  typedef T Vec __attribute__((vector_size(kVectorBytes)));
  constexpr std::int64_t n = kVectorBytes / sizeof(T);
  static_assert(4 * n <= kBlock, "a block fits the room callers leave");
  for (std::int64_t j0 = 0; j0 < count; j0 += 4 * n) {
    Vec a0 = Vec{} + bias, a1 = a0, a2 = a0, a3 = a0;
    for (std::int64_t k = 0; k < K; ++k) {
      const T* r = src + shift[k] + j0;
      Vec r0, r1, r2, r3;
      std::memcpy(&r0, r, sizeof(Vec));  // unaligned loads
      std::memcpy(&r1, r + n, sizeof(Vec));
      std::memcpy(&r2, r + 2 * n, sizeof(Vec));
      std::memcpy(&r3, r + 3 * n, sizeof(Vec));
      const T wk = w[k];
      a0 += wk * r0;
      a1 += wk * r1;
      a2 += wk * r2;
      a3 += wk * r3;
    }
    if (count - j0 >= 4 * n) {
      std::memcpy(dst + j0, &a0, sizeof(Vec));
      std::memcpy(dst + j0 + n, &a1, sizeof(Vec));
      std::memcpy(dst + j0 + 2 * n, &a2, sizeof(Vec));
      std::memcpy(dst + j0 + 3 * n, &a3, sizeof(Vec));
    } else {
      T tail[4 * n];
      std::memcpy(tail, &a0, sizeof(Vec));
      std::memcpy(tail + n, &a1, sizeof(Vec));
      std::memcpy(tail + 2 * n, &a2, sizeof(Vec));
      std::memcpy(tail + 3 * n, &a3, sizeof(Vec));
      for (std::int64_t v = 0; v < count - j0; ++v) dst[j0 + v] = tail[v];
    }
  }
}

template <typename T>
void forward(const ConvGeometry& g, NDArray& out, const NDArray& x_in, const NDArray& w_in, const NDArray& b_in) {
  const NDArray w = w_in.contiguous();
  const NDArray b = b_in.defined() ? b_in.contiguous() : NDArray();
  const Planes<T> px(x_in, g.spatial_dims);
  const T* pw = w.data<const T>();
  const T* pb = b.defined() ? b.data<const T>() : nullptr;
  T* po = out.data<T>();
  const Padded p(g);
  const std::int64_t C = g.image_channels, L = g.col_size(), K = p.taps;
  const auto& [OD, OH, OW] = g.cols;
  // the padded image, kBlock zeros of room after it, and the outputs in padded coordinates
  for_each_plane<T>(g, p.size + kBlock + p.span, [&](std::int64_t q, T* scratch) {
    T* __restrict image = scratch;
    T* __restrict acc = scratch + p.size + kBlock;
    const std::int64_t c = q % C;
    pad_image(g, p, px, q, image);
    fill(image + p.size, kBlock, T(0));
    taps_into(acc, image, p.span, pw + c * K, p.off.get(), K, pb ? pb[c] : T(0));
    T* o = po + q * L;
    for (std::int64_t od = 0; od < OD; ++od) {
      for (std::int64_t oh = 0; oh < OH; ++oh) {
        const T* from = acc + p.out_at(od, oh);
        T* to = o + (od * OH + oh) * OW;
        for (std::int64_t ow = 0; ow < OW; ++ow) to[ow] = from[ow];
      }
    }
  });
}

// The adjoint of forward: the image (a transposed convolution's output, or
// the data gradient) gets w * cols through every tap. Written as a gather,
// image[i] = sum_k w_k * grad[i - off_k], over the gradient in padded
// coordinates with a zero margin of max(off) in front, so it runs as the
// forward's register-blocked loop with negated offsets.
template <typename T>
void transposed(const ConvGeometry& g, NDArray& image_out, const NDArray& cols_in, const NDArray& w_in,
                const NDArray& b_in) {
  const NDArray w = w_in.contiguous();
  const NDArray b = b_in.defined() ? b_in.contiguous() : NDArray();
  const Planes<T> pc(cols_in, g.spatial_dims);
  const T* pw = w.data<const T>();
  const T* pb = b.defined() ? b.data<const T>() : nullptr;
  T* pi = image_out.data<T>();
  const Padded p(g);
  const std::int64_t C = g.image_channels, isz = g.image_size(), K = p.taps;
  const auto& [ID, IH, IW] = g.image;
  const std::int64_t margin = p.off[K - 1];  // the largest offset (the last tap's)
  const std::unique_ptr<std::int64_t[]> back(new std::int64_t[static_cast<std::size_t>(K)]);
  for (std::int64_t k = 0; k < K; ++k) back[k] = -p.off[k];
  // the interior's first and one-past-last padded positions
  const std::int64_t first = p.image_at(g, 0, 0), span = p.image_at(g, ID - 1, IH - 1) + IW - first;
  // margin zeros, the gradient in padded coordinates (zeros to the padded
  // image's end), kBlock zeros of room, then the image interior's rows
  for_each_plane<T>(g, margin + p.size + kBlock + span, [&](std::int64_t q, T* scratch) {
    const std::int64_t c = q % C;
    T* grad = scratch + margin;
    T* __restrict acc = grad + p.size + kBlock;
    fill(scratch, margin, T(0));
    pad_cols(g, p, pc, q, grad);
    fill(grad + p.span, p.size + kBlock - p.span, T(0));
    taps_into(acc, grad + first, span, pw + c * K, back.get(), K, pb ? pb[c] : T(0));
    T* o = pi + q * isz;
    for (std::int64_t d = 0; d < ID; ++d) {
      for (std::int64_t h = 0; h < IH; ++h) {
        const T* from = acc + p.image_at(g, d, h) - first;
        T* to = o + (d * IH + h) * IW;
        for (std::int64_t i = 0; i < IW; ++i) to[i] = from[i];
      }
    }
  });
}

// sums[k] += <grad, src shifted by shift[k]> over [0, count) for every tap,
// one vector of the gradient at a time against up to eight taps, each with
// its own vector of partial sums: one load of the gradient serves eight
// multiply-adds. Reads up to one vector past count (callers leave the room,
// the gradient's zeroed).
template <typename T>
void tap_dots(const T* __restrict grad, const T* __restrict src, std::int64_t count, const std::int64_t* shift,
              std::int64_t K, double* sums) {
  typedef T Vec __attribute__((vector_size(kVectorBytes)));
  constexpr std::int64_t n = kVectorBytes / sizeof(T);
  constexpr std::int64_t kGroup = 8;
  for (std::int64_t k0 = 0; k0 < K; k0 += kGroup) {
    const std::int64_t taps = K - k0 < kGroup ? K - k0 : kGroup;
    Vec acc[kGroup] = {};
    for (std::int64_t j = 0; j < count; j += n) {
      Vec g;
      std::memcpy(&g, grad + j, sizeof(Vec));
#pragma GCC unroll 8
      for (std::int64_t t = 0; t < kGroup; ++t) {
        if (t < taps) {
          Vec r;
          std::memcpy(&r, src + shift[k0 + t] + j, sizeof(Vec));
          acc[t] += g * r;
        }
      }
    }
    for (std::int64_t t = 0; t < taps; ++t) {
      double total = 0;
      for (std::int64_t v = 0; v < n; ++v) total += static_cast<double>(acc[t][v]);
      sums[k0 + t] += total;
    }
  }
}

// w_grad[c, k] = sum over samples of <grad in padded coordinates, the
// padded image shifted by off_k>. Channels run across threads (each owns
// its filter: no partial sums to merge); each sample's dot products are in
// T over one plane (~1000 terms), their sum over samples in double.
template <typename T>
void weight_grad(const ConvGeometry& g, NDArray& out, const NDArray& x_in, const NDArray& dy_in) {
  const Planes<T> px(x_in, g.spatial_dims), pd(dy_in, g.spatial_dims);
  T* po = out.data<T>();
  const Padded p(g);
  const std::int64_t C = g.image_channels, N = g.batch, K = p.taps;
  const std::int64_t scratch = p.size + kBlock + p.span + kBlock;
  const bool parallel = C > 1 && N * C * scratch * K > (1 << 16);
#pragma omp parallel if (parallel)
  {
    const std::unique_ptr<T[]> buffer(new T[static_cast<std::size_t>(scratch)]);
    const std::unique_ptr<double[]> acc(new double[static_cast<std::size_t>(K)]);
    T* image = buffer.get();                 // the padded image, then kBlock zeros
    T* grad = buffer.get() + p.size + kBlock;  // the gradient in padded coordinates, then kBlock zeros
    fill(image + p.size, kBlock, T(0));
#pragma omp for schedule(static)
    for (std::int64_t c = 0; c < C; ++c) {
      for (std::int64_t k = 0; k < K; ++k) acc[k] = 0;
      for (std::int64_t n = 0; n < N; ++n) {
        pad_image(g, p, px, n * C + c, image);
        pad_cols(g, p, pd, n * C + c, grad);
        fill(grad + p.span, kBlock, T(0));
        tap_dots(grad, image, p.span, p.off.get(), K, acc.get());
      }
      for (std::int64_t k = 0; k < K; ++k) po[c * K + k] = static_cast<T>(acc[k]);
    }
  }
}

}  // namespace

void LOOM_ISA_NAME(depthwise_forward)(const ConvGeometry& g, NDArray& out, const NDArray& x, const NDArray& w,
                                      const NDArray& bias) {
  by_dtype("convolution", out.dtype(), [&](auto t) { forward<decltype(t)>(g, out, x, w, bias); });
}

void LOOM_ISA_NAME(depthwise_transposed)(const ConvGeometry& g, NDArray& image, const NDArray& cols, const NDArray& w,
                                         const NDArray& bias) {
  by_dtype("deconvolution", image.dtype(), [&](auto t) { transposed<decltype(t)>(g, image, cols, w, bias); });
}

void LOOM_ISA_NAME(depthwise_weight_grad)(const ConvGeometry& g, NDArray& out, const NDArray& x, const NDArray& dy) {
  by_dtype("convolution_weight_grad", out.dtype(), [&](auto t) { weight_grad<decltype(t)>(g, out, x, dy); });
}

}  // inline namespace LOOM_CPU_ISA

#if !defined(LOOM_CPU_ISA_BUILD)
LOOM_ISA_DECLARE(depthwise_forward, (const ConvGeometry&, NDArray&, const NDArray&, const NDArray&, const NDArray&))
LOOM_ISA_DECLARE(depthwise_transposed, (const ConvGeometry&, NDArray&, const NDArray&, const NDArray&, const NDArray&))
LOOM_ISA_DECLARE(depthwise_weight_grad, (const ConvGeometry&, NDArray&, const NDArray&, const NDArray&))

bool is_depthwise(const ConvGeometry& g, DType dtype) {
  return g.groups > 1 && g.groups == g.image_channels && g.groups == g.col_channels && g.stride[0] == 1 &&
         g.stride[1] == 1 && g.stride[2] == 1 && (dtype == DType::kFloat32 || dtype == DType::kFloat64);
}

void conv_depthwise_forward(const ConvGeometry& g, NDArray& out, const NDArray& x, const NDArray& w,
                            const NDArray& bias) {
  LOOM_ISA_CALL(depthwise_forward, g, out, x, w, bias);
}

void conv_depthwise_transposed(const ConvGeometry& g, NDArray& image, const NDArray& cols, const NDArray& w,
                               const NDArray& bias) {
  LOOM_ISA_CALL(depthwise_transposed, g, image, cols, w, bias);
}

void conv_depthwise_weight_grad(const ConvGeometry& g, NDArray& out, const NDArray& x, const NDArray& dy) {
  LOOM_ISA_CALL(depthwise_weight_grad, g, out, x, dy);
}
#endif  // !LOOM_CPU_ISA_BUILD

}  // namespace loom::kernels
