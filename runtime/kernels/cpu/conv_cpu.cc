// Convolution on the CPU (opdefs/nn/convolution.yaml): im2col + GEMM.
//
// A group of one sample is a matrix product: the image unrolled into
// columns (im2col: one row per input channel and kernel offset, one column
// per output position) multiplied by the weight as a (out, in * kernel)
// matrix. The transposed convolution multiplies by the weight's transpose
// and folds the columns back (col2im, which adds overlapping taps), and
// the weight gradient multiplies the output gradient by the columns'
// transpose. A 1x1 kernel with stride 1 and no padding needs no unrolling:
// the image is its own column matrix.
//
// Threads: a batch of two or more samples is split across OpenMP threads,
// each with its own column buffer and single-threaded GEMMs (OpenBLAS
// runs on the calling thread inside a parallel region); a single sample
// runs one multithreaded GEMM per group instead. Measured against PyTorch
// in bench/ (bench/nn_conv.py).
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "generated/kernels/convolution.h"
#include "generated/kernels/convolution_weight_grad.h"
#include "generated/kernels/deconvolution.h"
#include "microkernel/base/error.h"
#include "runtime/kernels/float_dtype.h"
#include "runtime/core/shape.h"
#include "runtime/kernels/conv_geometry.h"
#include "runtime/kernels/cpu/conv_depthwise.h"
#include "runtime/kernels/cpu/conv_dnnl.h"
#include "runtime/kernels/cpu/cpu_gemm.h"

