// Depthwise 2-D convolution on the GPU without cuDNN (conv_cudnn.cu sends
// it here): groups equal to the channels on both sides, square 3x3, 5x5 or
// 7x7 kernels, any stride, padding and dilation. cuDNN runs these as
// grouped convolutions with one channel per group, at 1.3x torch's time
// on the H200 for a 3x3 layer; torch, too, has its own kernels.
//
// - forward: one thread per output element, the taps unrolled;
// - data gradient (deconvolution): one thread per input element, gathering
//   the outputs whose windows cover it (no atomics: the same result every
//   run);
// - weight gradient: a block per (channel, batch slice) sums dy * x for
//   all taps at once, each thread keeping one sum per tap; a second kernel
//   adds the slices in order.
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "microkernel/base/error.h"
#include "runtime/kernels/cuda/device_scratch.h"
#include "runtime/kernels/cuda/grid_split.h"
#include "runtime/kernels/cuda/pointwise_cuda.cuh"
#include "runtime/kernels/cpu/conv_depthwise.h"
#include "runtime/kernels/float_dtype.h"

namespace loom::kernels {
namespace {

constexpr int kThreads = 256;

// ConvGeometry's 2-D part as plain values for the kernels.
struct Plane {
  std::int64_t batch, channels, ih, iw, oh, ow;
  int sh, sw, ph, pw, dh, dw;
};

Plane plane_of(const ConvGeometry& g) {
  return Plane{g.batch,
               g.image_channels,
               g.image[1],
               g.image[2],
               g.cols[1],
               g.cols[2],
               int(g.stride[1]),
               int(g.stride[2]),
               int(g.pad[1]),
               int(g.pad[2]),
               int(g.dilation[1]),
               int(g.dilation[2])};
}

template <typename T, int K>
__global__ void forward_kernel(T* __restrict__ y, const T* __restrict__ x, const T* __restrict__ w,
                               const T* __restrict__ bias, Plane p, std::int64_t n) {
  for (std::int64_t i = std::int64_t(blockIdx.x) * kThreads + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * kThreads) {
    const std::int64_t ow = i % p.ow, t = i / p.ow, oh = t % p.oh, plane = t / p.oh, c = plane % p.channels;
    const T* xp = x + plane * p.ih * p.iw;
    const T* wp = w + c * K * K;
    T acc = bias != nullptr ? bias[c] : T(0);
    const std::int64_t h0 = oh * p.sh - p.ph, w0 = ow * p.sw - p.pw;
#pragma unroll
    for (int r = 0; r < K; ++r) {
      const std::int64_t h = h0 + r * p.dh;
      if (h < 0 || h >= p.ih) continue;
#pragma unroll
      for (int s = 0; s < K; ++s) {
        const std::int64_t col = w0 + s * p.dw;
        if (col >= 0 && col < p.iw) acc += xp[h * p.iw + col] * wp[r * K + s];
      }
    }
    y[i] = acc;
  }
}

// dx[plane, h, col] = sum over taps (r, s) with h = oh * sh - ph + r * dh
// (and likewise for col) of dy[plane, oh, ow] * w[c, r, s].
template <typename T, int K>
__global__ void data_grad_kernel(T* __restrict__ dx, const T* __restrict__ dy, const T* __restrict__ w,
                                 const T* __restrict__ bias, Plane p, std::int64_t n) {
  for (std::int64_t i = std::int64_t(blockIdx.x) * kThreads + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * kThreads) {
    const std::int64_t col = i % p.iw, t = i / p.iw, h = t % p.ih, plane = t / p.ih, c = plane % p.channels;
    const T* dyp = dy + plane * p.oh * p.ow;
    const T* wp = w + c * K * K;
    T acc = bias != nullptr ? bias[c] : T(0);
#pragma unroll
    for (int r = 0; r < K; ++r) {
      const std::int64_t hs = h + p.ph - r * p.dh;  // oh * sh
      if (hs < 0 || hs % p.sh != 0 || hs / p.sh >= p.oh) continue;
      const std::int64_t oh = hs / p.sh;
#pragma unroll
      for (int s = 0; s < K; ++s) {
        const std::int64_t ws = col + p.pw - s * p.dw;  // ow * sw
        if (ws >= 0 && ws % p.sw == 0 && ws / p.sw < p.ow) acc += dyp[oh * p.ow + ws / p.sw] * wp[r * K + s];
      }
    }
    dx[i] = acc;
  }
}

// Block (c, slice): sums over the slice's samples and every output
// position of dy * x at each tap, into part[slice][c][tap] (or, with one
// slice, straight into dw as T). Accumulates in double, like the CPU's
// batch_norm-style reductions, so long sums keep their digits.
template <typename T, int K>
__global__ void weight_partials_kernel(T* __restrict__ dw, double* __restrict__ part, const T* __restrict__ x,
                                       const T* __restrict__ dy, Plane p) {
  __shared__ double shared[kThreads / 32];
  const std::int64_t c = blockIdx.x;
  const std::int64_t chunk = (p.batch + gridDim.y - 1) / gridDim.y;
  const std::int64_t n0 = std::int64_t(blockIdx.y) * chunk;
  const std::int64_t n1 = n0 + chunk < p.batch ? n0 + chunk : p.batch;
  const std::int64_t per_sample = p.oh * p.ow;
  double acc[K * K] = {};
  for (std::int64_t j = threadIdx.x; j < (n1 > n0 ? (n1 - n0) * per_sample : 0); j += kThreads) {
    const std::int64_t n = n0 + j / per_sample, pos = j % per_sample, oh = pos / p.ow, ow = pos % p.ow;
    const std::int64_t plane = n * p.channels + c;
    const double g = double(dy[plane * per_sample + pos]);
    const T* xp = x + plane * p.ih * p.iw;
    const std::int64_t h0 = oh * p.sh - p.ph, w0 = ow * p.sw - p.pw;
#pragma unroll
    for (int r = 0; r < K; ++r) {
      const std::int64_t h = h0 + r * p.dh;
      const bool row_in = h >= 0 && h < p.ih;
#pragma unroll
      for (int s = 0; s < K; ++s) {
        const std::int64_t col = w0 + s * p.dw;
        if (row_in && col >= 0 && col < p.iw) acc[r * K + s] += g * double(xp[h * p.iw + col]);
      }
    }
  }
#pragma unroll
  for (int tap = 0; tap < K * K; ++tap) {
    double v = acc[tap];
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
    if (threadIdx.x % 32 == 0) shared[threadIdx.x / 32] = v;
    __syncthreads();
    if (threadIdx.x == 0) {
      double total = 0;
      for (int w = 0; w < kThreads / 32; ++w) total += shared[w];
      if (part != nullptr) {
        part[(std::int64_t(blockIdx.y) * p.channels + c) * K * K + tap] = total;
      } else {
        dw[c * K * K + tap] = T(total);
      }
    }
    __syncthreads();
  }
}

template <typename T>
__global__ void weight_finish_kernel(T* dw, const double* part, std::int64_t n, int slices) {
  const std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  double total = 0;
  for (int s = 0; s < slices; ++s) total += part[s * n + i];
  dw[i] = T(total);
}

// fn(std::integral_constant<int, K>) for the kernel sizes built here.
template <typename Fn>
void by_kernel_size(std::int64_t k, Fn&& fn) {
  switch (k) {
    case 3: return fn(std::integral_constant<int, 3>{});
    case 5: return fn(std::integral_constant<int, 5>{});
    case 7: return fn(std::integral_constant<int, 7>{});
    default: LOOM_THROW(ErrorKind::kRuntime, "depthwise convolution: no direct kernel for size ", k);
  }
}

template <typename T>
const T* ptr_or_null(const NDArray& a) {
  return a.defined() ? a.data<const T>() : nullptr;
}

}  // namespace

bool depthwise_direct_cuda(const ConvGeometry& g, DType dtype) {
  const std::int64_t k = g.kernel[2];
  return (dtype == DType::kFloat32 || dtype == DType::kFloat64) && g.spatial_dims == 2 &&
         g.groups == g.image_channels && g.col_channels == g.groups && g.kernel[1] == k &&
         (k == 3 || k == 5 || k == 7);
}

void depthwise_forward_cuda(const ConvGeometry& g, NDArray& out, const NDArray& x_in, const NDArray& w_in,
                            const NDArray& bias_in) {
  const Plane p = plane_of(g);
  const NDArray x = x_in.contiguous(), w = w_in.contiguous(), bias = bias_in.defined() ? bias_in.contiguous() : bias_in;
  const std::int64_t n = out.numel();
  by_dtype("convolution", out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    by_kernel_size(g.kernel[2], [&](auto k) {
      forward_kernel<T, decltype(k)::value><<<cuda_grid_blocks(n, kThreads, out.device().id), kThreads>>>(
          out.data<T>(), x.data<const T>(), w.data<const T>(), ptr_or_null<T>(bias), p, n);
    });
  });
  check_cuda_launch("convolution (depthwise)");
}

