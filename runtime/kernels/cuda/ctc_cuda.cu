// ctc_loss on the GPU (opdefs/nn/ctc.yaml): the CPU's algorithm
// (runtime/kernels/cpu/ctc_cpu.cc), one block per sample. The block's
// threads share the positions j of the blank-extended target l' (blank,
// l1, blank, l2, ..., blank) and step through the frames together, the
// alpha (and, backward, beta) recursions in log space in double, as on the
// CPU, so both devices agree to rounding.
//
// Forward: two alpha rows per sample in a scratch buffer. Backward: the
// whole alpha table (frames x |l'| doubles per sample, as torch's saved
// log_alpha), then beta row by row from the last frame, each row gathered
// into the gradient as soon as it is known: for each class k of l',
// d loss / d lp[t, k] = -grad * exp(logsumexp_{j: l'_j = k}(alpha + beta)
// + nll - lp[t, k]), zero elsewhere. The positions holding one class are
// chained (next[j]), so one thread sums each class in the CPU's order.
//
// Lengths and labels are copied to the host and checked there first
// (check_ctc_lengths), so bad input raises the CPU's errors.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "generated/kernels/ctc_loss.h"
#include "microkernel/base/error.h"
#include "runtime/kernels/ctc_kernels.h"
#include "runtime/kernels/cuda/device_scratch.h"
#include "runtime/kernels/cuda/pointwise_cuda.cuh"
#include "runtime/kernels/float_dtype.h"

