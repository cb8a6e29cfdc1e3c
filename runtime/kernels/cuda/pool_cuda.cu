// Max and average pooling on the GPU (opdefs/nn/pooling.yaml): one thread
// per output element for max_pool, avg_pool and the adaptive forms, and one per input element
// for avg_pool_grad and adaptive_avg_pool_grad, which gather from the
// windows covering it (no atomics, so the result does not depend on
// scheduling). max_pool's and adaptive_max_pool's gradient scatters with
// atomics: where three or more windows share an argmax (overlapping
// windows, stride below the kernel; adaptive pooling to more outputs than
// inputs), the sum's last bits vary between runs.
// Geometry and errors come from runtime/kernels/pool_geometry.h, as on the CPU.
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "generated/kernels/adaptive_avg_pool.h"
#include "generated/kernels/adaptive_avg_pool_grad.h"
#include "generated/kernels/adaptive_max_pool.h"
#include "generated/kernels/avg_pool.h"
#include "generated/kernels/avg_pool_grad.h"
#include "generated/kernels/max_pool.h"
#include "microkernel/base/error.h"
#include "runtime/kernels/float_dtype.h"
#include "runtime/kernels/cuda/index_flag.cuh"
#include "runtime/kernels/cuda/pointwise_cuda.cuh"
#include "runtime/kernels/pool_geometry.h"
#include "runtime/kernels/pool_kernels.h"

namespace loom::kernels {
namespace {

// PoolGeometry as plain arrays for the kernels.
struct Windows {
  std::int64_t planes, in[3], out[3], kernel[3], stride[3], pad[3], dilation[3];
};

Windows windows_of(const PoolGeometry& g) {
  Windows w{g.planes, {}, {}, {}, {}, {}, {}};
  for (int k = 0; k < 3; ++k) {
    w.in[k] = g.in[k];
    w.out[k] = g.out[k];
    w.kernel[k] = g.kernel[k];
    w.stride[k] = g.stride[k];
    w.pad[k] = g.pad[k];
    w.dilation[k] = g.dilation[k];
  }
  return w;
}

// out index -> (plane, od, oh, ow)
__device__ inline void unflatten(const Windows& w, std::int64_t i, std::int64_t* p, std::int64_t o[3]) {
  o[2] = i % w.out[2];
  i /= w.out[2];
  o[1] = i % w.out[1];
  i /= w.out[1];
  o[0] = i % w.out[0];
  *p = i / w.out[0];
}

template <typename T>
__global__ void max_pool_kernel(T* out, std::int64_t* indices, const T* in, Windows w, std::int64_t n, long long* empty) {
  const std::int64_t step = std::int64_t(blockDim.x) * gridDim.x;
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n; i += step) {
    std::int64_t p, o[3];
    unflatten(w, i, &p, o);
    const T* plane = in + p * w.in[0] * w.in[1] * w.in[2];
    T best = T(0);
    std::int64_t where = -1;
    for (std::int64_t kd = 0; kd < w.kernel[0] && !(where >= 0 && isnan(best)); ++kd) {
      const std::int64_t id = o[0] * w.stride[0] - w.pad[0] + kd * w.dilation[0];
      if (id < 0 || id >= w.in[0]) continue;
      for (std::int64_t kh = 0; kh < w.kernel[1]; ++kh) {
        const std::int64_t ih = o[1] * w.stride[1] - w.pad[1] + kh * w.dilation[1];
        if (ih < 0 || ih >= w.in[1]) continue;
        for (std::int64_t kw = 0; kw < w.kernel[2]; ++kw) {
          const std::int64_t iw = o[2] * w.stride[2] - w.pad[2] + kw * w.dilation[2];
          if (iw < 0 || iw >= w.in[2]) continue;
          const std::int64_t at = (id * w.in[1] + ih) * w.in[2] + iw;
          const T v = plane[at];
          if (where < 0 || (!isnan(best) && (v > best || isnan(v)))) {  // the first NaN wins
            best = v;
            where = at;
          }
        }
      }
    }
    if (where < 0) empty[0] = 1;  // read back by DeviceIndexFlag::bad
    out[i] = best;
    indices[i] = where < 0 ? 0 : where;
  }
}

// One dim's clipped window and its divisor length, as window_span().
__device__ inline void span(std::int64_t o, std::int64_t s, std::int64_t p, std::int64_t k, std::int64_t in,
                            std::int64_t* start, std::int64_t* end, std::int64_t* padded) {
  std::int64_t a = o * s - p, b = a + k;
  *padded = (b < in + p ? b : in + p) - a;
  *start = a < 0 ? 0 : a;
  *end = b < in ? b : in;
}

__device__ inline std::int64_t divisor(const Windows& w, const std::int64_t o[3], bool include_pad,
                                       std::int64_t start[3], std::int64_t end[3]) {
  std::int64_t padded = 1, inside = 1;
  for (int k = 0; k < 3; ++k) {
    std::int64_t len;
    span(o[k], w.stride[k], w.pad[k], w.kernel[k], w.in[k], &start[k], &end[k], &len);
    padded *= len;
    inside *= end[k] - start[k];
  }
  return include_pad ? padded : inside;
}

template <typename T>
__global__ void avg_pool_kernel(T* out, const T* in, Windows w, std::int64_t n, bool include_pad) {
  const std::int64_t step = std::int64_t(blockDim.x) * gridDim.x;
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n; i += step) {
    std::int64_t p, o[3], start[3], end[3];
    unflatten(w, i, &p, o);
    const std::int64_t count = divisor(w, o, include_pad, start, end);
    const T* plane = in + p * w.in[0] * w.in[1] * w.in[2];
    T total = 0;
    for (std::int64_t id = start[0]; id < end[0]; ++id) {
      for (std::int64_t ih = start[1]; ih < end[1]; ++ih) {
        for (std::int64_t iw = start[2]; iw < end[2]; ++iw) total += plane[(id * w.in[1] + ih) * w.in[2] + iw];
      }
    }
    out[i] = count > 0 ? total / T(count) : T(0);
  }
}

