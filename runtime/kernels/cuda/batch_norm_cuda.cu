// batch_norm on the GPU (opdefs/nn/batch_norm.yaml): one block per channel,
// the block's threads striding over the channel's values with a shared-
// memory reduction in double (the CPU kernel's arithmetic), then the
// elementwise pass. The fused backward (batch_norm_kernels.h) likewise.
#include <cuda_runtime.h>

#include <cmath>

#include "generated/kernels/batch_norm.h"
#include "microkernel/base/error.h"
#include "runtime/kernels/float_dtype.h"
#include "runtime/kernels/batch_norm_kernels.h"
#include "runtime/kernels/cuda/block_sum.cuh"
#include "runtime/kernels/cuda/pointwise_cuda.cuh"

namespace loom::kernels {
namespace {

constexpr int kThreads = 256;


// element k of channel c: run k / rest of the batch, offset k % rest
__device__ inline std::int64_t at(ChannelSplit s, std::int64_t c, std::int64_t k) {
  return ((k / s.rest) * s.channels + c) * s.rest + k % s.rest;
}

template <typename T>
__global__ void forward_kernel(T* out, T* mean_out, T* invstd_out, const T* x, const T* w, const T* b, T* rm, T* rv,
                               ChannelSplit s, bool training, double momentum, double eps, bool relu) {
  __shared__ double shared[kThreads];
  const std::int64_t c = blockIdx.x, m = s.per_channel();
  double mu, var;
  if (training) {
    double part = 0;
    for (std::int64_t k = threadIdx.x; k < m; k += kThreads) part += double(x[at(s, c, k)]);
    mu = block_sum<kThreads>(part, shared) / double(m);
    part = 0;
    for (std::int64_t k = threadIdx.x; k < m; k += kThreads) {
      const double d = double(x[at(s, c, k)]) - mu;
      part += d * d;
    }
    const double sq = block_sum<kThreads>(part, shared);
    var = sq / double(m);
    if (threadIdx.x == 0 && rm != nullptr) {
      rm[c] = T((1 - momentum) * double(rm[c]) + momentum * mu);
      rv[c] = T((1 - momentum) * double(rv[c]) + momentum * sq / double(m - 1));
    }
  } else {
    mu = double(rm[c]);
    var = double(rv[c]);
  }
  const double inv = 1.0 / sqrt(var + eps);
  if (threadIdx.x == 0) {
    mean_out[c] = T(mu);
    invstd_out[c] = T(inv);
  }
  const double wc = w ? double(w[c]) : 1.0;
  const T scale = T(inv * wc), shift = T((b ? double(b[c]) : 0.0) - mu * inv * wc);
  for (std::int64_t k = threadIdx.x; k < m; k += kThreads) {
    const std::int64_t i = at(s, c, k);
    const T y = x[i] * scale + shift;
    out[i] = !relu || y > T(0) ? y : T(0);  // a fused ReLU: relu's where(y > 0, y, 0)
  }
}

template <typename T>
__global__ void backward_kernel(T* dx, T* dw, T* db, const T* g, const T* x, const T* w, const T* mean,
                                const T* invstd, ChannelSplit s, bool training) {
  __shared__ double shared[kThreads];
  const std::int64_t c = blockIdx.x, m = s.per_channel();
  const double mu = mean[c], inv = invstd[c];
  double pg = 0, pgx = 0;
  for (std::int64_t k = threadIdx.x; k < m; k += kThreads) {
    const std::int64_t i = at(s, c, k);
    pg += double(g[i]);
    pgx += double(g[i]) * (double(x[i]) - mu);
  }
  const double sum_g = block_sum<kThreads>(pg, shared), sum_gx = block_sum<kThreads>(pgx, shared);
  if (threadIdx.x == 0) {
    if (db) db[c] = T(sum_g);
    if (dw) dw[c] = T(sum_gx * inv);
  }
  if (!dx) return;
  const double wc = w ? double(w[c]) : 1.0;
  const T a = T(wc * inv), g_mean = T(training ? sum_g / double(m) : 0.0);
  const T x_coef = T(training ? sum_gx * inv * inv / double(m) : 0.0), mu_t = T(mu);
  for (std::int64_t k = threadIdx.x; k < m; k += kThreads) {
    const std::int64_t i = at(s, c, k);
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
  by_dtype("batch_norm", out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    forward_kernel<T><<<static_cast<unsigned>(s.channels), kThreads>>>(
        out.data<T>(), mean.data<T>(), invstd.data<T>(), x.data<const T>(), ptr<T>(weight), ptr<T>(bias),
        mut<T>(running_mean), mut<T>(running_var), s, training, momentum, eps, relu);
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
  by_dtype("batch_norm (backward)", x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    backward_kernel<T><<<static_cast<unsigned>(s.channels), kThreads>>>(
        mut<T>(dx), mut<T>(dweight), mut<T>(dbias), g.data<const T>(), x.data<const T>(), ptr<T>(weight),
        mean.data<const T>(), invstd.data<const T>(), s, training);
  });
  check_cuda_launch("batch_norm (backward)");
}

}  // namespace loom::kernels
