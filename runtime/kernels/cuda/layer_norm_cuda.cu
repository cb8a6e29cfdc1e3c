// layer_norm on the GPU (opdefs/nn/layer_norm.yaml): one block per row
// with a shared-memory reduction in double, as the CPU kernel computes;
// the backward's weight and bias gradients are column sums over rows, one
// thread per column (reads coalesced across the threads of a warp).
#include <cuda_runtime.h>

#include <cmath>

#include "generated/kernels/layer_norm.h"
#include "microkernel/base/error.h"
#include "runtime/kernels/float_dtype.h"
#include "runtime/kernels/cuda/block_sum.cuh"
#include "runtime/kernels/cuda/pointwise_cuda.cuh"
#include "runtime/kernels/layer_norm_kernels.h"

namespace loom::kernels {
namespace {

constexpr int kThreads = 256;


template <typename T>
__global__ void forward_kernel(T* out, T* mean, T* invstd, const T* x, const T* w, const T* b, RowSplit s,
                               double eps) {
  __shared__ double shared[kThreads];
  for (std::int64_t r = blockIdx.x; r < s.rows; r += gridDim.x) {
    const T* row = x + r * s.cols;
    double part = 0;
    for (std::int64_t i = threadIdx.x; i < s.cols; i += kThreads) part += double(row[i]);
    const double mu = block_sum<kThreads>(part, shared) / double(s.cols);
    part = 0;
    for (std::int64_t i = threadIdx.x; i < s.cols; i += kThreads) {
      const double d = double(row[i]) - mu;
      part += d * d;
    }
    const double inv = 1.0 / sqrt(block_sum<kThreads>(part, shared) / double(s.cols) + eps);
    if (threadIdx.x == 0) {
      mean[r] = T(mu);
      invstd[r] = T(inv);
    }
    const T mu_t = T(mu), inv_t = T(inv);
    for (std::int64_t i = threadIdx.x; i < s.cols; i += kThreads) {
      const T y = (row[i] - mu_t) * inv_t;
      out[r * s.cols + i] = (w ? y * w[i] : y) + (b ? b[i] : T(0));
    }
  }
}

template <typename T>
__global__ void dx_kernel(T* dx, const T* g, const T* x, const T* w, const T* mean, const T* invstd, RowSplit s) {
  __shared__ double shared[kThreads];
  for (std::int64_t r = blockIdx.x; r < s.rows; r += gridDim.x) {
    const double mu = mean[r], inv = invstd[r];
    double pgw = 0, pgwx = 0;
    for (std::int64_t i = threadIdx.x; i < s.cols; i += kThreads) {
      const double gw = double(g[r * s.cols + i]) * (w ? double(w[i]) : 1.0);
      pgw += gw;
      pgwx += gw * (double(x[r * s.cols + i]) - mu) * inv;
    }
    const double sum_gw = block_sum<kThreads>(pgw, shared), sum_gwx = block_sum<kThreads>(pgwx, shared);
    const double n = double(s.cols);
    for (std::int64_t i = threadIdx.x; i < s.cols; i += kThreads) {
      const double xhat = (double(x[r * s.cols + i]) - mu) * inv;
      const double gw = double(g[r * s.cols + i]) * (w ? double(w[i]) : 1.0);
      dx[r * s.cols + i] = T(inv * (gw - sum_gw / n - xhat * sum_gwx / n));
    }
  }
}

template <typename T>
__global__ void column_sums_kernel(T* dw, T* db, const T* g, const T* x, const T* mean, const T* invstd, RowSplit s) {
  const std::int64_t step = std::int64_t(blockDim.x) * gridDim.x;
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < s.cols; i += step) {
    double sw = 0, sb = 0;
    for (std::int64_t r = 0; r < s.rows; ++r) {
      const double gv = g[r * s.cols + i];
      sw += gv * (double(x[r * s.cols + i]) - double(mean[r])) * double(invstd[r]);
      sb += gv;
    }
    if (dw) dw[i] = T(sw);
    if (db) db[i] = T(sb);
  }
}

template <typename T>
const T* ptr(const NDArray& a) {
  return a.defined() ? a.data<const T>() : nullptr;
}

unsigned row_blocks(std::int64_t rows) { return static_cast<unsigned>(rows < 65535 ? rows : 65535); }

}  // namespace

void layer_norm_cuda(NDArray& out, NDArray& mean, NDArray& invstd, const NDArray& x_in, const NDArray& w_in,
                     const NDArray& b_in, std::int64_t axis, double eps) {
  if (x_in.numel() == 0) return;
  cuda_select_device("layer_norm", out.device().id);
  const RowSplit s = row_split(x_in.shape(), axis);
  const NDArray x = x_in.contiguous();
  const NDArray w = w_in.defined() ? w_in.contiguous() : NDArray(), b = b_in.defined() ? b_in.contiguous() : NDArray();
  by_dtype("layer_norm", out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    forward_kernel<T><<<row_blocks(s.rows), kThreads>>>(out.data<T>(), mean.data<T>(), invstd.data<T>(),
                                                         x.data<const T>(), ptr<T>(w), ptr<T>(b), s, eps);
  });
  check_cuda_launch("layer_norm");
}

void layer_norm_backward_cuda(NDArray& dx, NDArray& dweight, NDArray& dbias, const NDArray& g_in, const NDArray& x_in,
                              const NDArray& w_in, const NDArray& mean_in, const NDArray& invstd_in,
                              std::int64_t axis) {
  if (x_in.numel() == 0) return;
  cuda_select_device("layer_norm (backward)", x_in.device().id);
  const RowSplit s = row_split(x_in.shape(), axis);
  const NDArray g = g_in.contiguous(), x = x_in.contiguous(), m = mean_in.contiguous(), iv = invstd_in.contiguous();
  const NDArray w = w_in.defined() ? w_in.contiguous() : NDArray();
  by_dtype("layer_norm (backward)", x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if (dx.defined()) {
      dx_kernel<T><<<row_blocks(s.rows), kThreads>>>(dx.data<T>(), g.data<const T>(), x.data<const T>(), ptr<T>(w),
                                                      m.data<const T>(), iv.data<const T>(), s);
    }
    if (dweight.defined() || dbias.defined()) {
      column_sums_kernel<T><<<cuda_grid_blocks(s.cols, 256, x.device().id), 256>>>(
          dweight.defined() ? dweight.data<T>() : nullptr, dbias.defined() ? dbias.data<T>() : nullptr,
          g.data<const T>(), x.data<const T>(), m.data<const T>(), iv.data<const T>(), s);
    }
  });
  check_cuda_launch("layer_norm (backward)");
}

}  // namespace loom::kernels
