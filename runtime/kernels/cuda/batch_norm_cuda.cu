// batch_norm on the GPU (opdefs/nn/batch_norm.yaml). A channel's values are
// split across several blocks so that a few channels still fill the GPU
// (64 channels used to leave half of 132 SMs idle): grid (channels, splits).
//
// Forward, training: each block reduces its slice of the channel to a
// count, mean and sum of squared deviations (two passes over the slice, in
// double, like the CPU kernel's two passes over the channel); the apply
// kernel's blocks combine the slices' statistics in a fixed order (Chan's
// parallel variance formula) and normalise their own slice. Inference skips
// the statistics. Backward: each block sums g and g * (x - mean) over its
// slice; the apply kernel combines them, writes the weight and bias
// gradients (block 0 of the channel) and computes dx.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "generated/kernels/batch_norm.h"
#include "microkernel/base/error.h"
#include "runtime/kernels/float_dtype.h"
#include "runtime/kernels/batch_norm_kernels.h"
#include "runtime/kernels/cuda/block_sum.cuh"
#include "runtime/kernels/cuda/device_scratch.h"
#include "runtime/kernels/cuda/grid_split.h"
#include "runtime/kernels/cuda/pointwise_cuda.cuh"

namespace loom::kernels {
namespace {

constexpr int kThreads = 256;

// The slice of a channel's m values that block `split` of `splits` takes.
struct Slice {
  std::int64_t begin, end;
};
__device__ inline Slice slice_of(std::int64_t m, int split, int splits) {
  const std::int64_t chunk = (m + splits - 1) / splits;
  const std::int64_t begin = std::min<std::int64_t>(m, chunk * split);
  return {begin, std::min<std::int64_t>(m, begin + chunk)};
}

// Offset of element k of channel c: run k / rest of the batch, offset
// k % rest. 32-bit division when the indices fit (the common case): a
// 64-bit division costs several times as much on the GPU.
__device__ inline std::int64_t at(const ChannelSplit& s, std::int64_t c, std::int64_t k, bool narrow) {
  if (narrow) {
    const std::uint32_t kk = static_cast<std::uint32_t>(k), rest = static_cast<std::uint32_t>(s.rest);
    return (std::int64_t(kk / rest) * s.channels + c) * s.rest + kk % rest;
  }
  return ((k / s.rest) * s.channels + c) * s.rest + k % s.rest;
}

// Per slice: the mean and the sum of squared deviations from it.
struct SliceMoments {
  double mean, m2;
};

template <typename T>
__global__ void moments_kernel(SliceMoments* partial, const T* x, ChannelSplit s, bool narrow) {
  __shared__ double shared[kThreads / 32];
  const std::int64_t c = blockIdx.x;
  const int split = blockIdx.y, splits = gridDim.y;
  const Slice sl = slice_of(s.per_channel(), split, splits);
  double part = 0;
  for (std::int64_t k = sl.begin + threadIdx.x; k < sl.end; k += kThreads) part += double(x[at(s, c, k, narrow)]);
  const double n = double(sl.end - sl.begin);
  const double mean = n > 0 ? block_sum<kThreads>(part, shared) / n : 0.0;
  part = 0;
  for (std::int64_t k = sl.begin + threadIdx.x; k < sl.end; k += kThreads) {
    const double d = double(x[at(s, c, k, narrow)]) - mean;
    part += d * d;
  }
  const double m2 = block_sum<kThreads>(part, shared);
  if (threadIdx.x == 0) partial[c * splits + split] = {mean, m2};
}

// The channel's mean and sum of squared deviations from its slices', in
// slice order (Chan, Golub and LeVeque's pairwise update).
__device__ inline SliceMoments combine(const SliceMoments* partial, std::int64_t m, int splits) {
  double count = 0, mean = 0, m2 = 0;
  for (int j = 0; j < splits; ++j) {
    const Slice sl = slice_of(m, j, splits);
    const double n = double(sl.end - sl.begin);
    if (n == 0) continue;
    const double total = count + n, delta = partial[j].mean - mean;
    mean += delta * (n / total);
    m2 += partial[j].m2 + delta * delta * (count * n / total);
    count = total;
  }
  return {mean, m2};
}

// Normalises the block's slice. Every block of a channel derives the same
// statistics from the partials; block 0 also stores them and updates the
// running averages.
template <typename T>
__global__ void forward_apply_kernel(T* out, T* mean_out, T* invstd_out, const T* x, const T* w, const T* b, T* rm,
                                     T* rv, const SliceMoments* partial, ChannelSplit s, bool training,
                                     double momentum, double eps, bool relu, bool narrow) {
  __shared__ double stats[2];
  const std::int64_t c = blockIdx.x, m = s.per_channel();
  const int split = blockIdx.y, splits = gridDim.y;
  if (threadIdx.x == 0) {
    double mu, var;
    if (training) {
      const SliceMoments all = combine(partial + c * splits, m, splits);
      mu = all.mean;
      var = all.m2 / double(m);
      if (split == 0 && rm != nullptr) {
        rm[c] = T((1 - momentum) * double(rm[c]) + momentum * mu);
        rv[c] = T((1 - momentum) * double(rv[c]) + momentum * all.m2 / double(m - 1));
      }
    } else {
      mu = double(rm[c]);
      var = double(rv[c]);
    }
    const double inv = 1.0 / sqrt(var + eps);
    if (split == 0) {
      mean_out[c] = T(mu);
      invstd_out[c] = T(inv);
    }
    stats[0] = mu;
    stats[1] = inv;
  }
  __syncthreads();
  const double mu = stats[0], inv = stats[1];
  const double wc = w ? double(w[c]) : 1.0;
  const T scale = T(inv * wc), shift = T((b ? double(b[c]) : 0.0) - mu * inv * wc);
  const Slice sl = slice_of(m, split, splits);
  for (std::int64_t k = sl.begin + threadIdx.x; k < sl.end; k += kThreads) {
    const std::int64_t i = at(s, c, k, narrow);
    const T y = x[i] * scale + shift;
    out[i] = !relu || y > T(0) ? y : T(0);  // a fused ReLU: relu's where(y > 0, y, 0)
  }
}

// Per slice: the sums of g and of g * (x - mean).
struct SliceGradSums {
  double g, gx;
};

template <typename T>
__global__ void grad_sums_kernel(SliceGradSums* partial, const T* g, const T* x, const T* mean, ChannelSplit s,
                                 bool narrow) {
  __shared__ double shared[kThreads / 32];
  const std::int64_t c = blockIdx.x;
  const int split = blockIdx.y, splits = gridDim.y;
  const Slice sl = slice_of(s.per_channel(), split, splits);
  const double mu = mean[c];
  double pg = 0, pgx = 0;
  for (std::int64_t k = sl.begin + threadIdx.x; k < sl.end; k += kThreads) {
    const std::int64_t i = at(s, c, k, narrow);
    pg += double(g[i]);
    pgx += double(g[i]) * (double(x[i]) - mu);
  }
  const double sum_g = block_sum<kThreads>(pg, shared), sum_gx = block_sum<kThreads>(pgx, shared);
  if (threadIdx.x == 0) partial[c * splits + split] = {sum_g, sum_gx};
}

// dx over the block's slice (when wanted); block 0 of each channel writes
// the weight and bias gradients.
template <typename T>
__global__ void backward_apply_kernel(T* dx, T* dw, T* db, const T* g, const T* x, const T* w, const T* mean,
                                      const T* invstd, const SliceGradSums* partial, int sum_splits, ChannelSplit s,
                                      bool training, bool narrow) {
  __shared__ double sums[2];
  const std::int64_t c = blockIdx.x, m = s.per_channel();
  const int split = blockIdx.y, splits = gridDim.y;
  const double mu = mean[c], inv = invstd[c];
  if (threadIdx.x == 0) {
    double sum_g = 0, sum_gx = 0;
    for (int j = 0; j < sum_splits; ++j) {
      sum_g += partial[c * sum_splits + j].g;
      sum_gx += partial[c * sum_splits + j].gx;
    }
    if (split == 0) {
      if (db) db[c] = T(sum_g);
      if (dw) dw[c] = T(sum_gx * inv);
    }
    sums[0] = sum_g;
    sums[1] = sum_gx;
  }
  __syncthreads();
  if (!dx) return;
  const double sum_g = sums[0], sum_gx = sums[1];
  const double wc = w ? double(w[c]) : 1.0;
  const T a = T(wc * inv), g_mean = T(training ? sum_g / double(m) : 0.0);
  const T x_coef = T(training ? sum_gx * inv * inv / double(m) : 0.0), mu_t = T(mu);
  const Slice sl = slice_of(m, split, splits);
  for (std::int64_t k = sl.begin + threadIdx.x; k < sl.end; k += kThreads) {
    const std::int64_t i = at(s, c, k, narrow);
    dx[i] = a * (g[i] - g_mean - (x[i] - mu_t) * x_coef);
  }
}

template <typename T>
const T* ptr(const NDArray& a) {
  return a.defined() ? a.data<const T>() : nullptr;
}
template <typename T>
T* mut(const NDArray& a) {
  return a.defined() ? a.data<T>() : nullptr;
}

// How many blocks share a channel: enough for about eight blocks per SM in
// all, each with at least 2048 values (eight per thread) to amortise its
// share of the combine, and at most kMaxSplits: every block's first thread
// combines all of its channel's partials in order, so the combine grows
// with the square of the splits (only layers of under ~9 channels reach
// the cap).
constexpr std::int64_t kMaxSplits = 128;
int splits_for(const ChannelSplit& s, int device) {
  return grid_splits(s.channels, s.per_channel(), 2048, kMaxSplits, device);
}

bool fits_32_bits(const ChannelSplit& s) { return s.per_channel() <= std::int64_t(UINT32_MAX); }

}  // namespace

void batch_norm_cuda(NDArray& out, NDArray& mean, NDArray& invstd, const NDArray& x_in, const NDArray& weight_in,
                     const NDArray& bias_in, const NDArray& running_mean, const NDArray& running_var, bool training,
                     double momentum, double eps, bool relu) {
  const ChannelSplit s = channel_split(x_in.shape());
  if (s.channels == 0) return;
  cuda_select_device("batch_norm", out.device().id);
  if (x_in.numel() == 0) {
    by_dtype("batch_norm", out.dtype(), [&](auto tag) {
      using T = decltype(tag);
      const T nan = T(NAN), host[1] = {nan};
      for (std::int64_t c = 0; c < s.channels; ++c) {
        cudaMemcpy(mean.data<T>() + c, host, sizeof(T), cudaMemcpyHostToDevice);
        cudaMemcpy(invstd.data<T>() + c, host, sizeof(T), cudaMemcpyHostToDevice);
      }
    });
    return;
  }
  const NDArray x = x_in.contiguous();
  const NDArray weight = weight_in.defined() ? weight_in.contiguous() : NDArray();
  const NDArray bias = bias_in.defined() ? bias_in.contiguous() : NDArray();
  const int splits = splits_for(s, x.device().id);
  const dim3 grid(static_cast<unsigned>(s.channels), static_cast<unsigned>(splits));
  const bool narrow = fits_32_bits(s);
  const DeviceScratch partials(training ? std::size_t(s.channels) * splits * sizeof(SliceMoments) : 0, x.device());
  auto* moments = partials.as<SliceMoments>();
  by_dtype("batch_norm", out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if (training) moments_kernel<T><<<grid, kThreads>>>(moments, x.data<const T>(), s, narrow);
    forward_apply_kernel<T><<<grid, kThreads>>>(out.data<T>(), mean.data<T>(), invstd.data<T>(), x.data<const T>(),
                                                ptr<T>(weight), ptr<T>(bias), mut<T>(running_mean),
                                                mut<T>(running_var), moments, s, training, momentum, eps, relu,
                                                narrow);
  });
  check_cuda_launch("batch_norm");
}

