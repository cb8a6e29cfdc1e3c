// How scaled_dot_product_attention sees its arrays: `batch` independent
// (Lq, D) x (Lk, D) x (Lk, Dv) problems (the product of the leading dims),
// which keys each problem keeps (valid_length, causal), and the additive
// mask the op-by-op paths (GPU forward, recorded backward) use. Shared by
// the CPU and CUDA kernels and runtime/autograd/nn_grad.cc.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/ndarray/ndarray.h"

namespace loom::kernels {

struct AttentionLayout {
  std::int64_t batch = 1, lq = 0, lk = 0, d = 0, dv = 0;
  std::int64_t per_length = 1;  // problems sharing one valid_length entry (the heads)
  double scale = 1.0;           // the scale in effect (0 in the op means 1/sqrt(D))
};

// Checks q, k, v and valid_length (errors name the op and the shapes).
AttentionLayout attention_layout(const NDArray& q, const NDArray& k, const NDArray& v, const NDArray& valid_length,
                                 double scale);

// The number of keys problem b keeps (valid_length's entry, clamped to Lk;
// Lk without valid_length), read from host memory `lengths` (or null).
// Throws when an entry is below 1 (a query would attend nothing).
std::vector<std::int64_t> attention_key_limits(const AttentionLayout& a, const std::int64_t* lengths);

// The same from valid_length itself (any integer dtype, on any device: a
// GPU array is copied to the host), or Lk for every problem when it is
// undefined.
std::vector<std::int64_t> attention_key_limits(const AttentionLayout& a, const NDArray& valid_length);

// scores (q's leading dims + (Lq, Lk)) plus the additive masks (0 where a
// query attends a key, -inf elsewhere), as differentiable op calls, or
// scores itself when nothing is masked. The masks are small and broadcast:
// causal is one (Lq, Lk) triangle, valid_length one (Lk,) row per problem,
// so nothing of size batch * Lq * Lk is built on the host or copied to a
// GPU. Reads valid_length on the host (a GPU array is copied).
NDArray add_attention_masks(const NDArray& scores, const AttentionLayout& a, const Shape& q_shape,
                            const NDArray& valid_length, bool causal);

}  // namespace loom::kernels
