// Upsampling on the GPU (opdefs/nn/upsample.yaml): one thread per output
// element; the adjoints (the *_grad ops) add into the input with atomics,
// since several outputs read one input. Shapes are checked by the CPU
// side's shape functions before these run; index arithmetic comes from
// runtime/kernels/upsample_layout.h, as on the CPU.
#include <cuda_runtime.h>

#include <vector>

#include "generated/kernels/upsample_bilinear.h"
#include "generated/kernels/upsample_bilinear_grad.h"
#include "generated/kernels/upsample_nearest.h"
#include "generated/kernels/upsample_nearest_grad.h"
#include "microkernel/base/error.h"
#include "runtime/kernels/cuda/pointwise_cuda.cuh"
#include "runtime/kernels/upsample_layout.h"

namespace loom::kernels {
namespace {

struct Sizes {
  std::int64_t in[3], out[3];
};

// (batch, channels, *in) and (batch, channels, *out) in canonical 3-D form
Sizes sizes_of(const Shape& in, const Shape& out) {
  Sizes s{{1, 1, 1}, {1, 1, 1}};
  const int n = static_cast<int>(in.size()) - 2;
  for (int k = 0; k < n; ++k) {
    s.in[3 - n + k] = in[2 + k];
    s.out[3 - n + k] = out[2 + k];
  }
  return s;
}

template <typename T>
__global__ void nearest_kernel(T* dst, const T* src, Sizes s, std::int64_t n, bool adjoint) {
  const std::int64_t step = std::int64_t(blockDim.x) * gridDim.x;
  const std::int64_t in_plane = s.in[0] * s.in[1] * s.in[2], out_plane = s.out[0] * s.out[1] * s.out[2];
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n; i += step) {
    const std::int64_t w = i % s.out[2], h = (i / s.out[2]) % s.out[1], d = (i / (s.out[2] * s.out[1])) % s.out[0];
    const std::int64_t p = i / out_plane;
    const std::int64_t at = p * in_plane + (nearest_source(d, s.in[0], s.out[0]) * s.in[1] +
                                            nearest_source(h, s.in[1], s.out[1])) * s.in[2] +
                            nearest_source(w, s.in[2], s.out[2]);
    if (adjoint) {
      atomicAdd(dst + at, src[i]);
    } else {
      dst[i] = src[at];
    }
  }
}

template <typename T>
__global__ void bilinear_kernel(T* dst, const T* src, Sizes s, std::int64_t n, bool align_corners, bool adjoint) {
  const std::int64_t step = std::int64_t(blockDim.x) * gridDim.x;
  const std::int64_t IH = s.in[1], IW = s.in[2], OH = s.out[1], OW = s.out[2];
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n; i += step) {
    const std::int64_t w = i % OW, h = (i / OW) % OH, p = i / (OW * OH);
    const LinearTap a = linear_tap(h, IH, OH, align_corners), b = linear_tap(w, IW, OW, align_corners);
    const std::int64_t base = p * IH * IW;
    const T w00 = T((1 - a.lambda) * (1 - b.lambda)), w01 = T((1 - a.lambda) * b.lambda);
    const T w10 = T(a.lambda * (1 - b.lambda)), w11 = T(a.lambda * b.lambda);
    if (adjoint) {
      const T v = src[i];
      atomicAdd(dst + base + a.i0 * IW + b.i0, w00 * v);
      atomicAdd(dst + base + a.i0 * IW + b.i1, w01 * v);
      atomicAdd(dst + base + a.i1 * IW + b.i0, w10 * v);
      atomicAdd(dst + base + a.i1 * IW + b.i1, w11 * v);
    } else {
      dst[i] = w00 * src[base + a.i0 * IW + b.i0] + w01 * src[base + a.i0 * IW + b.i1] +
               w10 * src[base + a.i1 * IW + b.i0] + w11 * src[base + a.i1 * IW + b.i1];
    }
  }
}

// Runs `launch(T*, const T*, n)` over the outputs (the upsampled array's
// elements), zeroing an adjoint's destination first.
template <typename Launch>
void run(const char* op, NDArray& dst, const NDArray& src_in, std::int64_t n, bool adjoint, Launch launch) {
  if (dst.numel() == 0 || n == 0) {
    if (adjoint && dst.numel() > 0) cudaMemsetAsync(dst.data<std::uint8_t>(), 0, dst.nbytes());
    return;
  }
  cuda_select_device(op, dst.device().id);
  const NDArray src = src_in.contiguous();
  if (adjoint) cudaMemsetAsync(dst.data<std::uint8_t>(), 0, dst.nbytes());
  const unsigned blocks = cuda_grid_blocks(n, 256, dst.device().id);
  switch (dst.dtype()) {
    case DType::kFloat32: launch(dst.data<float>(), src.data<const float>(), blocks); break;
    case DType::kFloat64: launch(dst.data<double>(), src.data<const double>(), blocks); break;
    default: LOOM_THROW(ErrorKind::kType, op, ": no CUDA kernel for dtype ", dtype_name(dst.dtype()));
  }
  check_cuda_launch(op);
}

}  // namespace

void upsample_nearest_cuda(NDArray& out, const NDArray& x, ReduceDims size) {
  const Sizes s = sizes_of(x.shape(), out.shape());
  const std::int64_t n = out.numel();
  run("upsample_nearest", out, x, n, false, [&](auto* d, const auto* src, unsigned blocks) {
    nearest_kernel<<<blocks, 256>>>(d, src, s, n, false);
  });
}

void upsample_nearest_grad_cuda(NDArray& out, const NDArray& grad_out, ReduceDims input_size) {
  const Sizes s = sizes_of(out.shape(), grad_out.shape());
  const std::int64_t n = grad_out.numel();
  run("upsample_nearest_grad", out, grad_out, n, true, [&](auto* d, const auto* src, unsigned blocks) {
    nearest_kernel<<<blocks, 256>>>(d, src, s, n, true);
  });
}

void upsample_bilinear_cuda(NDArray& out, const NDArray& x, ReduceDims size, bool align_corners) {
  const Sizes s = sizes_of(x.shape(), out.shape());
  const std::int64_t n = out.numel();
  run("upsample_bilinear", out, x, n, false, [&](auto* d, const auto* src, unsigned blocks) {
    bilinear_kernel<<<blocks, 256>>>(d, src, s, n, align_corners, false);
  });
}

void upsample_bilinear_grad_cuda(NDArray& out, const NDArray& grad_out, ReduceDims input_size, bool align_corners) {
  const Sizes s = sizes_of(out.shape(), grad_out.shape());
  const std::int64_t n = grad_out.numel();
  run("upsample_bilinear_grad", out, grad_out, n, true, [&](auto* d, const auto* src, unsigned blocks) {
    bilinear_kernel<<<blocks, 256>>>(d, src, s, n, align_corners, true);
  });
}

}  // namespace loom::kernels