// The outputs o whose window [o*s - p, o*s - p + k) holds input position x.
__device__ inline void covering(std::int64_t x, std::int64_t s, std::int64_t p, std::int64_t k, std::int64_t out,
                                std::int64_t* lo, std::int64_t* hi) {
  const std::int64_t a = x + p - k + 1;  // o*s >= a
  *lo = a <= 0 ? 0 : (a + s - 1) / s;
  const std::int64_t b = (x + p) / s + 1;
  *hi = b < out ? b : out;
}

template <typename T>
__global__ void avg_pool_grad_kernel(T* dx, const T* dy, Windows w, std::int64_t n, bool include_pad) {
  const std::int64_t step = std::int64_t(blockDim.x) * gridDim.x;
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n; i += step) {
    std::int64_t x[3], rest = i;
    x[2] = rest % w.in[2];
    rest /= w.in[2];
    x[1] = rest % w.in[1];
    rest /= w.in[1];
    x[0] = rest % w.in[0];
    const std::int64_t p = rest / w.in[0];
    std::int64_t lo[3], hi[3];
    for (int k = 0; k < 3; ++k) covering(x[k], w.stride[k], w.pad[k], w.kernel[k], w.out[k], &lo[k], &hi[k]);
    const T* grads = dy + p * w.out[0] * w.out[1] * w.out[2];
    T total = 0;
    std::int64_t o[3], start[3], end[3];
    for (o[0] = lo[0]; o[0] < hi[0]; ++o[0]) {
      for (o[1] = lo[1]; o[1] < hi[1]; ++o[1]) {
        for (o[2] = lo[2]; o[2] < hi[2]; ++o[2]) {
          const std::int64_t count = divisor(w, o, include_pad, start, end);
          if (count > 0) total += grads[(o[0] * w.out[1] + o[1]) * w.out[2] + o[2]] / T(count);
        }
      }
    }
    dx[i] = total;
  }
}

// dx[plane][indices[k]] += grad[k]: windows may share an argmax, hence atomics
template <typename T>
__global__ void max_pool_scatter_kernel(T* dx, const T* g, const std::int64_t* idx, std::int64_t n,
                                        std::int64_t per_plane, std::int64_t plane_size) {
  const std::int64_t step = std::int64_t(blockDim.x) * gridDim.x;
  for (std::int64_t k = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; k < n; k += step) {
    atomicAdd(dx + (k / per_plane) * plane_size + idx[k], g[k]);
  }
}

// Output i's adaptive window [lo, hi) per dim, and the plane it reads.
template <typename T>
__device__ inline const T* adaptive_window_of(const Windows& w, std::int64_t i, const T* in, std::int64_t lo[3],
                                              std::int64_t hi[3]) {
  std::int64_t p, o[3];
  unflatten(w, i, &p, o);
  for (int k = 0; k < 3; ++k) adaptive_window(o[k], w.in[k], w.out[k], lo[k], hi[k]);
  return in + p * w.in[0] * w.in[1] * w.in[2];
}

// adaptive_avg_pool: one thread per output; its gradient: one thread per
// input element, gathering from the windows that hold it (no atomics).
template <typename T>
__global__ void adaptive_kernel(T* out, const T* in, Windows w, std::int64_t n) {
  const std::int64_t step = std::int64_t(blockDim.x) * gridDim.x;
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n; i += step) {
    std::int64_t lo[3], hi[3];
    const T* plane = adaptive_window_of(w, i, in, lo, hi);
    T total = 0;
    for (std::int64_t d = lo[0]; d < hi[0]; ++d) {
      for (std::int64_t h = lo[1]; h < hi[1]; ++h) {
        for (std::int64_t x = lo[2]; x < hi[2]; ++x) total += plane[(d * w.in[1] + h) * w.in[2] + x];
      }
    }
    out[i] = total / T((hi[0] - lo[0]) * (hi[1] - lo[1]) * (hi[2] - lo[2]));
  }
}