namespace loom::kernels {
namespace {

struct CtcArgs {
  const std::int64_t *targets, *input_lengths, *target_lengths;
  std::int64_t frames, batch, classes, max_target, blank;
  std::int64_t width;  // 2 * max_target + 1: the longest extended target
};

__device__ __forceinline__ double log_add(double a, double b) {
  if (a == -INFINITY) return b;
  if (b == -INFINITY) return a;
  return fmax(a, b) + log1p(exp(-fabs(a - b)));
}

// l'_j of sample n: blank at even j, the ((j - 1) / 2)-th label at odd j.
__device__ __forceinline__ std::int64_t ext_at(const CtcArgs& a, std::int64_t n, std::int64_t j) {
  return (j & 1) ? a.targets[n * a.max_target + (j >> 1)] : a.blank;
}

template <typename T>
__device__ __forceinline__ double lp_at(const T* lp, const CtcArgs& a, std::int64_t t, std::int64_t n,
                                        std::int64_t k) {
  return double(lp[(t * a.batch + n) * a.classes + k]);
}

// alpha row 0: the path starts at the first blank or the first label.
template <typename T>
__device__ void alpha_first(double* row, const T* lp, const CtcArgs& a, std::int64_t n, std::int64_t len) {
  for (std::int64_t j = threadIdx.x; j < len; j += blockDim.x) row[j] = j < 2 ? lp_at(lp, a, 0, n, ext_at(a, n, j)) : -INFINITY;
}

// alpha row t from row t - 1: stay, advance one, or skip a blank between
// two different labels.
template <typename T>
__device__ void alpha_step(double* cur, const double* prev, const T* lp, const CtcArgs& a, std::int64_t n,
                           std::int64_t t, std::int64_t len) {
  for (std::int64_t j = threadIdx.x; j < len; j += blockDim.x) {
    const std::int64_t k = ext_at(a, n, j);
    double v = prev[j];
    if (j >= 1) v = log_add(v, prev[j - 1]);
    if (j >= 2 && k != a.blank && k != ext_at(a, n, j - 2)) v = log_add(v, prev[j - 2]);
    cur[j] = v == -INFINITY ? -INFINITY : v + lp_at(lp, a, t, n, k);
  }
}

// log p(target) from the last alpha row: the path ends on the last label or the blank after it.
__device__ __forceinline__ double log_likelihood(const double* last, std::int64_t len) {
  return len > 1 ? log_add(last[len - 1], last[len - 2]) : last[len - 1];
}

template <typename T>
__global__ void ctc_forward_kernel(T* loss, const T* lp, CtcArgs a, double* rows) {
  const std::int64_t n = blockIdx.x;
  const std::int64_t frames = a.input_lengths[n], len = 2 * a.target_lengths[n] + 1;
  if (frames == 0) {
    if (threadIdx.x == 0) loss[n] = len == 1 ? T(0) : T(INFINITY);
    return;
  }
  double* row[2] = {rows + n * 2 * a.width, rows + n * 2 * a.width + a.width};
  alpha_first(row[0], lp, a, n, len);
  __syncthreads();
  for (std::int64_t t = 1; t < frames; ++t) {
    alpha_step(row[t & 1], row[(t - 1) & 1], lp, a, n, t, len);
    __syncthreads();
  }
  if (threadIdx.x == 0) loss[n] = T(-log_likelihood(row[(frames - 1) & 1], len));
}

// dlp must be zero on entry. alpha: (batch, frames, width) doubles; beta:
// (batch, 2, width); next: (batch, width) ints, -1 ending a chain, and head
// marking the first position of each class.
template <typename T>
__global__ void ctc_backward_kernel(T* dlp, const T* grad, const T* loss, const T* lp, CtcArgs a, double* alpha_ws,
                                    double* beta_ws, int* next_ws, int* head_ws) {
  const std::int64_t n = blockIdx.x;
  const std::int64_t frames = a.input_lengths[n], len = 2 * a.target_lengths[n] + 1;
  const double nll = double(loss[n]);
  if (frames == 0 || !isfinite(nll)) return;  // infeasible: zero gradient
  double* alpha = alpha_ws + n * a.frames * a.width;
  double* beta[2] = {beta_ws + n * 2 * a.width, beta_ws + n * 2 * a.width + a.width};
  int* next = next_ws + n * a.width;
  int* head = head_ws + n * a.width;
  for (std::int64_t j = threadIdx.x; j < len; j += blockDim.x) {
    const std::int64_t k = ext_at(a, n, j);
    std::int64_t after = j + 2;  // blanks and labels each sit every other position
    while (after < len && ext_at(a, n, after) != k) after += 2;
    next[j] = after < len ? int(after) : -1;
    std::int64_t before = j - 2;
    while (before >= 0 && ext_at(a, n, before) != k) before -= 2;
    head[j] = before < 0;
  }
  alpha_first(alpha, lp, a, n, len);
  __syncthreads();
  for (std::int64_t t = 1; t < frames; ++t) {
    alpha_step(alpha + t * a.width, alpha + (t - 1) * a.width, lp, a, n, t, len);
    __syncthreads();
  }
  const double scale = double(grad[n]);
  for (std::int64_t t = frames - 1; t >= 0; --t) {
    double* cur = beta[t & 1];
    const double* later = beta[(t + 1) & 1];
    for (std::int64_t j = threadIdx.x; j < len; j += blockDim.x) {
      const std::int64_t k = ext_at(a, n, j);
      double v;
      if (t == frames - 1) {
        v = j >= len - 2 ? 0.0 : -INFINITY;  // the path ends on the last label or the blank after it
      } else {
        v = later[j];
        if (j + 1 < len) v = log_add(v, later[j + 1]);
        if (j + 2 < len && k != a.blank && k != ext_at(a, n, j + 2)) v = log_add(v, later[j + 2]);
      }
      cur[j] = v == -INFINITY ? -INFINITY : v + lp_at(lp, a, t, n, k);
    }
    __syncthreads();
    const double* alpha_t = alpha + t * a.width;
    for (std::int64_t j = threadIdx.x; j < len; j += blockDim.x) {
      if (!head[j]) continue;
      double sum = -INFINITY;
      for (int q = int(j); q >= 0; q = next[q]) {
        const double ab = alpha_t[q] + cur[q];
        if (ab != -INFINITY) sum = log_add(sum, ab);
      }
      const std::int64_t k = ext_at(a, n, j);
      if (sum != -INFINITY) dlp[(t * a.batch + n) * a.classes + k] = T(-scale * exp(sum + nll - lp_at(lp, a, t, n, k)));
    }
    // the next row overwrites the one before this (read above by the gather of t + 1, done before the barrier)
  }
}

// The dense int64 index inputs on the device, their host copies checked.
struct CtcInputs {
  NDArray targets, input_lengths, target_lengths;
  CtcArgs args;
};

CtcInputs ctc_inputs(const CtcShape& s, const NDArray& targets, const NDArray& input_lengths,
                     const NDArray& target_lengths, std::int64_t blank) {
  CtcInputs in{targets.contiguous(), input_lengths.contiguous(), target_lengths.contiguous(), {}};
  std::vector<std::int64_t> t(static_cast<std::size_t>(s.batch * s.max_target)), il(static_cast<std::size_t>(s.batch)),
      tl(static_cast<std::size_t>(s.batch));
  if (!t.empty()) in.targets.copy_to_host(t.data());
  in.input_lengths.copy_to_host(il.data());
  in.target_lengths.copy_to_host(tl.data());
  check_ctc_lengths(s, t.data(), il.data(), tl.data(), blank);
  in.args = CtcArgs{in.targets.data<const std::int64_t>(), in.input_lengths.data<const std::int64_t>(),
                    in.target_lengths.data<const std::int64_t>(), s.frames, s.batch, s.classes, s.max_target, blank,
                    2 * s.max_target + 1};
  return in;
}

// Threads per block: the positions of the longest extended target, in whole warps, at most 256.
int ctc_threads(const CtcArgs& a) {
  const std::int64_t warps = (a.width + 31) / 32;
  return int(warps >= 8 ? 256 : warps * 32);
}

}  // namespace

void ctc_loss_cuda(NDArray& loss, const NDArray& log_probs_in, const NDArray& targets, const NDArray& input_lengths,
                   const NDArray& target_lengths, std::int64_t blank) {
  const CtcShape s = ctc_shape(log_probs_in, targets);
  if (s.batch == 0) return;
  cuda_select_device("ctc_loss", loss.device().id);
  const CtcInputs in = ctc_inputs(s, targets, input_lengths, target_lengths, blank);
  const NDArray lp = log_probs_in.contiguous();
  const DeviceScratch rows(std::size_t(s.batch) * 2 * std::size_t(in.args.width) * sizeof(double), loss.device());
  by_dtype("ctc_loss", loss.dtype(), [&](auto tag) {
    using T = decltype(tag);
    ctc_forward_kernel<T><<<unsigned(s.batch), ctc_threads(in.args)>>>(loss.data<T>(), lp.data<const T>(), in.args,
                                                                       rows.as<double>());
  });
  check_cuda_launch("ctc_loss");
}

void ctc_loss_backward_cuda(NDArray& dlp, const NDArray& grad_in, const NDArray& log_probs_in, const NDArray& targets,
                            const NDArray& input_lengths, const NDArray& target_lengths, const NDArray& loss_in,
                            std::int64_t blank) {
  const CtcShape s = ctc_shape(log_probs_in, targets);
  cuda_select_device("ctc_loss (backward)", dlp.device().id);
  if (dlp.numel() > 0) cudaMemsetAsync(dlp.data<std::uint8_t>(), 0, dlp.nbytes());
  if (s.batch == 0 || s.frames == 0) return;
  const CtcInputs in = ctc_inputs(s, targets, input_lengths, target_lengths, blank);
  const NDArray lp = log_probs_in.contiguous(), g = grad_in.contiguous(), loss = loss_in.contiguous();
  const std::size_t per_sample = std::size_t(in.args.width);
  const DeviceScratch alpha(std::size_t(s.batch) * std::size_t(s.frames) * per_sample * sizeof(double), dlp.device());
  const DeviceScratch beta(std::size_t(s.batch) * 2 * per_sample * sizeof(double), dlp.device());
  const DeviceScratch chains(std::size_t(s.batch) * 2 * per_sample * sizeof(int), dlp.device());
  by_dtype("ctc_loss (backward)", dlp.dtype(), [&](auto tag) {
    using T = decltype(tag);
    ctc_backward_kernel<T><<<unsigned(s.batch), ctc_threads(in.args)>>>(
        dlp.data<T>(), g.data<const T>(), loss.data<const T>(), lp.data<const T>(), in.args, alpha.as<double>(),
        beta.as<double>(), chains.as<int>(), chains.as<int>() + std::size_t(s.batch) * per_sample);
  });
  check_cuda_launch("ctc_loss (backward)");
}

}  // namespace loom::kernels
