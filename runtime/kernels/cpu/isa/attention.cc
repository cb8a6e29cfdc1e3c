// scaled_dot_product_attention on the CPU (opdefs/nn/attention.yaml):
// blocked, with an online softmax (FlashAttention's scheme). For each
// problem and block of 64 queries, the key blocks stream through: a
// 64 x 512 score block (one GEMM), the running row max and sum rescale the
// partial output, and P V accumulates into it (a second GEMM). Memory per
// thread is a few blocks, never (Lq, Lk). Blocks past a row's valid keys,
// or above the diagonal with causal, are skipped whole.
// The backward recomputes each block's probabilities from the saved
// log-sum-exp and accumulates dV, dQ and dK block by block (problems
// across threads, so no two threads share a gradient). Built per ISA
// (isa_dispatch.h); float exps use the vectorisable fast::exp.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "generated/kernels/scaled_dot_product_attention.h"
#include "microkernel/base/error.h"
#include "runtime/kernels/float_dtype.h"
#include "runtime/kernels/attention_kernels.h"
#include "runtime/kernels/attention_layout.h"
#include "runtime/kernels/cpu/cpu_gemm.h"
#include "runtime/kernels/cpu/fast_math.h"
#include "runtime/kernels/cpu/isa_dispatch.h"

namespace loom::kernels {
inline namespace LOOM_CPU_ISA {
namespace {

inline float exp_of(float x) { return ::loom::pw::fast::exp(x); }
inline double exp_of(double x) { return std::exp(x); }

// Scales x[0, n) in place and returns its max (-inf for n == 0). The max
// runs over 16 independent lanes first: GCC does not vectorise a float max
// reduction (NaN and signed-zero semantics), elementwise maxima it does.
template <typename T>
T scale_and_max(T* x, std::int64_t n, T scale) {
  constexpr int kLanes = 16;
  T lanes[kLanes];
  std::fill(lanes, lanes + kLanes, -std::numeric_limits<T>::infinity());
  std::int64_t c = 0;
  for (; c + kLanes <= n; c += kLanes) {
    for (int l = 0; l < kLanes; ++l) {
      x[c + l] *= scale;
      lanes[l] = std::max(lanes[l], x[c + l]);
    }
  }
  for (; c < n; ++c) {
    x[c] *= scale;
    lanes[0] = std::max(lanes[0], x[c]);
  }
  return *std::max_element(lanes, lanes + kLanes);
}

// Queries per block, and keys per block: a wide key block makes few,
// large GEMMs (OpenBLAS's per-call cost dominated 64 x 64 blocks) while a
// thread's scores stay 64 x 512 floats (128 KiB, in L2).
constexpr std::int64_t kBlock = 64;
constexpr std::int64_t kKeys = 512;

// Keys [0, end) that rows [i0, i1) of problem b may attend.
inline std::int64_t key_end(std::int64_t limit, bool causal, std::int64_t i1) {
  return causal ? std::min(limit, i1) : limit;
}

template <typename T>
void forward(const AttentionLayout& a, const std::vector<std::int64_t>& limits, bool causal, const T* q, const T* k,
             const T* v, T* out, T* lse) {
  const std::int64_t q_blocks = (a.lq + kBlock - 1) / kBlock;
  const T scale = T(a.scale), neg_inf = -std::numeric_limits<T>::infinity();
#pragma omp parallel
  {
    std::vector<T> s(kBlock * kKeys), acc(static_cast<std::size_t>(kBlock * a.dv));
    std::vector<T> row_max(kBlock), row_sum(kBlock);
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t task = 0; task < a.batch * q_blocks; ++task) {
      const std::int64_t b = task / q_blocks, i0 = (task % q_blocks) * kBlock;
      const std::int64_t rows = std::min(kBlock, a.lq - i0);
      const T* qb = q + (b * a.lq + i0) * a.d;
      const T* kb = k + b * a.lk * a.d;
      const T* vb = v + b * a.lk * a.dv;
      std::fill(acc.begin(), acc.begin() + rows * a.dv, T(0));
      std::fill(row_max.begin(), row_max.end(), neg_inf);
      std::fill(row_sum.begin(), row_sum.end(), T(0));
      const std::int64_t limit = limits[static_cast<std::size_t>(b)], end = key_end(limit, causal, i0 + rows);
      for (std::int64_t j0 = 0; j0 < end; j0 += kKeys) {
        const std::int64_t cols = std::min(kKeys, end - j0);
        gemm<T>(false, true, rows, cols, a.d, qb, a.d, kb + j0 * a.d, a.d, s.data(), kKeys);
        for (std::int64_t r = 0; r < rows; ++r) {
          T* sr = s.data() + r * kKeys;
          // causal: keys after the row's own position are masked
          const std::int64_t last = causal ? std::min(cols, i0 + r + 1 - j0) : cols;
          const T m = std::max(row_max[r], scale_and_max(sr, last, scale));
          if (last <= 0) {  // the whole block is masked for this row
            std::fill(sr, sr + cols, T(0));
            continue;
          }
          const T correction = std::exp(row_max[r] - m);  // 0 for the first block (max was -inf)
          T total = 0;
#pragma omp simd reduction(+ : total)
          for (std::int64_t c = 0; c < last; ++c) {
            sr[c] = exp_of(sr[c] - m);
            total += sr[c];
          }
          std::fill(sr + last, sr + cols, T(0));
          row_sum[r] = row_sum[r] * correction + total;
          row_max[r] = m;
          T* ar = acc.data() + r * a.dv;
          for (std::int64_t c = 0; c < a.dv; ++c) ar[c] *= correction;
        }
        gemm<T>(false, false, rows, a.dv, cols, s.data(), kKeys, vb + j0 * a.dv, a.dv, acc.data(), a.dv,
                /*accumulate=*/true);
      }
      for (std::int64_t r = 0; r < rows; ++r) {
        const T inv = T(1) / row_sum[r];
        T* o = out + (b * a.lq + i0 + r) * a.dv;
        const T* ar = acc.data() + r * a.dv;
        for (std::int64_t c = 0; c < a.dv; ++c) o[c] = ar[c] * inv;
        lse[b * a.lq + i0 + r] = row_max[r] + std::log(row_sum[r]);
      }
    }
  }
}

template <typename T>
void backward(const AttentionLayout& a, const std::vector<std::int64_t>& limits, bool causal, const T* q, const T* k,
              const T* v, const T* out, const T* lse, const T* dout, T* dq, T* dk, T* dv) {
  const T scale = T(a.scale);
#pragma omp parallel
  {
    std::vector<T> p(kBlock * kKeys), dp(kBlock * kKeys), delta(kBlock);
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t b = 0; b < a.batch; ++b) {
      const T* qb = q + b * a.lq * a.d;
      const T* kb = k + b * a.lk * a.d;
      const T* vb = v + b * a.lk * a.dv;
      const T* ob = out + b * a.lq * a.dv;
      const T* gb = dout + b * a.lq * a.dv;
      T* dqb = dq + b * a.lq * a.d;
      T* dkb = dk + b * a.lk * a.d;
      T* dvb = dv + b * a.lk * a.dv;
      std::fill(dqb, dqb + a.lq * a.d, T(0));
      std::fill(dkb, dkb + a.lk * a.d, T(0));
      std::fill(dvb, dvb + a.lk * a.dv, T(0));
      const std::int64_t limit = limits[static_cast<std::size_t>(b)];
      for (std::int64_t i0 = 0; i0 < a.lq; i0 += kBlock) {
        const std::int64_t rows = std::min(kBlock, a.lq - i0);
        for (std::int64_t r = 0; r < rows; ++r) {  // delta_i = sum_c dO_ic O_ic
          T total = 0;
          for (std::int64_t c = 0; c < a.dv; ++c) total += gb[(i0 + r) * a.dv + c] * ob[(i0 + r) * a.dv + c];
          delta[r] = total;
        }
        const std::int64_t end = key_end(limit, causal, i0 + rows);
        for (std::int64_t j0 = 0; j0 < end; j0 += kKeys) {
          const std::int64_t cols = std::min(kKeys, end - j0);
          gemm<T>(false, true, rows, cols, a.d, qb + i0 * a.d, a.d, kb + j0 * a.d, a.d, p.data(), kKeys);
          for (std::int64_t r = 0; r < rows; ++r) {  // P from the saved log-sum-exp
            const std::int64_t last = causal ? std::clamp<std::int64_t>(i0 + r + 1 - j0, 0, cols) : cols;
            const T m = lse[b * a.lq + i0 + r];
            T* pr = p.data() + r * kKeys;
#pragma omp simd
            for (std::int64_t c = 0; c < last; ++c) pr[c] = exp_of(pr[c] * scale - m);
            std::fill(pr + last, pr + cols, T(0));
          }
          // dV += P^T dO;  dP = dO V^T
          gemm<T>(true, false, cols, a.dv, rows, p.data(), kKeys, gb + i0 * a.dv, a.dv, dvb + j0 * a.dv, a.dv, true);
          gemm<T>(false, true, rows, cols, a.dv, gb + i0 * a.dv, a.dv, vb + j0 * a.dv, a.dv, dp.data(), kKeys);
          for (std::int64_t r = 0; r < rows; ++r) {  // dS = P (dP - delta) * scale, into dp
            T* pr = p.data() + r * kKeys;
            T* dr = dp.data() + r * kKeys;
            const T dl = delta[r];
#pragma omp simd
            for (std::int64_t c = 0; c < cols; ++c) dr[c] = pr[c] * (dr[c] - dl) * scale;
          }
          // dQ += dS K;  dK += dS^T Q
          gemm<T>(false, false, rows, a.d, cols, dp.data(), kKeys, kb + j0 * a.d, a.d, dqb + i0 * a.d, a.d, true);
          gemm<T>(true, false, cols, a.d, rows, dp.data(), kKeys, qb + i0 * a.d, a.d, dkb + j0 * a.d, a.d, true);
        }
      }
    }
  }
}

}  // namespace

