// ctc_loss's first-order backward (runtime/autograd/nn_grad.cc calls it):
// d loss / d log_probs from the forward (alpha) and backward (beta)
// recursions, scaled by grad (N,). Dense arrays; lengths and targets int64.
#pragma once

#include "runtime/ndarray/ndarray.h"

namespace loom::kernels {

void ctc_loss_backward_cpu(NDArray& dlog_probs, const NDArray& grad, const NDArray& log_probs, const NDArray& targets,
                           const NDArray& input_lengths, const NDArray& target_lengths, const NDArray& loss,
                           std::int64_t blank);

}  // namespace loom::kernels
