// batch_norm's fused first-order backward (runtime/autograd/nn_grad.cc
// calls it when not recording): two passes over (grad, x) per channel, a
// reduction and an elementwise pass, for all three gradients at once.
// Arrays are dense, in one floating dtype; x is (batch, channels, rest...)
// and mean/invstd are (channels,). Undefined outputs are not computed.
#pragma once

#include "runtime/kernels/pointwise_math.h"  // LOOM_HD
#include "runtime/ndarray/ndarray.h"

namespace loom::kernels {

// relu: grad passes only where the forward's output was positive, which is
// recomputed from x, mean, invstd, weight and `bias` (undefined: 0).
void batch_norm_backward_cpu(NDArray& dx, NDArray& dweight, NDArray& dbias, const NDArray& grad, const NDArray& x,
                             const NDArray& weight, const NDArray& bias, const NDArray& mean, const NDArray& invstd,
                             bool training, bool relu);
#if LOOM_WITH_CUDA
void batch_norm_backward_cuda(NDArray& dx, NDArray& dweight, NDArray& dbias, const NDArray& grad, const NDArray& x,
                              const NDArray& weight, const NDArray& mean, const NDArray& invstd, bool training);
#endif

// (batch, channels, rest) of x's shape: rest is the product of the dims after 1.
struct ChannelSplit {
  std::int64_t batch, channels, rest;
  LOOM_HD std::int64_t per_channel() const { return batch * rest; }
};
ChannelSplit channel_split(const Shape& shape);

}  // namespace loom::kernels
