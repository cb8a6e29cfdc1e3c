// A cache-blocked GEMM for builds without BLAS. Not OpenBLAS's speed (no
// hand-written micro-kernel), but correct for every layout, multithreaded,
// and within a small factor of it: the inner loop runs over a packed,
// contiguous row of B for four rows of C at once, which the compiler turns
// into vector FMAs, so each loaded B element feeds four multiply-adds.
//
// Blocking (in elements): a KC x NC panel of B (256 KB for float) stays in
// L2 while every MC-row block of A streams past it; four C rows of NC
// elements stay in L1 during the k loop.
#include "runtime/kernels/cpu/gemm_portable.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace loom::kernels {
namespace {

constexpr std::int64_t kMC = 64, kKC = 256, kNC = 256;

// op(X)[r][c] for a row-major X with leading dimension ld.
template <typename T>
inline T at(const T* x, std::int64_t ld, bool trans, std::int64_t r, std::int64_t c) {
  return trans ? x[c * ld + r] : x[r * ld + c];
}

// Copies op(X)[r0:r0+rows, c0:c0+cols] into a dense rows x cols block.
template <typename T>
void pack(const T* x, std::int64_t ld, bool trans, std::int64_t r0, std::int64_t c0, std::int64_t rows,
          std::int64_t cols, T* dst) {
  if (!trans) {
    for (std::int64_t r = 0; r < rows; ++r) std::memcpy(dst + r * cols, x + (r0 + r) * ld + c0, cols * sizeof(T));
    return;
  }
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c) dst[r * cols + c] = at(x, ld, true, r0 + r, c0 + c);
}

// C[rows x cols] += A[rows x depth] * B[depth x cols], A and B packed dense.
template <typename T>
void block_multiply(const T* a, const T* b, std::int64_t rows, std::int64_t depth, std::int64_t cols, T* c,
                    std::int64_t ldc) {
  std::int64_t i = 0;
  for (; i + 4 <= rows; i += 4) {
    T* c0 = c + i * ldc;
    T* c1 = c0 + ldc;
    T* c2 = c1 + ldc;
    T* c3 = c2 + ldc;
    for (std::int64_t p = 0; p < depth; ++p) {
      const T a0 = a[i * depth + p], a1 = a[(i + 1) * depth + p];
      const T a2 = a[(i + 2) * depth + p], a3 = a[(i + 3) * depth + p];
      const T* __restrict brow = b + p * cols;
#pragma omp simd
      for (std::int64_t j = 0; j < cols; ++j) {
        const T bj = brow[j];
        c0[j] += a0 * bj;
        c1[j] += a1 * bj;
        c2[j] += a2 * bj;
        c3[j] += a3 * bj;
      }
    }
  }
  for (; i < rows; ++i) {
    T* crow = c + i * ldc;
    for (std::int64_t p = 0; p < depth; ++p) {
      const T ai = a[i * depth + p];
      const T* __restrict brow = b + p * cols;
#pragma omp simd
      for (std::int64_t j = 0; j < cols; ++j) crow[j] += ai * brow[j];
    }
  }
}

template <typename T>
void gemm(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, const T* a, std::int64_t lda,
          const T* b, std::int64_t ldb, T* c, std::int64_t ldc) {
  for (std::int64_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, T(0));
  if (k == 0) return;
  // Threads only when there is enough work to pay for the region.
  const bool parallel = m * n * k >= (std::int64_t{1} << 18);
  std::vector<T> b_panel(static_cast<std::size_t>(std::min(k, kKC) * std::min(n, kNC)));
  for (std::int64_t jc = 0; jc < n; jc += kNC) {
    const std::int64_t nc = std::min(kNC, n - jc);
    for (std::int64_t pc = 0; pc < k; pc += kKC) {
      const std::int64_t kc = std::min(kKC, k - pc);
      pack(b, ldb, tb, pc, jc, kc, nc, b_panel.data());
      const std::int64_t blocks = (m + kMC - 1) / kMC;
#pragma omp parallel if (parallel)
      {
        std::vector<T> a_block(static_cast<std::size_t>(kMC * kc));
#pragma omp for schedule(static)
        for (std::int64_t blk = 0; blk < blocks; ++blk) {
          const std::int64_t ic = blk * kMC, mc = std::min(kMC, m - ic);
          pack(a, lda, ta, ic, pc, mc, kc, a_block.data());
          block_multiply(a_block.data(), b_panel.data(), mc, kc, nc, c + ic * ldc + jc, ldc);
        }
      }
    }
  }
}

}  // namespace

void gemm_portable(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, const float* a,
                   std::int64_t lda, const float* b, std::int64_t ldb, float* c, std::int64_t ldc) {
  gemm(ta, tb, m, n, k, a, lda, b, ldb, c, ldc);
}

void gemm_portable(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, const double* a,
                   std::int64_t lda, const double* b, std::int64_t ldb, double* c, std::int64_t ldc) {
  gemm(ta, tb, m, n, k, a, lda, b, ldb, c, ldc);
}

}  // namespace loom::kernels
