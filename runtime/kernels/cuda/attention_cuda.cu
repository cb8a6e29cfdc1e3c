// scaled_dot_product_attention on the GPU: the fused flash kernel
// (flash_attention_cuda.cu) for float32 with head dims up to 128 (float16
// and bfloat16 reach it as float32 copies); otherwise op by op: the scores
// as one batched cuBLAS matmul, the additive mask (attention_layout.h), the
// softmax kernel, a second matmul, and the log-sum-exp the backward reads,
// holding the (Lq, Lk) scores.
#include "generated/kernels/scaled_dot_product_attention.h"
#include "loom/ops/copy.h"
#include "loom/ops/logsumexp.h"
#include "loom/ops/matmul.h"
#include "loom/ops/mul.h"
#include "loom/ops/softmax.h"
#include "runtime/autograd/functions.h"
#include "runtime/autograd/grad_mode.h"
#include "runtime/kernels/attention_kernels.h"
#include "runtime/kernels/attention_layout.h"

namespace loom::kernels {

void attention_cuda(NDArray& out, NDArray& lse, const NDArray& q, const NDArray& k, const NDArray& v,
                    const NDArray& valid_length, bool causal, double scale) {
  const AttentionLayout a = attention_layout(q, k, v, valid_length, scale);
  if (out.numel() == 0) return;
  if (attention_flash_cuda_supported(a, q.dtype(), out.device().id, false)) {
    attention_flash_forward_cuda(out, lse, a, q, k, v, valid_length, causal);
    return;
  }
  autograd::ModeScope not_recorded(false);  // the op records its own node
  NDArray s = op::mul(op::matmul(q, autograd::swap_last_dims(k)), autograd::full({}, a.scale, q.dtype(), q.device()));
  s = add_attention_masks(s, a, q.shape(), valid_length, causal);
  op::copy_out(out, op::matmul(op::softmax(s, -1), v));
  op::logsumexp_out(lse, s, ReduceDims(std::vector<std::int64_t>{-1}), false);
}

}  // namespace loom::kernels