namespace loom::kernels {
namespace {

// The output positions [lo, hi) of one row whose input index
// pos * stride + offset lies in [0, size).
inline void valid_range(std::int64_t offset, std::int64_t stride, std::int64_t size, std::int64_t count,
                        std::int64_t& lo, std::int64_t& hi) {
  lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  hi = size - offset <= 0 ? 0 : (size - offset + stride - 1) / stride;
  lo = std::min(lo, count);
  hi = std::clamp(hi, lo, count);
}

// Visits every (column-matrix row, output row) pair of one group: `row`
// is the (channel, kd, kh, kw) row's start in the column matrix, `at` the
// offset of output row (od, oh) in it, `src` the image row it reads (or
// -1 where it falls in the padding), and [lo, hi) the valid output
// positions with input index ow * sw + off.
template <typename Visit>
void for_each_tap(const ConvGeometry& g, Visit&& visit) {
  const std::int64_t channels = g.image_channels / g.groups, L = g.col_size();
  const auto& [ID, IH, IW] = g.image;
  const auto& [OD, OH, OW] = g.cols;
  const auto& [KD, KH, KW] = g.kernel;
  std::int64_t row = 0;
  for (std::int64_t c = 0; c < channels; ++c) {
    for (std::int64_t kd = 0; kd < KD; ++kd) {
      for (std::int64_t kh = 0; kh < KH; ++kh) {
        for (std::int64_t kw = 0; kw < KW; ++kw, ++row) {
          const std::int64_t off = kw * g.dilation[2] - g.pad[2];
          std::int64_t lo, hi;
          valid_range(off, g.stride[2], IW, OW, lo, hi);
          for (std::int64_t od = 0; od < OD; ++od) {
            const std::int64_t id = od * g.stride[0] - g.pad[0] + kd * g.dilation[0];
            for (std::int64_t oh = 0; oh < OH; ++oh) {
              const std::int64_t ih = oh * g.stride[1] - g.pad[1] + kh * g.dilation[1];
              const bool inside = id >= 0 && id < ID && ih >= 0 && ih < IH;
              visit(row * L + (od * OH + oh) * OW, inside ? (c * ID + id) * IH * IW + ih * IW : -1, lo, hi, off);
            }
          }
        }
      }
    }
  }
}

// image (channels / groups, *image) -> col (col_rows, col_size)
template <typename T>
void im2col(const ConvGeometry& g, const T* image, T* col) {
  const std::int64_t OW = g.cols[2], sw = g.stride[2];
  for_each_tap(g, [&](std::int64_t at, std::int64_t src, std::int64_t lo, std::int64_t hi, std::int64_t off) {
    T* dst = col + at;
    if (src < 0) {
      std::fill(dst, dst + OW, T(0));
      return;
    }
    const T* in = image + src + off;
    std::fill(dst, dst + lo, T(0));
    if (sw == 1) {
      std::copy(in + lo, in + hi, dst + lo);
    } else {
      for (std::int64_t ow = lo; ow < hi; ++ow) dst[ow] = in[ow * sw];
    }
    std::fill(dst + hi, dst + OW, T(0));
  });
}

// col (col_rows, col_size) -> image, adding every tap into its pixel (the
// adjoint of im2col). `image` must hold zeros or what to add to.
template <typename T>
void col2im(const ConvGeometry& g, const T* col, T* image) {
  const std::int64_t sw = g.stride[2];
  for_each_tap(g, [&](std::int64_t at, std::int64_t src, std::int64_t lo, std::int64_t hi, std::int64_t off) {
    if (src < 0) return;
    const T* from = col + at;
    T* in = image + src + off;
    if (sw == 1) {
      for (std::int64_t ow = lo; ow < hi; ++ow) in[ow] += from[ow];
    } else {
      for (std::int64_t ow = lo; ow < hi; ++ow) in[ow * sw] += from[ow];
    }
  });
}

// One group's column matrix: the image itself for a 1x1 stride-1 kernel
// without padding, else its im2col in `buffer`.
template <typename T>
const T* columns(const ConvGeometry& g, const T* image, T* buffer) {
  if (g.is_pointwise()) return image;
  im2col(g, image, buffer);
  return buffer;
}

// Runs body(sample, column buffer) for every sample: across threads with a
// buffer each when the batch allows, else in order with one buffer (the
// GEMMs inside then use every thread).
template <typename T, typename Body>
void for_each_sample(const ConvGeometry& g, Body&& body) {
  const std::size_t buffer = g.is_pointwise() ? 0 : static_cast<std::size_t>(g.col_rows() * g.col_size());
  if (g.batch >= 2 && omp_get_max_threads() > 1) {
#pragma omp parallel
    {
      std::vector<T> col(buffer);
#pragma omp for schedule(static)
      for (std::int64_t n = 0; n < g.batch; ++n) body(n, col.data(), omp_get_thread_num());
    }
  } else {
    std::vector<T> col(buffer);
    for (std::int64_t n = 0; n < g.batch; ++n) body(n, col.data(), 0);
  }
}

// Adds bias[c] to every element of channel c of a (batch, channels, size) array.
template <typename T>
void add_bias(T* out, const NDArray& bias, std::int64_t batch, std::int64_t channels, std::int64_t size) {
  if (!bias.defined()) return;
  const NDArray b = bias.contiguous();
  const T* pb = b.data<const T>();
#pragma omp parallel for collapse(2) schedule(static) if (batch * channels * size > 65536)
  for (std::int64_t n = 0; n < batch; ++n) {
    for (std::int64_t c = 0; c < channels; ++c) {
      T* p = out + (n * channels + c) * size;
      const T v = pb[c];
      for (std::int64_t i = 0; i < size; ++i) p[i] += v;
    }
  }
}

template <typename T>
void conv_forward(const ConvGeometry& g, NDArray& out, const NDArray& x_in, const NDArray& w_in,
                  const NDArray& bias) {
  const NDArray x = x_in.contiguous(), w = w_in.contiguous();
  const T* px = x.data<const T>();
  const T* pw = w.data<const T>();
  T* po = out.data<T>();
  const std::int64_t G = g.groups, cin = g.image_channels / G, cout = g.col_channels / G;
  const std::int64_t K = g.col_rows(), L = g.col_size(), isz = g.image_size();
  for_each_sample<T>(g, [&](std::int64_t n, T* col, int) {
    for (std::int64_t grp = 0; grp < G; ++grp) {
      const T* cols = columns(g, px + (n * g.image_channels + grp * cin) * isz, col);
      gemm<T>(false, false, cout, L, K, pw + grp * cout * K, K, cols, L, po + (n * g.col_channels + grp * cout) * L,
              L);
    }
  });
  add_bias(po, bias, g.batch, g.col_channels, L);
}

template <typename T>
void conv_transposed(const ConvGeometry& g, NDArray& out, const NDArray& x_in, const NDArray& w_in,
                     const NDArray& bias) {
  const NDArray x = x_in.contiguous(), w = w_in.contiguous();
  const T* px = x.data<const T>();
  const T* pw = w.data<const T>();
  T* po = out.data<T>();
  const std::int64_t G = g.groups, cin = g.image_channels / G, cout = g.col_channels / G;
  const std::int64_t K = g.col_rows(), L = g.col_size(), isz = g.image_size();
  for_each_sample<T>(g, [&](std::int64_t n, T* col, int) {
    T* image = po + n * g.image_channels * isz;
    for (std::int64_t grp = 0; grp < G; ++grp) {
      const T* cols = px + (n * g.col_channels + grp * cout) * L;
      T* target = image + grp * cin * isz;
      if (g.is_pointwise()) {  // the columns are the image: write it directly
        gemm<T>(true, false, K, L, cout, pw + grp * cout * K, K, cols, L, target, L);
        continue;
      }
      gemm<T>(true, false, K, L, cout, pw + grp * cout * K, K, cols, L, col, L);
      std::fill(target, target + cin * isz, T(0));
      col2im(g, col, target);
    }
  });
  add_bias(po, bias, g.batch, g.image_channels, isz);
}

template <typename T>
void conv_weight_grad(const ConvGeometry& g, NDArray& out, const NDArray& x_in, const NDArray& dy_in) {
  const NDArray x = x_in.contiguous(), dy = dy_in.contiguous();
  const T* px = x.data<const T>();
  const T* pd = dy.data<const T>();
  const std::int64_t G = g.groups, cin = g.image_channels / G, cout = g.col_channels / G;
  const std::int64_t K = g.col_rows(), L = g.col_size(), isz = g.image_size();
  const std::int64_t wsize = g.col_channels * K;
  // one partial sum per thread (summed at the end): threads never share a weight
  const int threads = g.batch >= 2 ? omp_get_max_threads() : 1;
  std::vector<T> partial(static_cast<std::size_t>(threads > 1 ? (threads - 1) * wsize : 0), T(0));
  T* po = out.data<T>();
  std::fill(po, po + wsize, T(0));
  for_each_sample<T>(g, [&](std::int64_t n, T* col, int thread) {
    T* acc = thread == 0 ? po : partial.data() + (thread - 1) * wsize;
    for (std::int64_t grp = 0; grp < G; ++grp) {
      const T* cols = columns(g, px + (n * g.image_channels + grp * cin) * isz, col);
      gemm<T>(false, true, cout, K, L, pd + (n * g.col_channels + grp * cout) * L, L, cols, L, acc + grp * cout * K,
              K, /*accumulate=*/true);
    }
  });
  for (int t = 1; t < threads; ++t) {
    const T* p = partial.data() + (t - 1) * wsize;
    for (std::int64_t i = 0; i < wsize; ++i) po[i] += p[i];
  }
}

void check_bias(const char* op, const NDArray& bias, std::int64_t channels) {
  if (!bias.defined()) return;
  LOOM_CHECK(bias.ndim() == 1 && bias.shape()[0] == channels, op, ": bias must be (out_channels,) = (", channels,
             ",), got ", bias.describe());
}

}  // namespace

Shape infer_convolution(const NDArray& x, const NDArray& weight, const NDArray& bias, ReduceDims stride,
                        ReduceDims padding, ReduceDims dilation, std::int64_t groups) {
  const ConvGeometry g = conv_geometry("convolution", x.shape(), weight.shape(), stride, padding, dilation, groups);
  check_bias("convolution", bias, g.col_channels);
  return conv_cols_shape(g);
}

Shape infer_deconvolution(const NDArray& x, const NDArray& weight, const NDArray& bias, ReduceDims stride,
                          ReduceDims padding, ReduceDims output_padding, ReduceDims dilation, std::int64_t groups) {
  const ConvGeometry g = deconv_geometry("deconvolution", x.shape(), weight.shape(), stride, padding,
                                         output_padding, dilation, groups);
  check_bias("deconvolution", bias, g.image_channels);
  return conv_image_shape(g);
}

Shape infer_convolution_weight_grad(const NDArray& x, const NDArray& grad_out, ReduceDims kernel, ReduceDims stride,
                                    ReduceDims padding, ReduceDims dilation, std::int64_t groups) {
  constexpr const char* kOp = "convolution_weight_grad";
  LOOM_CHECK(x.ndim() >= 3 && x.ndim() <= 5 && grad_out.ndim() == x.ndim(), kOp, ": x and grad_out must be "
             "(batch, channels, *spatial) with 1 to 3 spatial dims, got x ", x.describe(), ", grad_out ",
             grad_out.describe());
  LOOM_CHECK(kernel.has_value(), kOp, ": kernel (the kernel's spatial size) is required");
  const int n = x.ndim() - 2;
  const auto k = spatial_values(kOp, "kernel", kernel, n, 1);
  LOOM_CHECK(groups >= 1 && x.shape()[1] % groups == 0, kOp, ": x's channels (", x.shape()[1],
             ") must divide by groups (", groups, ")");
  Shape weight{grad_out.shape()[1], x.shape()[1] / groups};
  for (int d = 3 - n; d < 3; ++d) weight.push_back(k[d]);
  const ConvGeometry g = conv_geometry(kOp, x.shape(), weight, stride, padding, dilation, groups);
  LOOM_CHECK(grad_out.shape() == conv_cols_shape(g), kOp, ": grad_out must be convolution's output shape ",
             shape_str(conv_cols_shape(g)), " for x ", x.describe(), " and kernel ", shape_str(weight), ", got ",
             grad_out.describe());
  return weight;
}

namespace {

// A convolution this small runs on the calling thread alone. A parallel
// region costs a wake-up of the OpenMP team's helpers, and once several
// threads own teams (the caller and the engine's workers) libgomp stops
// spinning. That wake-up is a futex, 100-300 us here, against the
// 20-60 us such a convolution takes (LeNet at batch 1: 350 us a
// convolution parallel, 40 us alone). See docs/engine.md, "Threads and
// OpenMP".
constexpr std::int64_t kSerialMacs = std::int64_t{4} << 20;

class SerialIfSmall {
 public:
  explicit SerialIfSmall(const ConvGeometry& g) {
    const std::int64_t macs = g.batch * g.col_channels * g.col_size() * g.col_rows();
    if (macs < kSerialMacs) {
      saved_ = omp_get_max_threads();
      omp_set_num_threads(1);  // this thread's setting only
    }
  }
  ~SerialIfSmall() {
    if (saved_ > 0) omp_set_num_threads(saved_);
  }
  SerialIfSmall(const SerialIfSmall&) = delete;
  SerialIfSmall& operator=(const SerialIfSmall&) = delete;

