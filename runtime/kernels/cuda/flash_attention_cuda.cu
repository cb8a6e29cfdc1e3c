// scaled_dot_product_attention on the GPU, fused (FlashAttention-2's
// scheme in float32 on the CUDA cores): the (Lq, Lk) scores never reach
// global memory.
//
// Forward: a block of 256 threads takes 64 queries of one problem and
// streams the keys through shared memory 64 at a time: S = Q K^T, an
// online softmax (running row max and sum, rescaling the partial output),
// O += P V. It writes O and each row's log-sum-exp.
// Backward: a block takes 64 keys and streams the queries through: it
// recomputes P from the saved log-sum-exp, accumulates dV += P^T dO and
// dK += dS^T Q in registers, and adds dQ += dS K into dq with atomics (the
// order of those additions varies between runs, as in torch's
// memory-efficient kernel, so dq may differ in the last bits).
//
// Every product is a 64 x 64 tile: thread (ty, tx) of a 16 x 16 grid owns
// rows 4ty..4ty+3 and columns 4tx..4tx+3 (and 64 + 4tx.. when the head dim
// is over 64). Operands are laid out in shared memory so that the column
// operand is one 16-byte load per step; the row operand is one 16-byte
// load too where it is stored transposed (Q^T, P^T, dS^T), else four
// broadcast loads. Rows are padded to 68 floats so the two row groups of a
// warp hit different banks.
// Head dims up to 128; larger ones and float64 run op by op
// (attention_cuda.cu).
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "microkernel/base/error.h"
#include "runtime/kernels/attention_kernels.h"
#include "runtime/kernels/attention_layout.h"
#include "runtime/kernels/cuda/device_attributes.h"
#include "runtime/kernels/cuda/device_scratch.h"
#include "runtime/kernels/cuda/pointwise_cuda.cuh"

