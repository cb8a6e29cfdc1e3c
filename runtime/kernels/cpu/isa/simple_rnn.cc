// rnn_layer on the CPU (opdefs/nn/rnn.yaml): the shape rule, the fused
// forward and the fused backward (rnn_kernels.h), as lstm.cc. Built per ISA.
#include <algorithm>
#include <vector>

#include "generated/kernels/rnn_layer.h"
#include "microkernel/base/error.h"
#include "runtime/core/shape.h"
#include "runtime/kernels/cpu/cpu_gemm.h"
#include "runtime/kernels/cpu/isa_dispatch.h"
#include "runtime/kernels/cpu/rnn_math.h"
#include "runtime/kernels/cpu/rnn_shapes.h"
#include "runtime/kernels/rnn_kernels.h"

namespace loom::kernels {
inline namespace LOOM_CPU_ISA {
namespace {

using rnn::ptr_or_null;
using rnn::tanh_of;

// (H, I) w_ih and (H, H) w_hh: shape_of reads hidden from w_hh's dim 1
template <typename T>
void forward(const rnn::Shape4& s, NDArray& y, NDArray& h_n, const NDArray& x_in, const NDArray& w_ih_in,
             const NDArray& w_hh_in, const NDArray& b_ih_in, const NDArray& b_hh_in, const NDArray& h0_in,
             bool reverse, bool relu) {
  NDArray k[6];
  const T* x = ptr_or_null<T>(x_in, k[0]);
  const T* w_ih = ptr_or_null<T>(w_ih_in, k[1]);
  const T* w_hh = ptr_or_null<T>(w_hh_in, k[2]);
  const T* b_ih = ptr_or_null<T>(b_ih_in, k[3]);
  const T* b_hh = ptr_or_null<T>(b_hh_in, k[4]);
  const T* h0 = ptr_or_null<T>(h0_in, k[5]);
  const std::int64_t N = s.batch, H = s.hidden, rows = s.steps * N;
  T* py = y.data<T>();
  gemm<T>(false, true, rows, H, s.input, x, s.input, w_ih, s.input, py, H);  // every step's input projection
  const std::vector<T> zeros(static_cast<std::size_t>(N * H), T(0));
  const T* h_prev = h0 ? h0 : zeros.data();
  const rnn::Scratch<T> w_hh_t = rnn::transposed(w_hh, H, H);
  for (std::int64_t step = 0; step < s.steps; ++step) {
    const std::int64_t t = reverse ? s.steps - 1 - step : step;
    T* ht = py + t * N * H;
    gemm<T>(false, false, N, H, H, h_prev, H, w_hh_t.data(), H, ht, H, /*accumulate=*/true);
#pragma omp parallel for schedule(static) if (rnn::parallel_gates(N * H, 1))
    for (std::int64_t n = 0; n < N; ++n) {
      T* h = ht + n * H;
#pragma omp simd
      for (std::int64_t j = 0; j < H; ++j) {
        const T pre = h[j] + (b_ih ? b_ih[j] : T(0)) + (b_hh ? b_hh[j] : T(0));
        h[j] = relu ? std::max(pre, T(0)) : tanh_of(pre);
      }
    }
    h_prev = ht;
  }
  std::copy(h_prev, h_prev + N * H, h_n.data<T>());
}

template <typename T>
void backward(const rnn::Shape4& s, NDArray& dx, NDArray& dh0, NDArray& dw_ih, NDArray& dw_hh, NDArray& db,
              const NDArray& gy_in, const NDArray& ghn_in, const NDArray& x_in, const NDArray& h0_in,
              const NDArray& w_ih_in, const NDArray& w_hh_in, const NDArray& y_in, bool reverse, bool relu) {
  NDArray k[7];
  const T* gy = ptr_or_null<T>(gy_in, k[0]);
  const T* ghn = ptr_or_null<T>(ghn_in, k[1]);
  const T* x = ptr_or_null<T>(x_in, k[2]);
  const T* h0 = ptr_or_null<T>(h0_in, k[3]);
  const T* w_ih = ptr_or_null<T>(w_ih_in, k[4]);
  const T* w_hh = ptr_or_null<T>(w_hh_in, k[5]);
  const T* y = ptr_or_null<T>(y_in, k[6]);
  const std::int64_t N = s.batch, H = s.hidden, rows = s.steps * N;
  rnn::Scratch<T> dpre(rows * H);
  std::vector<T> dh(static_cast<std::size_t>(N * H), T(0));
  if (ghn) std::copy(ghn, ghn + N * H, dh.begin());
  for (std::int64_t step = s.steps - 1; step >= 0; --step) {
    const std::int64_t t = reverse ? s.steps - 1 - step : step;
    T* dp = dpre.data() + t * N * H;
    const T* ht = y + t * N * H;
    const T* gyt = gy ? gy + t * N * H : nullptr;
#pragma omp parallel for simd schedule(static) if (rnn::parallel_gates(N * H, 1))
    for (std::int64_t a = 0; a < N * H; ++a) {
      const T d = dh[a] + (gyt ? gyt[a] : T(0));
      dp[a] = relu ? (ht[a] > T(0) ? d : T(0)) : d * (T(1) - ht[a] * ht[a]);
    }
    gemm<T>(false, false, N, H, H, dp, H, w_hh, H, dh.data(), H);  // dh_{t-1} = dpre_t W_hh
  }
  if (dh0.defined()) std::copy(dh.begin(), dh.end(), dh0.data<T>());
  // only dW_hh reads the previous states here (the GRU also reads them per step)
  const rnn::Scratch<T> h_prev_all = dw_hh.defined() ? rnn::previous_states(s, y, h0, reverse) : rnn::Scratch<T>();
  rnn::input_and_weight_grads(s, H, dpre.data(), dpre.data(), x, w_ih, h_prev_all.data(), dx, dw_ih, dw_hh);
  rnn::bias_grad(db, dpre.data(), rows, H);
}

}  // namespace

void LOOM_ISA_NAME(rnn_forward)(NDArray& y, NDArray& h_n, const NDArray& x, const NDArray& w_ih, const NDArray& w_hh,
                                const NDArray& b_ih, const NDArray& b_hh, const NDArray& h0, bool reverse, bool relu) {
  const rnn::Shape4 s = rnn::shape_of(x, w_hh);
  by_dtype("rnn_layer", y.dtype(), [&](auto tag) {
    forward<decltype(tag)>(s, y, h_n, x, w_ih, w_hh, b_ih, b_hh, h0, reverse, relu);
  });
}

void LOOM_ISA_NAME(rnn_backward)(NDArray& dx, NDArray& dh0, NDArray& dw_ih, NDArray& dw_hh, NDArray& db,
                                 const NDArray& gy, const NDArray& ghn, const NDArray& x, const NDArray& h0,
                                 const NDArray& w_ih, const NDArray& w_hh, const NDArray& y, bool reverse, bool relu) {
  const rnn::Shape4 s = rnn::shape_of(x, w_hh);
  by_dtype("rnn_layer (backward)", x.dtype(), [&](auto tag) {
    backward<decltype(tag)>(s, dx, dh0, dw_ih, dw_hh, db, gy, ghn, x, h0, w_ih, w_hh, y, reverse, relu);
  });
}

}  // inline namespace LOOM_CPU_ISA

#if !defined(LOOM_CPU_ISA_BUILD)
LOOM_ISA_DECLARE(rnn_forward, (NDArray&, NDArray&, const NDArray&, const NDArray&, const NDArray&, const NDArray&,
                               const NDArray&, const NDArray&, bool, bool))
LOOM_ISA_DECLARE(rnn_backward, (NDArray&, NDArray&, NDArray&, NDArray&, NDArray&, const NDArray&, const NDArray&,
                                const NDArray&, const NDArray&, const NDArray&, const NDArray&, const NDArray&, bool,
                                bool))

std::vector<Shape> infer_rnn_layer(const NDArray& x, const NDArray& w_ih, const NDArray& w_hh, const NDArray& b_ih,
                                   const NDArray& b_hh, const NDArray& h0, bool reverse, bool relu) {
  const std::int64_t H = check_recurrent_layer("rnn_layer", 1, x, w_ih, w_hh, {{"b_ih", &b_ih}, {"b_hh", &b_hh}},
                                                {{"h0", &h0}});
  const std::int64_t T = x.shape()[0], N = x.shape()[1];
  return {{T, N, H}, {N, H}};
}

void rnn_layer_cpu(NDArray& y, NDArray& h_n, const NDArray& x, const NDArray& w_ih, const NDArray& w_hh,
                   const NDArray& b_ih, const NDArray& b_hh, const NDArray& h0, bool reverse, bool relu) {
  const rnn::Shape4 s = rnn::shape_of(x, w_hh);
  if (s.steps == 0 || s.batch == 0) {  // no steps: the final state is the initial one
    rnn::copy_initial_state("rnn_layer", h_n, h0);
    return;
  }
  LOOM_ISA_CALL(rnn_forward, y, h_n, x, w_ih, w_hh, b_ih, b_hh, h0, reverse, relu);
}

void rnn_backward_cpu(NDArray& dx, NDArray& dh0, NDArray& dw_ih, NDArray& dw_hh, NDArray& db, const NDArray& gy,
                      const NDArray& ghn, const NDArray& x, const NDArray& h0, const NDArray& w_ih,
                      const NDArray& w_hh, const NDArray& y, bool reverse, bool relu) {
  LOOM_ISA_CALL(rnn_backward, dx, dh0, dw_ih, dw_hh, db, gy, ghn, x, h0, w_ih, w_hh, y, reverse, relu);
}
#endif  // !LOOM_CPU_ISA_BUILD

}  // namespace loom::kernels