void batch_norm_backward_cuda(NDArray& dx, NDArray& dweight, NDArray& dbias, const NDArray& grad_in,
                              const NDArray& x_in, const NDArray& weight_in, const NDArray& mean_in,
                              const NDArray& invstd_in, bool training) {
  const ChannelSplit s = channel_split(x_in.shape());
  if (s.channels == 0) return;
  cuda_select_device("batch_norm (backward)", x_in.device().id);
  const NDArray g = grad_in.contiguous(), x = x_in.contiguous(), mean = mean_in.contiguous(),
                invstd = invstd_in.contiguous();
  const NDArray weight = weight_in.defined() ? weight_in.contiguous() : NDArray();
  const int splits = splits_for(s, x.device().id);
  const bool narrow = fits_32_bits(s);
  const DeviceScratch partials(std::size_t(s.channels) * splits * sizeof(SliceGradSums), x.device());
  auto* sums = partials.as<SliceGradSums>();
  // Without dx only block 0 of each channel has work (the two sums).
  const dim3 sum_grid(static_cast<unsigned>(s.channels), static_cast<unsigned>(splits));
  const dim3 apply_grid(static_cast<unsigned>(s.channels), dx.defined() ? static_cast<unsigned>(splits) : 1u);
  by_dtype("batch_norm (backward)", x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    grad_sums_kernel<T><<<sum_grid, kThreads>>>(sums, g.data<const T>(), x.data<const T>(), mean.data<const T>(), s,
                                                narrow);
    backward_apply_kernel<T><<<apply_grid, kThreads>>>(mut<T>(dx), mut<T>(dweight), mut<T>(dbias),
                                                       g.data<const T>(), x.data<const T>(), ptr<T>(weight),
                                                       mean.data<const T>(), invstd.data<const T>(), sums, splits, s,
                                                       training, narrow);
  });
  check_cuda_launch("batch_norm (backward)");
}

}  // namespace loom::kernels