namespace loom::kernels {
namespace {

constexpr int kTile = 64;     // queries and keys per tile
constexpr int kThreads = 256;  // a 16 x 16 grid of 4 x 4 micro-tiles
constexpr int kLd = kTile + 4;  // row stride of 64-wide tiles
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

struct FlashParams {
  const float *q, *k, *v, *dout, *lse_in, *delta;
  float *out, *lse, *grad_q, *grad_k, *grad_v;  // grad_q must be zero on entry
  const std::int64_t* limits;  // keys each problem keeps, or null for all
  std::int64_t lq, lk;
  int d, dv, q_blocks, k_blocks;  // head dims of q and v; 64-row blocks of q and k
  float scale, scale_log2;  // the softmax scale, and it times log2(e) (the kernels use exp2)
  bool causal;
};

__device__ __forceinline__ std::int64_t key_limit(const FlashParams& p, std::int64_t b) {
  return p.limits == nullptr ? p.lk : p.limits[b];
}

__device__ __forceinline__ float4 load4(const float* p) { return *reinterpret_cast<const float4*>(p); }

__device__ __forceinline__ void fma_row(float* acc, float a, float4 b) {
  acc[0] = fmaf(a, b.x, acc[0]);
  acc[1] = fmaf(a, b.y, acc[1]);
  acc[2] = fmaf(a, b.z, acc[2]);
  acc[3] = fmaf(a, b.w, acc[3]);
}

// acc[i][4g + j] += sum_{k < n} A(i, k) B(k, 64g + j), for this thread's
// four rows i and NB groups of four columns. `b` points at the thread's
// first column of row 0 of B, stored k-major (row k at b + k * ldb).
// In mma_kk A is stored k-major too (`a` at the thread's first row of
// column 0: A(i, k) = a[k * lda + i]); in mma_mk row-major
// (A(i, k) = a[i * lda + k]), read as four broadcast loads.
template <int NB>
__device__ __forceinline__ void mma_kk(float (&acc)[4][4 * NB], const float* a, int lda, const float* b, int ldb,
                                       int n) {
#pragma unroll 4
  for (int k = 0; k < n; ++k) {
    const float4 x = load4(a + k * lda);
#pragma unroll
    for (int g = 0; g < NB; ++g) {
      const float4 y = load4(b + k * ldb + g * kTile);
      fma_row(acc[0] + 4 * g, x.x, y);
      fma_row(acc[1] + 4 * g, x.y, y);
      fma_row(acc[2] + 4 * g, x.z, y);
      fma_row(acc[3] + 4 * g, x.w, y);
    }
  }
}

template <int NB>
__device__ __forceinline__ void mma_mk(float (&acc)[4][4 * NB], const float* a, int lda, const float* b, int ldb,
                                       int n) {
#pragma unroll 4
  for (int k = 0; k < n; ++k) {
    float x[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) x[i] = a[i * lda + k];
#pragma unroll
    for (int g = 0; g < NB; ++g) {
      const float4 y = load4(b + k * ldb + g * kTile);
#pragma unroll
      for (int i = 0; i < 4; ++i) fma_row(acc[i] + 4 * g, x[i], y);
    }
  }
}

// Rows [0, 64) x cols [0, width) of a row-major global block (row r at
// src + r * width) into shared memory, rows at or past `rows` as zeros:
// row-major with stride ld, or transposed (column c at dst + c * ld).
// Consecutive threads read consecutive elements.
__device__ __forceinline__ void load_tile(float* dst, int ld, bool transpose, const float* src, int width, int rows,
                                          float mul = 1.f) {
  for (int idx = threadIdx.x; idx < kTile * width; idx += kThreads) {
    const int r = idx / width, c = idx - r * width;
    const float x = r < rows ? src[idx] * mul : 0.f;
    dst[transpose ? c * ld + r : r * ld + c] = x;
  }
}

// The thread's 4 x 4 micro-tile v (rows 4ty.., columns 4tx..) into
// dst[column][row] (stride kLd): one 16-byte store per column. Threads
// 4 rows apart share banks (a 4-way conflict on 4 stores), which is
// cheaper than reading the untransposed tile as four scalar loads per
// step of the product that follows.
__device__ __forceinline__ void store_transposed(float* dst, const float (&v)[4][4]) {
  const int ty = threadIdx.x / 16, tx = threadIdx.x % 16;
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    *reinterpret_cast<float4*>(dst + (4 * tx + j) * kLd + 4 * ty) = make_float4(v[0][j], v[1][j], v[2][j], v[3][j]);
  }
}

__device__ __forceinline__ float sum16(float x) {
#pragma unroll
  for (int off = 8; off >= 1; off /= 2) x += __shfl_xor_sync(0xffffffffu, x, off);
  return x;
}

__device__ __forceinline__ float max16(float x) {
#pragma unroll
  for (int off = 8; off >= 1; off /= 2) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, off));
  return x;
}

template <int kD>
constexpr std::size_t forward_smem_bytes() {
  return sizeof(float) * (2 * kD * kLd + kTile * (kD + 4) + kTile * kLd);
}

template <int kD>
constexpr std::size_t backward_smem_bytes() {
  return sizeof(float) * (2 * kD * kLd + 3 * kTile * (kD + 4) + kTile * kLd + 2 * kTile);
}