void LOOM_ISA_NAME(attention_forward)(const AttentionLayout& a, const std::vector<std::int64_t>& limits, bool causal,
                                      const NDArray& q, const NDArray& k, const NDArray& v, NDArray& out,
                                      NDArray& lse) {
  by_dtype("scaled_dot_product_attention", out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    forward<T>(a, limits, causal, q.data<const T>(), k.data<const T>(), v.data<const T>(), out.data<T>(),
               lse.data<T>());
  });
}

void LOOM_ISA_NAME(attention_backward)(const AttentionLayout& a, const std::vector<std::int64_t>& limits,
                                       bool causal, const NDArray& q, const NDArray& k, const NDArray& v,
                                       const NDArray& o, const NDArray& l, const NDArray& g, NDArray& dq,
                                       NDArray& dk, NDArray& dv) {
  by_dtype("scaled_dot_product_attention (backward)", q.dtype(), [&](auto tag) {
    using T = decltype(tag);
    backward<T>(a, limits, causal, q.data<const T>(), k.data<const T>(), v.data<const T>(), o.data<const T>(),
                l.data<const T>(), g.data<const T>(), dq.data<T>(), dk.data<T>(), dv.data<T>());
  });
}

}  // inline namespace LOOM_CPU_ISA

#if !defined(LOOM_CPU_ISA_BUILD)
LOOM_ISA_DECLARE(attention_forward, (const AttentionLayout&, const std::vector<std::int64_t>&, bool, const NDArray&,
                                     const NDArray&, const NDArray&, NDArray&, NDArray&))
