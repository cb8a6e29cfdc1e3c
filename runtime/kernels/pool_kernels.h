// max_pool's first-order backward (runtime/autograd/nn_grad.cc calls it
// when not recording): dx is zero but for grad added at each window's
// argmax, plane by plane (batch * channels planes of `plane_size` input
// elements; `per_plane` gradients each). Dense arrays, one floating dtype.
#pragma once

#include "runtime/ndarray/ndarray.h"

namespace loom::kernels {

void max_pool_scatter_cpu(NDArray& dx, const NDArray& grad, const NDArray& indices);
#if LOOM_WITH_CUDA
void max_pool_scatter_cuda(NDArray& dx, const NDArray& grad, const NDArray& indices);
#endif

}  // namespace loom::kernels