// One block per (problem, 64 queries); the blocks of a problem run last
// query block first, so under a causal mask the longest go first.
template <int kD>
__global__ void __launch_bounds__(kThreads) forward_kernel(FlashParams p) {
  constexpr int NB = kD / kTile, ldv = kD + 4;
  extern __shared__ float4 smem4[];
  float* qt = reinterpret_cast<float*>(smem4);  // [kD][kLd] Q^T, times scale * log2(e)
  float* kt = qt + kD * kLd;                      // [kD][kLd] K^T of the key tile
  float* vs = kt + kD * kLd;                      // [64][ldv] V of the key tile
  float* pt = vs + kTile * ldv;                   // [64][kLd] P^T of the tile (rows: keys)
  const int ty = threadIdx.x / 16, tx = threadIdx.x % 16;
  const std::int64_t b = blockIdx.x / p.q_blocks;
  const std::int64_t i0 = std::int64_t(p.q_blocks - 1 - blockIdx.x % p.q_blocks) * kTile;
  const int rows = int(p.lq - i0 < kTile ? p.lq - i0 : kTile);
  const std::int64_t limit = key_limit(p, b);
  const std::int64_t end = p.causal && i0 + kTile < limit ? i0 + kTile : limit;  // keys any row here attends

  load_tile(qt, kLd, true, p.q + (b * p.lq + i0) * p.d, p.d, rows, p.scale_log2);
  float o[4][4 * NB] = {}, m[4], l[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) m[i] = -INFINITY, l[i] = 0.f;

  for (std::int64_t j0 = 0; j0 < end; j0 += kTile) {
    const int cols = int(end - j0 < kTile ? end - j0 : kTile);
    __syncthreads();  // the previous tile's K, V and P are read
    load_tile(kt, kLd, true, p.k + (b * p.lk + j0) * p.d, p.d, cols);
    load_tile(vs, ldv, false, p.v + (b * p.lk + j0) * p.dv, p.dv, cols);
    __syncthreads();
    float s[4][4] = {};
    mma_kk<1>(s, qt + 4 * ty, kLd, kt + 4 * tx, kLd, p.d);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const std::int64_t row = i0 + 4 * ty + i;
      float tile_max = -INFINITY;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int c = 4 * tx + j;
        if (c >= cols || (p.causal && j0 + c > row)) s[i][j] = -INFINITY;
        tile_max = fmaxf(tile_max, s[i][j]);
      }
      const float m_new = fmaxf(m[i], max16(tile_max));
      const float base = m_new == -INFINITY ? 0.f : m_new;  // a row with no key yet keeps zeros
      const float correction = exp2f(m[i] - base);
      float sum = 0.f;
#pragma unroll
      for (int j = 0; j < 4; ++j) sum += (s[i][j] = exp2f(s[i][j] - base));
      l[i] = l[i] * correction + sum16(sum);
      m[i] = m_new;
#pragma unroll
      for (int c = 0; c < 4 * NB; ++c) o[i][c] *= correction;
    }
    store_transposed(pt, s);
    __syncthreads();
    mma_kk<NB>(o, pt + 4 * ty, kLd, vs + 4 * tx, ldv, cols);
  }

#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int r = 4 * ty + i;
    if (r >= rows) continue;
    const float inv = 1.f / l[i];
    float* out = p.out + (b * p.lq + i0 + r) * p.dv;
#pragma unroll
    for (int g = 0; g < NB; ++g) {
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int e = g * kTile + 4 * tx + j;
        if (e < p.dv) out[e] = o[i][4 * g + j] * inv;
      }
    }
    if (tx == 0) p.lse[b * p.lq + i0 + r] = (m[i] + log2f(l[i])) * kLn2;
  }
}

