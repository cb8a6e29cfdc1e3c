// softmax_cross_entropy on a GPU: one thread per line along the dim, the
// same three passes as the CPU kernel (max, sum of exp, probabilities and
// loss). A bad label is recorded in a device flag and raised as the CPU's
// IndexError after the kernel.
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "generated/kernels/softmax_cross_entropy.h"
#include "microkernel/base/error.h"
#include "runtime/core/dtype_visit.h"
#include "runtime/kernels/cross_entropy_loss.h"
#include "runtime/kernels/cuda/index_flag.cuh"
#include "runtime/kernels/cuda/pointwise_cuda.cuh"
#include "runtime/kernels/indexing.h"

namespace loom::kernels {
namespace {

template <typename T>
__global__ void cross_entropy_kernel(T* loss, T* prob, const T* in, const std::int64_t* labels, AxisSplit s,
                                     long long* flag, std::int64_t ignore_index, double smoothing) {
  const std::int64_t lines = s.outer * s.inner;
  const std::int64_t stride = std::int64_t(blockDim.x) * gridDim.x;
  for (std::int64_t line = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; line < lines; line += stride) {
    const std::int64_t o = line / s.inner, r = line % s.inner;
    const std::int64_t base = o * s.axis * s.inner + r;
    std::int64_t label = 0;
    const bool ignored = labels[line] == ignore_index;
    if (!ignored && !resolve_index(labels[line], s.axis, false, flag, label)) continue;
    T top = in[base];
    for (std::int64_t a = 1; a < s.axis; ++a) top = fmax(top, in[base + a * s.inner]);
    T total = 0, shifted_sum = 0;
    for (std::int64_t a = 0; a < s.axis; ++a) {
      const T e = exp(in[base + a * s.inner] - top);
      prob[base + a * s.inner] = e;
      total += e;
      shifted_sum += in[base + a * s.inner] - top;
    }
    const T inv = T(1) / total;
    for (std::int64_t a = 0; a < s.axis; ++a) prob[base + a * s.inner] *= inv;
    const T lse = log(total);
    loss[line] = ignored ? T(0)
                         : smoothed_nll(lse - (in[base + label * s.inner] - top), lse - shifted_sum / T(s.axis),
                                        smoothing);
  }
}

}  // namespace

void softmax_cross_entropy_cuda(NDArray& loss, NDArray& prob, const NDArray& logits, const NDArray& label,
                                std::int64_t dim, std::int64_t ignore_index, double label_smoothing) {
  const std::int64_t d = wrap_axis("softmax_cross_entropy", dim, logits.shape());
  const AxisSplit s = split_around(logits.shape(), d);
  if (loss.numel() == 0 || s.axis == 0) return;
  cuda_select_device("softmax_cross_entropy", loss.device().id);
  const NDArray x = logits.contiguous(), y = label.contiguous();
  DeviceIndexFlag bad(loss.device());
  visit_dtype(x.dtype(), "softmax_cross_entropy", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_floating_point_v<T>) {
      cross_entropy_kernel<T><<<cuda_grid_blocks(s.outer * s.inner, 256, loss.device().id), 256>>>(
          loss.data<T>(), prob.data<T>(), x.data<const T>(), y.data<const std::int64_t>(), s, bad.flag, ignore_index,
          label_smoothing);
    }
  });
  check_cuda_launch("softmax_cross_entropy");
  std::int64_t v;
  if (bad.bad("softmax_cross_entropy", v)) throw_bad_index("softmax_cross_entropy", v, d, s.axis);
}

}  // namespace loom::kernels
