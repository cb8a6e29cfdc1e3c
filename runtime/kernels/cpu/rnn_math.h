// Shared by the recurrent-layer kernels under runtime/kernels/cpu/isa/
// (lstm.cc, gru.cc, simple_rnn.cc): the activations (float uses
// fast_math.h's straight-line exp and tanh, so gate loops vectorise), dense
// views of optional inputs, and the steps every layer shares around its own
// gate passes: adding biases, gathering each step's previous state, and the
// gradients that are one GEMM over all steps. Defined in the ISA-named
// inline namespace of the including build (cpu_isa.h).
#pragma once

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "microkernel/base/error.h"
#include "runtime/kernels/float_dtype.h"
#include "runtime/kernels/cpu/cpu_gemm.h"
#include "runtime/kernels/cpu/cpu_isa.h"
#include "runtime/kernels/cpu/fast_math.h"
#include "runtime/ndarray/ndarray.h"

namespace loom::kernels {
inline namespace LOOM_CPU_ISA {
namespace rnn {

inline float tanh_of(float v) { return ::loom::pw::fast::tanh(v); }
inline double tanh_of(double v) { return std::tanh(v); }
inline float exp_of(float v) { return ::loom::pw::fast::exp(v); }
inline double exp_of(double v) { return std::exp(v); }

template <typename T>
inline T sigmoid(T v) {
  return T(1) / (T(1) + exp_of(-v));
}

// A dense pointer to an optional input (null when not given); `keep` holds the copy.
template <typename T>
const T* ptr_or_null(const NDArray& a, NDArray& keep) {
  if (!a.defined()) return nullptr;
  keep = a.contiguous();
  return keep.template data<const T>();
}

// A final state when there are no steps: a copy of the initial one, or zeros.
inline void copy_initial_state(const char* op, NDArray& out, const NDArray& init) {
  by_dtype(op, out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* p = out.template data<T>();
    if (init.defined()) {
      const NDArray c = init.contiguous();
      std::copy(c.template data<const T>(), c.template data<const T>() + out.numel(), p);
    } else {
      std::fill(p, p + out.numel(), T(0));
    }
  });
}

// Whether a per-step gate pass over `elements` (batch x hidden) values,
// each costing about `exps` exponentials, is worth an OpenMP fork. The
// LSTM's pass (five per value) at batch 32, hidden 512 took 47 us per step
// on one thread and 26 us on two, its backward 79 and 51; the vanilla RNN's
// single tanh stays serial there.
inline bool parallel_gates(std::int64_t elements, std::int64_t exps) { return elements * exps > 16384; }

// (steps, batch, input, hidden) of x (T, N, I) and w_hh (G * H, H)
struct Shape4 {
  std::int64_t steps, batch, input, hidden;
};
inline Shape4 shape_of(const NDArray& x, const NDArray& w_hh) {
  return {x.shape()[0], x.shape()[1], x.shape()[2], w_hh.shape()[1]};
}

// Uninitialised room for n values of T from loom's caching allocator. The
// layers' work arrays (a 9 MB gate gradient at batch 32, hidden 512, 35
// steps) came from std::vector before: a zero fill, and as glibc serves
// such sizes by mmap, fresh pages to fault in on every call. W_hh's 4 MB
// transposed copy took 2.4 ms that way, 0.9 ms now.
template <typename T>
class Scratch {
 public:
  Scratch() = default;  // none: data() is null
  explicit Scratch(std::int64_t n)
      : array_(NDArray::empty({std::max<std::int64_t>(n, 1)},
                              std::is_same_v<T, float> ? DType::kFloat32 : DType::kFloat64)) {}
  T* data() { return array_.defined() ? array_.template data<T>() : nullptr; }
  const T* data() const { return array_.defined() ? array_.template data<const T>() : nullptr; }

 private:
  NDArray array_;
};

// w (rows, cols) transposed into scratch (cols, rows), in 32 x 32 blocks,
// row blocks across threads. The forward's per-step product h_prev W_hh^T
// is a short, wide GEMM (batch rows); with W_hh^T stored it is a plain NN
// product, which oneDNN runs in 0.35 ms against 0.53 ms for the NT form
// (OpenBLAS's, the faster library there) at batch 32, hidden 512 on 2
// cores. The copy costs less than one step and serves them all.
template <typename T>
Scratch<T> transposed(const T* w, std::int64_t rows, std::int64_t cols) {
  Scratch<T> result(rows * cols);
  T* out = result.data();
  constexpr std::int64_t kBlock = 32;
#pragma omp parallel for schedule(static) if (rows * cols > 65536)
  for (std::int64_t r0 = 0; r0 < rows; r0 += kBlock) {
    const std::int64_t r1 = std::min(rows, r0 + kBlock);
    for (std::int64_t c0 = 0; c0 < cols; c0 += kBlock) {
      const std::int64_t c1 = std::min(cols, c0 + kBlock);
      for (std::int64_t c = c0; c < c1; ++c) {
        T* dst = out + c * rows;
#pragma omp simd
        for (std::int64_t r = r0; r < r1; ++r) dst[r] = w[r * cols + c];
      }
    }
  }
  return result;
}

// m (rows, g) += b1 + b2 on every row, for the biases given (null: absent).
template <typename T>
void add_biases(T* m, std::int64_t rows, std::int64_t g, const T* b1, const T* b2) {
  if (!b1 && !b2) return;
#pragma omp parallel for schedule(static) if (rows * g > 32768)
  for (std::int64_t r = 0; r < rows; ++r) {
    T* row = m + r * g;
#pragma omp simd
    for (std::int64_t j = 0; j < g; ++j) row[j] += (b1 ? b1[j] : T(0)) + (b2 ? b2[j] : T(0));
  }
}

// Each step's previous hidden state, at the step's place (T, N, H): h0 (or
// zeros) before the recurrence's first step, else the output of the step
// before it in the recurrence, which for a reverse layer is the next one.
// The gradient of w_hh is one GEMM over it.
template <typename T>
Scratch<T> previous_states(const Shape4& s, const T* y, const T* h0, bool reverse) {
  if (s.steps == 0) return {};
  const std::int64_t nh = s.batch * s.hidden, rest = (s.steps - 1) * nh;
  Scratch<T> result(s.steps * nh);
  T* out = result.data();
  T* first = out + (reverse ? rest : 0);  // where the recurrence starts
  if (reverse) {
    std::copy(y + nh, y + nh + rest, out);
  } else {
    std::copy(y, y + rest, out + nh);
  }
  if (h0) {
    std::copy(h0, h0 + nh, first);
  } else {
    std::fill(first, first + nh, T(0));
  }
  return result;
}

// The gradients every layer ends with, each one GEMM over all steps. dpre_x
// and dpre_h are the (T * N, g) gradients of the gates' input-side and
// hidden-side pre-activations (one array except in the GRU, whose
// candidate multiplies its hidden side by r):
//   dx = dpre_x W_ih,  dW_ih = dpre_x^T x,  dW_hh = dpre_h^T h_prev.
// Outputs not asked for (undefined) are skipped.
template <typename T>
void input_and_weight_grads(const Shape4& s, std::int64_t g, const T* dpre_x, const T* dpre_h, const T* x,
                            const T* w_ih, const T* h_prev, NDArray& dx, NDArray& dw_ih, NDArray& dw_hh) {
  const std::int64_t rows = s.steps * s.batch, in = s.input, h = s.hidden;
  if (dx.defined()) gemm<T>(false, false, rows, in, g, dpre_x, g, w_ih, in, dx.data<T>(), in);
  if (dw_ih.defined()) gemm<T>(true, false, g, in, rows, dpre_x, g, x, in, dw_ih.data<T>(), in);
  if (dw_hh.defined()) gemm<T>(true, false, g, h, rows, dpre_h, g, h_prev, h, dw_hh.data<T>(), h);
}

// A bias's gradient (g,): the column sums of the (rows, g) gradients of
// its pre-activations, column ranges across threads (each column still sums
// its rows in order, so the bits do not depend on the thread count).
// Skipped when not asked for.
template <typename T>
void bias_grad(NDArray& db, const T* dpre, std::int64_t rows, std::int64_t g) {
  if (!db.defined()) return;
  T* p = db.data<T>();
  constexpr std::int64_t kColumns = 256;
#pragma omp parallel for schedule(static) if (rows * g > 65536)
  for (std::int64_t j0 = 0; j0 < g; j0 += kColumns) {
    const std::int64_t j1 = std::min(g, j0 + kColumns);
    std::fill(p + j0, p + j1, T(0));
    for (std::int64_t r = 0; r < rows; ++r) {
#pragma omp simd
      for (std::int64_t j = j0; j < j1; ++j) p[j] += dpre[r * g + j];
    }
  }
}

}  // namespace rnn
}  // inline namespace LOOM_CPU_ISA
}  // namespace loom::kernels