// delta[r] = sum_e dO[r, e] O[r, e]: one warp per row.
__global__ void delta_kernel(float* delta, const float* dout, const float* out, std::int64_t rows, int dv) {
  const int lane = threadIdx.x % 32;
  for (std::int64_t r = (std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32; r < rows;
       r += std::int64_t(gridDim.x) * blockDim.x / 32) {
    float sum = 0.f;
    for (int e = lane; e < dv; e += 32) sum += dout[r * dv + e] * out[r * dv + e];
#pragma unroll
    for (int off = 16; off >= 1; off /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, off);
    if (lane == 0) delta[r] = sum;
  }
}

// One block per (problem, 64 keys), first key blocks first (under a causal
// mask they see the most queries). dq must be zero on entry.
template <int kD>
__global__ void __launch_bounds__(kThreads) backward_kernel(FlashParams p) {
  constexpr int NB = kD / kTile, ld = kD + 4;
  extern __shared__ float4 smem4[];
  float* kt = reinterpret_cast<float*>(smem4);  // [kD][kLd] K^T
  float* vt = kt + kD * kLd;                      // [kD][kLd] V^T
  float* ks = vt + kD * kLd;                      // [64][ld] K
  float* qs = ks + kTile * ld;                    // [64][ld] Q of the query tile
  float* gs = qs + kTile * ld;                    // [64][ld] dO of the query tile
  float* ps = gs + kTile * ld;                    // [64][kLd] P, then dS, of the tile
  float* lse_s = ps + kTile * kLd;                // [64] log-sum-exp times log2(e)
  float* delta_s = lse_s + kTile;                 // [64]
  const int ty = threadIdx.x / 16, tx = threadIdx.x % 16;
  const std::int64_t b = blockIdx.x / p.k_blocks;
  const std::int64_t j0 = std::int64_t(blockIdx.x % p.k_blocks) * kTile;
  const std::int64_t limit = key_limit(p, b);
  const int cols = int(limit - j0 <= 0 ? 0 : (limit - j0 < kTile ? limit - j0 : kTile));  // keys kept here
  float dk[4][4 * NB] = {}, dv[4][4 * NB] = {};

  if (cols > 0) {
    load_tile(kt, kLd, true, p.k + (b * p.lk + j0) * p.d, p.d, cols);
    load_tile(ks, ld, false, p.k + (b * p.lk + j0) * p.d, p.d, cols);
    load_tile(vt, kLd, true, p.v + (b * p.lk + j0) * p.dv, p.dv, cols);
  }
  // causal: queries before j0 attend none of these keys
  for (std::int64_t i0 = cols > 0 && p.causal ? j0 : (cols > 0 ? 0 : p.lq); i0 < p.lq; i0 += kTile) {
    const int rows = int(p.lq - i0 < kTile ? p.lq - i0 : kTile);
    __syncthreads();  // the previous tile's Q, dO and dS are read
    load_tile(qs, ld, false, p.q + (b * p.lq + i0) * p.d, p.d, rows);
    load_tile(gs, ld, false, p.dout + (b * p.lq + i0) * p.dv, p.dv, rows);
    if (threadIdx.x < kTile) {
      const int r = threadIdx.x;
      lse_s[r] = r < rows ? p.lse_in[b * p.lq + i0 + r] * kLog2e : INFINITY;  // padding rows get P = 0
      delta_s[r] = r < rows ? p.delta[b * p.lq + i0 + r] : 0.f;
    }
    __syncthreads();
    float s[4][4] = {}, dp[4][4] = {};
    mma_mk<1>(s, qs + 4 * ty * ld, ld, kt + 4 * tx, kLd, p.d);
    mma_mk<1>(dp, gs + 4 * ty * ld, ld, vt + 4 * tx, kLd, p.dv);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int r = 4 * ty + i;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int c = 4 * tx + j;
        const bool masked = c >= cols || (p.causal && j0 + c > i0 + r);
        s[i][j] = masked ? 0.f : exp2f(s[i][j] * p.scale_log2 - lse_s[r]);
        dp[i][j] = s[i][j] * (dp[i][j] - delta_s[r]);  // dS, without the scale
      }
      *reinterpret_cast<float4*>(ps + r * kLd + 4 * tx) = make_float4(s[i][0], s[i][1], s[i][2], s[i][3]);
    }
    __syncthreads();
    mma_kk<NB>(dv, ps + 4 * ty, kLd, gs + 4 * tx, ld, rows);  // dV += P^T dO
    __syncthreads();
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      *reinterpret_cast<float4*>(ps + (4 * ty + i) * kLd + 4 * tx) = make_float4(dp[i][0], dp[i][1], dp[i][2],
                                                                              dp[i][3]);
    }
    __syncthreads();
    mma_kk<NB>(dk, ps + 4 * ty, kLd, qs + 4 * tx, ld, rows);  // dK += dS^T Q
    __syncthreads();
    store_transposed(ps, dp);
    __syncthreads();
    float dq[4][4 * NB] = {};
    mma_kk<NB>(dq, ps + 4 * ty, kLd, ks + 4 * tx, ld, cols);  // dQ += dS K
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int r = 4 * ty + i;
      if (r >= rows) continue;
      float* dst = p.grad_q + (b * p.lq + i0 + r) * p.d;