// adaptive_max_pool: one thread per output, scanning its window in row-major
// order (the first NaN wins, ties keep the earlier element, as on the CPU).
template <typename T>
__global__ void adaptive_max_kernel(T* out, std::int64_t* indices, const T* in, Windows w, std::int64_t n) {
  const std::int64_t step = std::int64_t(blockDim.x) * gridDim.x;
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n; i += step) {
    std::int64_t lo[3], hi[3];
    const T* plane = adaptive_window_of(w, i, in, lo, hi);
    std::int64_t where = (lo[0] * w.in[1] + lo[1]) * w.in[2] + lo[2];
    T best = plane[where];
    for (std::int64_t d = lo[0]; d < hi[0]; ++d) {
      for (std::int64_t h = lo[1]; h < hi[1]; ++h) {
        for (std::int64_t x = lo[2]; x < hi[2]; ++x) {
          const std::int64_t at = (d * w.in[1] + h) * w.in[2] + x;
          const T v = plane[at];
          if (!isnan(best) && (v > best || isnan(v))) {
            best = v;
            where = at;
          }
        }
      }
    }
    out[i] = best;
    indices[i] = where;
  }
}

template <typename T>
__global__ void adaptive_grad_kernel(T* dx, const T* dy, Windows w, std::int64_t n) {
  const std::int64_t step = std::int64_t(blockDim.x) * gridDim.x;
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n; i += step) {
    std::int64_t x[3], rest = i;
    for (int k = 2; k >= 0; --k) {
      x[k] = rest % w.in[k];
      rest /= w.in[k];
    }
    const T* grads = dy + rest * w.out[0] * w.out[1] * w.out[2];
    // outputs whose window holds x[k]: o with floor(o in / out) <= x < ceil((o + 1) in / out)
    std::int64_t lo[3], hi[3];
    for (int k = 0; k < 3; ++k) {
      lo[k] = x[k] * w.out[k] / w.in[k];
      hi[k] = ((x[k] + 1) * w.out[k] + w.in[k] - 1) / w.in[k];
      if (hi[k] > w.out[k]) hi[k] = w.out[k];
    }
    T total = 0;
    std::int64_t o[3];
    for (o[0] = lo[0]; o[0] < hi[0]; ++o[0]) {
      for (o[1] = lo[1]; o[1] < hi[1]; ++o[1]) {
        for (o[2] = lo[2]; o[2] < hi[2]; ++o[2]) {
          std::int64_t count = 1;
          bool inside = true;
          for (int k = 0; k < 3; ++k) {
            std::int64_t a, b;
            adaptive_window(o[k], w.in[k], w.out[k], a, b);
            inside = inside && a <= x[k] && x[k] < b;
            count *= b - a;
          }
          if (inside) total += grads[(o[0] * w.out[1] + o[1]) * w.out[2] + o[2]] / T(count);
        }
      }
    }
    dx[i] = total;
  }
}

// One thread per element of `out`, reading `in` made dense: calls
// launch(tag, in, windows, n, blocks) for out's dtype, on out's device, then
// checks the launch. Nothing runs for an empty out.
template <typename Launch>
void per_element(const char* op, const PoolGeometry& g, NDArray& out, const NDArray& in_any, Launch&& launch) {
  const std::int64_t n = out.numel();
  if (n == 0) return;
  cuda_select_device(op, out.device().id);
  const NDArray in = in_any.contiguous();
  const unsigned blocks = cuda_grid_blocks(n, 256, out.device().id);
  by_dtype(op, out.dtype(), [&](auto tag) { launch(tag, in, windows_of(g), n, blocks); });
  check_cuda_launch(op);
}

}  // namespace

void max_pool_cuda(NDArray& out, NDArray& indices, const NDArray& x_in, ReduceDims kernel, ReduceDims stride,
                   ReduceDims padding, ReduceDims dilation, bool ceil_mode) {
  const PoolGeometry g = pool_geometry("max_pool", x_in.shape(), kernel, stride, padding, dilation, ceil_mode);
  const std::int64_t n = out.numel();
  if (n == 0) return;
  cuda_select_device("max_pool", out.device().id);
  const NDArray x = x_in.contiguous();
  DeviceIndexFlag empty(out.device());
  by_dtype("max_pool", out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    max_pool_kernel<T><<<cuda_grid_blocks(n, 256, out.device().id), 256>>>(
        out.data<T>(), indices.data<std::int64_t>(), x.data<const T>(), windows_of(g), n, empty.flag);
  });
  check_cuda_launch("max_pool");
  std::int64_t unused = 0;
  LOOM_CHECK(!empty.bad("max_pool", unused), "max_pool: a window lies entirely in the padding (x ", x_in.describe(),
             "); use less padding or dilation");
}

