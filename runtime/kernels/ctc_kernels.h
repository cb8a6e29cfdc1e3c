// ctc_loss's kernels beyond the generated forward declarations: the
// first-order backward (runtime/autograd/nn_grad.cc calls it), d loss /
// d log_probs from the forward (alpha) and backward (beta) recursions,
// scaled by grad (N,); and the checks both devices share (ctc_check.cc).
// Dense arrays; lengths and targets int64.
#pragma once

#include <cstdint>

#include "runtime/ndarray/ndarray.h"

namespace loom::kernels {

// (frames, batch, classes) of log_probs and targets' (batch, max_target).
struct CtcShape {
  std::int64_t frames, batch, classes, max_target;
};
CtcShape ctc_shape(const NDArray& log_probs, const NDArray& targets);

// Every sample's input and target length within the arrays, and every
// counted label a class other than blank; errors name the sample and value.
// Host pointers: targets (batch, max_target), the lengths (batch,).
void check_ctc_lengths(const CtcShape& s, const std::int64_t* targets, const std::int64_t* input_lengths,
                       const std::int64_t* target_lengths, std::int64_t blank);

void ctc_loss_backward_cpu(NDArray& dlog_probs, const NDArray& grad, const NDArray& log_probs, const NDArray& targets,
                           const NDArray& input_lengths, const NDArray& target_lengths, const NDArray& loss,
                           std::int64_t blank);
#if LOOM_WITH_CUDA
void ctc_loss_backward_cuda(NDArray& dlog_probs, const NDArray& grad, const NDArray& log_probs,
                            const NDArray& targets, const NDArray& input_lengths, const NDArray& target_lengths,
                            const NDArray& loss, std::int64_t blank);
#endif

}  // namespace loom::kernels