#pragma unroll
      for (int g = 0; g < NB; ++g) {
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const int e = g * kTile + 4 * tx + j;
          if (e < p.d) atomicAdd(dst + e, dq[i][4 * g + j] * p.scale);
        }
      }
    }
  }

  const int key_rows = int(p.lk - j0 < kTile ? p.lk - j0 : kTile);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int c = 4 * ty + i;
    if (c >= key_rows) continue;
    float* dk_row = p.grad_k + (b * p.lk + j0 + c) * p.d;
    float* dv_row = p.grad_v + (b * p.lk + j0 + c) * p.dv;
#pragma unroll
    for (int g = 0; g < NB; ++g) {
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int e = g * kTile + 4 * tx + j;
        if (e < p.d) dk_row[e] = dk[i][4 * g + j] * p.scale;
        if (e < p.dv) dv_row[e] = dv[i][4 * g + j];
      }
    }
  }
}

// The kernel for the padded head dim: launched with its shared memory
// (past the 48 KiB default, so asked for first).
template <typename Kernel>
void launch_flash(const char* op, Kernel kernel, std::size_t smem, std::int64_t blocks, const FlashParams& p) {
  const cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
  if (err != cudaSuccess) cudaGetLastError();  // reported here, not by the next launch's check
  LOOM_CHECK_KIND(err == cudaSuccess, ErrorKind::kRuntime, op, ": cannot use ", smem,
                  " bytes of shared memory per block: ", cudaGetErrorString(err));
  LOOM_CHECK(blocks <= 0x7fffffff, op, ": ", blocks, " blocks exceed one grid");
  kernel<<<unsigned(blocks), kThreads, smem>>>(p);
  check_cuda_launch(op);
}

std::size_t limits_bytes(const AttentionLayout& a, const NDArray& valid_length) {
  return valid_length.defined() ? std::size_t(a.batch) * sizeof(std::int64_t) : 0;
}

// The parameters every kernel shares. With valid_length, each problem's
// key limit is copied into `limits` (device memory the caller keeps until
// the kernels are queued; a copy from pageable memory has read the host
// vector when it returns).
FlashParams flash_params(const AttentionLayout& a, const NDArray& valid_length, bool causal,
                         const DeviceScratch& limits) {
  FlashParams p{};
  p.lq = a.lq;
  p.lk = a.lk;
  p.d = int(a.d);
  p.dv = int(a.dv);
  p.q_blocks = int((a.lq + kTile - 1) / kTile);
  p.k_blocks = int((a.lk + kTile - 1) / kTile);
  p.scale = float(a.scale);
  p.scale_log2 = float(a.scale) * kLog2e;
  p.causal = causal;
  if (valid_length.defined()) {
    const std::vector<std::int64_t> host = attention_key_limits(a, valid_length);
    const cudaError_t err = cudaMemcpyAsync(limits.as<std::int64_t>(), host.data(), host.size() * sizeof(std::int64_t),
                                            cudaMemcpyHostToDevice);
    LOOM_CHECK_KIND(err == cudaSuccess, ErrorKind::kRuntime, "scaled_dot_product_attention: copying the key limits "
                    "failed: ", cudaGetErrorString(err));
    p.limits = limits.as<const std::int64_t>();
  }
  return p;
}

}  // namespace

bool attention_flash_cuda_supported(const AttentionLayout& a, DType dtype, int device, bool backward) {
  if (dtype != DType::kFloat32 || a.d < 1 || a.d > 2 * kTile || a.dv < 1 || a.dv > 2 * kTile) return false;
  const bool wide = a.d > kTile || a.dv > kTile;
  const std::size_t need = backward ? (wide ? backward_smem_bytes<128>() : backward_smem_bytes<64>())
                                    : (wide ? forward_smem_bytes<128>() : forward_smem_bytes<64>());
  return need <= std::size_t(cuda_device_max_shared_per_block(device));
}