 private:
  int saved_ = 0;
};

// Stride-1 depthwise convolutions run the direct kernels, unless
// LOOM_CONV_BACKEND names another backend (to measure them against it).
bool use_depthwise(const ConvGeometry& g, DType dtype) {
  const std::string& backend = conv_backend_override();
  return is_depthwise(g, dtype) && backend != "im2col" && backend != "dnnl";
}

}  // namespace

void convolution_cpu(NDArray& out, const NDArray& x, const NDArray& weight, const NDArray& bias, ReduceDims stride,
                     ReduceDims padding, ReduceDims dilation, std::int64_t groups) {
  const ConvGeometry g = conv_geometry("convolution", x.shape(), weight.shape(), stride, padding, dilation, groups);
  const SerialIfSmall serial(g);
  if (out.numel() == 0) return;
  if (use_depthwise(g, out.dtype())) return conv_depthwise_forward(g, out, x, weight, bias);
  if (dnnl_convolution(g, out, x, weight, bias)) return;
  by_dtype("convolution", out.dtype(), [&](auto tag) { conv_forward<decltype(tag)>(g, out, x, weight, bias); });
}

void deconvolution_cpu(NDArray& out, const NDArray& x, const NDArray& weight, const NDArray& bias,
                       ReduceDims stride, ReduceDims padding, ReduceDims output_padding, ReduceDims dilation,
                       std::int64_t groups) {
  const ConvGeometry g = deconv_geometry("deconvolution", x.shape(), weight.shape(), stride, padding,
                                         output_padding, dilation, groups);
  if (out.numel() == 0) return;
  const SerialIfSmall serial(g);
  if (use_depthwise(g, out.dtype())) return conv_depthwise_transposed(g, out, x, weight, bias);
  if (dnnl_conv_transposed(g, out, x, weight)) {
    by_dtype("deconvolution", out.dtype(), [&](auto tag) {
      using T = decltype(tag);
      add_bias(out.data<T>(), bias, g.batch, g.image_channels, g.image_size());
    });
    return;
  }
  by_dtype("deconvolution", out.dtype(), [&](auto tag) { conv_transposed<decltype(tag)>(g, out, x, weight, bias); });
}

void convolution_weight_grad_cpu(NDArray& out, const NDArray& x, const NDArray& grad_out, ReduceDims kernel,
                                 ReduceDims stride, ReduceDims padding, ReduceDims dilation, std::int64_t groups) {
  const ConvGeometry g = conv_geometry("convolution_weight_grad", x.shape(), out.shape(), stride, padding, dilation,
                                       groups);
  (void)kernel;  // the output's shape carries it
  const SerialIfSmall serial(g);
  if (out.numel() == 0) return;
  if (use_depthwise(g, out.dtype())) return conv_depthwise_weight_grad(g, out, x, grad_out);
  if (g.batch > 0 && dnnl_conv_weight_grad(g, out, x, grad_out)) return;
  by_dtype("convolution_weight_grad", out.dtype(),
           [&](auto tag) { conv_weight_grad<decltype(tag)>(g, out, x, grad_out); });
}

}  // namespace loom::kernels