void avg_pool_cuda(NDArray& out, const NDArray& x_in, ReduceDims kernel, ReduceDims stride, ReduceDims padding,
                   bool ceil_mode, bool count_include_pad) {
  const PoolGeometry g = pool_geometry("avg_pool", x_in.shape(), kernel, stride, padding, ReduceDims(), ceil_mode);
  per_element("avg_pool", g, out, x_in, [&](auto tag, const NDArray& x, Windows w, std::int64_t n, unsigned blocks) {
    using T = decltype(tag);
    avg_pool_kernel<T><<<blocks, 256>>>(out.data<T>(), x.data<const T>(), w, n, count_include_pad);
  });
}

void avg_pool_grad_cuda(NDArray& out, const NDArray& grad_out, ReduceDims input_size, ReduceDims kernel,
                        ReduceDims stride, ReduceDims padding, bool ceil_mode, bool count_include_pad) {
  Shape input;
  const PoolGeometry g = pool_grad_geometry(grad_out, input_size, kernel, stride, padding, ceil_mode, &input);
  per_element("avg_pool_grad", g, out, grad_out,
              [&](auto tag, const NDArray& dy, Windows w, std::int64_t n, unsigned blocks) {
                using T = decltype(tag);
                avg_pool_grad_kernel<T><<<blocks, 256>>>(out.data<T>(), dy.data<const T>(), w, n, count_include_pad);
              });
}

void max_pool_scatter_cuda(NDArray& dx, const NDArray& grad_in, const NDArray& indices_in) {
  const std::int64_t planes = dx.ndim() >= 2 ? dx.shape()[0] * dx.shape()[1] : 1;
  if (dx.numel() == 0 || planes == 0) return;
  cuda_select_device("max_pool (backward)", dx.device().id);
  const NDArray grad = grad_in.contiguous(), indices = indices_in.contiguous();
  cudaMemsetAsync(dx.data<std::uint8_t>(), 0, dx.nbytes());
  const std::int64_t n = grad.numel();
  if (n == 0) return;
  by_dtype("max_pool (backward)", dx.dtype(), [&](auto tag) {
    using T = decltype(tag);
    max_pool_scatter_kernel<T><<<cuda_grid_blocks(n, 256, dx.device().id), 256>>>(
        dx.data<T>(), grad.data<const T>(), indices.data<const std::int64_t>(), n, n / planes, dx.numel() / planes);
  });
  check_cuda_launch("max_pool (backward)");
}

void adaptive_avg_pool_cuda(NDArray& out, const NDArray& x_in, ReduceDims output_size) {
  const PoolGeometry g = adaptive_geometry("adaptive_avg_pool", x_in.shape(), output_size);
  per_element("adaptive_avg_pool", g, out, x_in,
              [&](auto tag, const NDArray& x, Windows w, std::int64_t n, unsigned blocks) {
                using T = decltype(tag);
                adaptive_kernel<T><<<blocks, 256>>>(out.data<T>(), x.data<const T>(), w, n);
              });
}

void adaptive_max_pool_cuda(NDArray& out, NDArray& indices, const NDArray& x_in, ReduceDims output_size) {
  const PoolGeometry g = adaptive_geometry("adaptive_max_pool", x_in.shape(), output_size);
  per_element("adaptive_max_pool", g, out, x_in,
              [&](auto tag, const NDArray& x, Windows w, std::int64_t n, unsigned blocks) {
                using T = decltype(tag);
                adaptive_max_kernel<T><<<blocks, 256>>>(out.data<T>(), indices.data<std::int64_t>(),
                                                        x.data<const T>(), w, n);
              });
}

void adaptive_avg_pool_grad_cuda(NDArray& out, const NDArray& grad_out, ReduceDims input_size) {
  if (out.numel() == 0) return;
  std::vector<std::int64_t> sizes(grad_out.shape().begin() + 2, grad_out.shape().end());
  const PoolGeometry g = adaptive_geometry("adaptive_avg_pool_grad", out.shape(), ReduceDims(sizes));
  per_element("adaptive_avg_pool_grad", g, out, grad_out,
              [&](auto tag, const NDArray& dy, Windows w, std::int64_t n, unsigned blocks) {
                using T = decltype(tag);
                adaptive_grad_kernel<T><<<blocks, 256>>>(out.data<T>(), dy.data<const T>(), w, n);
              });
}

}  // namespace loom::kernels