void attention_flash_forward_cuda(NDArray& out, NDArray& lse, const AttentionLayout& a, const NDArray& q_in,
                                  const NDArray& k_in, const NDArray& v_in, const NDArray& valid_length,
                                  bool causal) {
  constexpr const char* kOp = "scaled_dot_product_attention";
  cuda_select_device(kOp, out.device().id);
  const DeviceScratch limits(limits_bytes(a, valid_length), out.device());
  FlashParams p = flash_params(a, valid_length, causal, limits);
  const NDArray q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
  p.q = q.data<const float>();
  p.k = k.data<const float>();
  p.v = v.data<const float>();
  p.out = out.data<float>();
  p.lse = lse.data<float>();
  const std::int64_t blocks = a.batch * p.q_blocks;
  if (a.d <= kTile && a.dv <= kTile) {
    launch_flash(kOp, forward_kernel<64>, forward_smem_bytes<64>(), blocks, p);
  } else {
    launch_flash(kOp, forward_kernel<128>, forward_smem_bytes<128>(), blocks, p);
  }
}

void attention_backward_cuda(NDArray& dq, NDArray& dk, NDArray& dv, const NDArray& grad_in, const NDArray& q_in,
                             const NDArray& k_in, const NDArray& v_in, const NDArray& out_in, const NDArray& lse_in,
                             const NDArray& valid_length, bool causal, double scale) {
  constexpr const char* kOp = "scaled_dot_product_attention (backward)";
  const AttentionLayout a = attention_layout(q_in, k_in, v_in, valid_length, scale);
  LOOM_CHECK(attention_flash_cuda_supported(a, q_in.dtype(), q_in.device().id, true), kOp,
             ": the fused kernel takes float32 with head dims up to 128 whose tiles fit the GPU's shared memory, "
             "got q ", q_in.describe(), ", v ", v_in.describe());
  if (dq.numel() + dk.numel() + dv.numel() == 0) return;
  cuda_select_device(kOp, q_in.device().id);
  const DeviceScratch limits(limits_bytes(a, valid_length), q_in.device());
  FlashParams p = flash_params(a, valid_length, causal, limits);
  const NDArray g = grad_in.contiguous(), q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous(),
                o = out_in.contiguous(), l = lse_in.contiguous();
  const std::int64_t rows = a.batch * a.lq;
  const DeviceScratch delta(std::size_t(rows) * sizeof(float), q.device());
  if (dq.numel() > 0) {
    const cudaError_t err = cudaMemsetAsync(dq.data<float>(), 0, std::size_t(dq.numel()) * sizeof(float));
    LOOM_CHECK_KIND(err == cudaSuccess, ErrorKind::kRuntime, kOp, ": cudaMemsetAsync failed: ",
                    cudaGetErrorString(err));
  }
  if (rows > 0) {
    delta_kernel<<<cuda_grid_blocks(rows * 32, kThreads, q.device().id), kThreads>>>(
        delta.as<float>(), g.data<const float>(), o.data<const float>(), rows, p.dv);
    check_cuda_launch(kOp);
  }
  p.q = q.data<const float>();
  p.k = k.data<const float>();
  p.v = v.data<const float>();
  p.dout = g.data<const float>();
  p.lse_in = l.data<const float>();
  p.delta = delta.as<const float>();
  p.grad_q = dq.data<float>();
  p.grad_k = dk.data<float>();
  p.grad_v = dv.data<float>();
  const std::int64_t blocks = a.batch * p.k_blocks;
  if (blocks == 0) return;
  if (a.d <= kTile && a.dv <= kTile) {
    launch_flash(kOp, backward_kernel<64>, backward_smem_bytes<64>(), blocks, p);
  } else {
    launch_flash(kOp, backward_kernel<128>, backward_smem_bytes<128>(), blocks, p);
  }
}

}  // namespace loom::kernels
