// scaled_dot_product_attention's fused first-order backward
// (runtime/autograd/nn_grad.cc calls it when not recording): dq, dk and dv
// (all three, dense, q's dtype) from the incoming gradient, the inputs,
// the output and the saved log-sum-exp of each query row.
#pragma once

#include "runtime/ndarray/ndarray.h"

namespace loom::kernels {

void attention_backward_cpu(NDArray& dq, NDArray& dk, NDArray& dv, const NDArray& grad, const NDArray& q,
                            const NDArray& k, const NDArray& v, const NDArray& out, const NDArray& lse,
                            const NDArray& valid_length, bool causal, double scale);

}  // namespace loom::kernels
