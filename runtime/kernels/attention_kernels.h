// scaled_dot_product_attention's fused kernels. The first-order backward
// (runtime/autograd/nn_grad.cc calls it when not recording) makes dq, dk
// and dv (all three, dense, q's dtype) from the incoming gradient, the
// inputs, the output and the saved log-sum-exp of each query row.
#pragma once

#include "runtime/kernels/attention_layout.h"
#include "runtime/ndarray/ndarray.h"

namespace loom::kernels {

void attention_backward_cpu(NDArray& dq, NDArray& dk, NDArray& dv, const NDArray& grad, const NDArray& q,
                            const NDArray& k, const NDArray& v, const NDArray& out, const NDArray& lse,
                            const NDArray& valid_length, bool causal, double scale);

// The GPU's flash kernels (runtime/kernels/cuda/flash_attention_cuda.cu)
// take float32 with head dims (D and Dv) up to 128 where the forward's
// (`backward` false) or the backward's shared memory fits a block of
// `device` (the backward at head dims over 64 needs an H100's); other
// problems run op by op. Both paths save the same log-sum-exp, so a
// flash forward may meet an op-by-op backward. Only in builds with CUDA.
bool attention_flash_cuda_supported(const AttentionLayout& a, DType dtype, int device, bool backward);
void attention_flash_forward_cuda(NDArray& out, NDArray& lse, const AttentionLayout& a, const NDArray& q,
                                  const NDArray& k, const NDArray& v, const NDArray& valid_length, bool causal);
void attention_backward_cuda(NDArray& dq, NDArray& dk, NDArray& dv, const NDArray& grad, const NDArray& q,
                             const NDArray& k, const NDArray& v, const NDArray& out, const NDArray& lse,
                             const NDArray& valid_length, bool causal, double scale);

}  // namespace loom::kernels