void depthwise_data_grad_cuda(const ConvGeometry& g, NDArray& out, const NDArray& dy_in, const NDArray& w_in,
                              const NDArray& bias_in) {
  const Plane p = plane_of(g);
  const NDArray dy = dy_in.contiguous(), w = w_in.contiguous(),
                bias = bias_in.defined() ? bias_in.contiguous() : bias_in;
  const std::int64_t n = out.numel();
  by_dtype("deconvolution", out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    by_kernel_size(g.kernel[2], [&](auto k) {
      data_grad_kernel<T, decltype(k)::value><<<cuda_grid_blocks(n, kThreads, out.device().id), kThreads>>>(
          out.data<T>(), dy.data<const T>(), w.data<const T>(), ptr_or_null<T>(bias), p, n);
    });
  });
  check_cuda_launch("deconvolution (depthwise)");
}

void depthwise_weight_grad_cuda(const ConvGeometry& g, NDArray& out, const NDArray& x_in, const NDArray& dy_in) {
  const Plane p = plane_of(g);
  const NDArray x = x_in.contiguous(), dy = dy_in.contiguous();
  // slices of the batch: about eight blocks per SM in all, each at least
  // 4096 output positions
  const int slices = grid_splits(p.channels, p.batch * p.oh * p.ow, 4096, p.batch < 65535 ? p.batch : 65535,
                                 out.device().id);
  const std::int64_t n = out.numel();
  const DeviceScratch partials(slices > 1 ? std::size_t(slices * n) * sizeof(double) : 0, out.device());
  by_dtype("convolution_weight_grad", out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    by_kernel_size(g.kernel[2], [&](auto k) {
      const dim3 grid(unsigned(p.channels), unsigned(slices));
      weight_partials_kernel<T, decltype(k)::value><<<grid, kThreads>>>(out.data<T>(), partials.as<double>(),
                                                                        x.data<const T>(), dy.data<const T>(), p);
    });
    if (slices > 1) {
      weight_finish_kernel<T><<<unsigned((n + kThreads - 1) / kThreads), kThreads>>>(out.data<T>(),
                                                                                       partials.as<double>(), n,
                                                                                       slices);
    }
  });
  check_cuda_launch("convolution_weight_grad (depthwise)");
}

}  // namespace loom::kernels