LOOM_ISA_DECLARE(attention_backward, (const AttentionLayout&, const std::vector<std::int64_t>&, bool,
                                      const NDArray&, const NDArray&, const NDArray&, const NDArray&, const NDArray&,
                                      const NDArray&, NDArray&, NDArray&, NDArray&))

std::vector<Shape> infer_scaled_dot_product_attention(const NDArray& q, const NDArray& k, const NDArray& v,
                                                      const NDArray& valid_length, bool causal, double scale) {
  const AttentionLayout a = attention_layout(q, k, v, valid_length, scale);
  Shape out(q.shape().begin(), q.shape().end() - 1), lse(q.shape().begin(), q.shape().end() - 1);
  out.push_back(a.dv);
  return {out, lse};
}

void attention_cpu(NDArray& out, NDArray& lse, const NDArray& q_in, const NDArray& k_in, const NDArray& v_in,
                   const NDArray& valid_length, bool causal, double scale) {
  const AttentionLayout a = attention_layout(q_in, k_in, v_in, valid_length, scale);
  const std::vector<std::int64_t> limits = attention_key_limits(a, valid_length);
  if (out.numel() == 0) return;
  const NDArray q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
  LOOM_ISA_CALL(attention_forward, a, limits, causal, q, k, v, out, lse);
}

void attention_backward_cpu(NDArray& dq, NDArray& dk, NDArray& dv, const NDArray& grad_in, const NDArray& q_in,
                            const NDArray& k_in, const NDArray& v_in, const NDArray& out_in, const NDArray& lse_in,
                            const NDArray& valid_length, bool causal, double scale) {
  const AttentionLayout a = attention_layout(q_in, k_in, v_in, valid_length, scale);
  const std::vector<std::int64_t> limits = attention_key_limits(a, valid_length);
  const NDArray g = grad_in.contiguous(), q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous(),
                o = out_in.contiguous(), l = lse_in.contiguous();
  LOOM_ISA_CALL(attention_backward, a, limits, causal, q, k, v, o, l, g, dq, dk, dv);
}
#endif  // !LOOM_CPU_ISA_BUILD

}  // namespace loom::kernels
