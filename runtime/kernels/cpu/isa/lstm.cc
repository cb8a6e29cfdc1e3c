// lstm_layer on the CPU (opdefs/nn/lstm.yaml): the shape rule, the fused
// forward and the fused backward (lstm_kernels.h). GEMMs run outside
// parallel regions, so OpenBLAS uses every thread; the per-step gate
// passes are OpenMP loops over (batch, hidden), vectorised (float's
// sigmoid and tanh are fast_math.h's straight-line versions). Built per
// ISA (isa_dispatch.h).
#include <algorithm>
#include <cmath>
#include <vector>

#include "generated/kernels/lstm_layer.h"
#include "microkernel/base/error.h"
#include "runtime/core/shape.h"
#include "runtime/kernels/cpu/cpu_gemm.h"
#include "runtime/kernels/cpu/isa_dispatch.h"
#include "runtime/kernels/cpu/rnn_math.h"
#include "runtime/kernels/cpu/rnn_shapes.h"
#include "runtime/kernels/lstm_kernels.h"

namespace loom::kernels {
inline namespace LOOM_CPU_ISA {
namespace {

using LstmShape = rnn::Shape4;
using rnn::ptr_or_null;
using rnn::sigmoid;
using rnn::tanh_of;
constexpr auto lstm_shape = rnn::shape_of;

template <typename T>
void forward(const LstmShape& s, NDArray& y, NDArray& h_n, NDArray& c_n, NDArray& gates, NDArray& cells,
             const NDArray& x_in, const NDArray& h0_in, const NDArray& c0_in, const NDArray& w_ih_in,
             const NDArray& w_hh_in, const NDArray& b_ih_in, const NDArray& b_hh_in, bool reverse) {
  NDArray kx, kh0, kc0, kwi, kwh, kbi, kbh;
  const T* x = ptr_or_null<T>(x_in, kx);
  const T* h0 = ptr_or_null<T>(h0_in, kh0);
  const T* c0 = ptr_or_null<T>(c0_in, kc0);
  const T* w_ih = ptr_or_null<T>(w_ih_in, kwi);
  const T* w_hh = ptr_or_null<T>(w_hh_in, kwh);
  const T* b_ih = ptr_or_null<T>(b_ih_in, kbi);
  const T* b_hh = ptr_or_null<T>(b_hh_in, kbh);
  const std::int64_t N = s.batch, H = s.hidden, G = 4 * H, rows = s.steps * N;
  T* pg = gates.data<T>();
  T* pc = cells.data<T>();
  T* py = y.data<T>();
  // every step's input projection at once, then the biases
  gemm<T>(false, true, rows, G, s.input, x, s.input, w_ih, s.input, pg, G);
  rnn::add_biases(pg, rows, G, b_ih, b_hh);
  const std::vector<T> zeros(static_cast<std::size_t>(N * H), T(0));
  const T* h_prev = h0 ? h0 : zeros.data();
  const T* c_prev = c0 ? c0 : zeros.data();
  const rnn::Scratch<T> w_hh_t = rnn::transposed(w_hh, G, H);  // (H, 4H)
  for (std::int64_t step = 0; step < s.steps; ++step) {
    const std::int64_t t = reverse ? s.steps - 1 - step : step;
    T* gt = pg + t * N * G;
    gemm<T>(false, false, N, G, H, h_prev, H, w_hh_t.data(), G, gt, G, /*accumulate=*/true);
    T* ct = pc + t * N * H;
    T* ht = py + t * N * H;
#pragma omp parallel for schedule(static) if (rnn::parallel_gates(N * H, 5))
    for (std::int64_t n = 0; n < N; ++n) {
      T* g = gt + n * G;
      const T* cp = c_prev + n * H;
      T* cn = ct + n * H;
      T* hn = ht + n * H;
#pragma omp simd
      for (std::int64_t j = 0; j < H; ++j) {
        const T i = sigmoid(g[j]), f = sigmoid(g[H + j]), cand = tanh_of(g[2 * H + j]), o = sigmoid(g[3 * H + j]);
        const T c = f * cp[j] + i * cand;
        g[j] = i;
        g[H + j] = f;
        g[2 * H + j] = cand;
        g[3 * H + j] = o;
        cn[j] = c;
        hn[j] = o * tanh_of(c);
      }
    }
    h_prev = ht;
    c_prev = ct;
  }
  std::copy(h_prev, h_prev + N * H, h_n.data<T>());
  std::copy(c_prev, c_prev + N * H, c_n.data<T>());
}

template <typename T>
void backward(const LstmShape& s, NDArray& dx, NDArray& dh0, NDArray& dc0, NDArray& dw_ih, NDArray& dw_hh,
              NDArray& db, const NDArray& gy_in, const NDArray& ghn_in, const NDArray& gcn_in, const NDArray& x_in,
              const NDArray& h0_in, const NDArray& c0_in, const NDArray& w_ih_in, const NDArray& w_hh_in,
              const NDArray& y_in, const NDArray& gates_in, const NDArray& cells_in, bool reverse) {
  NDArray k[11];
  const T* gy = ptr_or_null<T>(gy_in, k[0]);
  const T* ghn = ptr_or_null<T>(ghn_in, k[1]);
  const T* gcn = ptr_or_null<T>(gcn_in, k[2]);
  const T* x = ptr_or_null<T>(x_in, k[3]);
  const T* h0 = ptr_or_null<T>(h0_in, k[4]);
  const T* c0 = ptr_or_null<T>(c0_in, k[5]);
  const T* w_ih = ptr_or_null<T>(w_ih_in, k[6]);
  const T* w_hh = ptr_or_null<T>(w_hh_in, k[7]);
  const T* y = ptr_or_null<T>(y_in, k[8]);
  const T* gates = ptr_or_null<T>(gates_in, k[9]);
  const T* cells = ptr_or_null<T>(cells_in, k[10]);
  const std::int64_t N = s.batch, H = s.hidden, G = 4 * H, rows = s.steps * N;
  rnn::Scratch<T> dpre(rows * G);
  std::vector<T> dh(static_cast<std::size_t>(N * H), T(0)), dc(static_cast<std::size_t>(N * H), T(0));
  if (ghn) std::copy(ghn, ghn + N * H, dh.begin());
  if (gcn) std::copy(gcn, gcn + N * H, dc.begin());
  const std::vector<T> zeros(static_cast<std::size_t>(N * H), T(0));
  for (std::int64_t step = s.steps - 1; step >= 0; --step) {
    const std::int64_t t = reverse ? s.steps - 1 - step : step;
    const std::int64_t prev = reverse ? t + 1 : t - 1;  // the step before t in the recurrence
    const T* cp = step == 0 ? (c0 ? c0 : zeros.data()) : cells + prev * N * H;
    const T* gt = gates + t * N * G;
    const T* ct = cells + t * N * H;
    T* dp = dpre.data() + t * N * G;
#pragma omp parallel for schedule(static) if (rnn::parallel_gates(N * H, 3))
    for (std::int64_t n = 0; n < N; ++n) {
      const T* g = gt + n * G;
      T* d = dp + n * G;
#pragma omp simd
      for (std::int64_t j = 0; j < H; ++j) {
        const std::int64_t a = n * H + j;
        const T i = g[j], f = g[H + j], cand = g[2 * H + j], o = g[3 * H + j];
        const T dht = dh[a] + (gy ? gy[t * N * H + a] : T(0));
        const T tc = tanh_of(ct[a]);
        const T dct = dc[a] + dht * o * (T(1) - tc * tc);
        d[j] = dct * cand * i * (T(1) - i);
        d[H + j] = dct * cp[a] * f * (T(1) - f);
        d[2 * H + j] = dct * i * (T(1) - cand * cand);
        d[3 * H + j] = dht * tc * o * (T(1) - o);
        dc[a] = dct * f;
      }
    }
    gemm<T>(false, false, N, H, G, dp, G, w_hh, H, dh.data(), H);  // dh_{t-1} = dpre_t W_hh
  }
  if (dh0.defined()) std::copy(dh.begin(), dh.end(), dh0.data<T>());
  if (dc0.defined()) std::copy(dc.begin(), dc.end(), dc0.data<T>());
  // only dW_hh reads the previous states here (the GRU also reads them per step)
  const rnn::Scratch<T> h_prev_all = dw_hh.defined() ? rnn::previous_states(s, y, h0, reverse) : rnn::Scratch<T>();
  rnn::input_and_weight_grads(s, G, dpre.data(), dpre.data(), x, w_ih, h_prev_all.data(), dx, dw_ih, dw_hh);
  rnn::bias_grad(db, dpre.data(), rows, G);
}

}  // namespace

void LOOM_ISA_NAME(lstm_forward)(NDArray& y, NDArray& h_n, NDArray& c_n, NDArray& gates, NDArray& cells,
                                 const NDArray& x, const NDArray& w_ih, const NDArray& w_hh, const NDArray& b_ih,
                                 const NDArray& b_hh, const NDArray& h0, const NDArray& c0, bool reverse) {
  const LstmShape s = lstm_shape(x, w_hh);
  by_dtype("lstm_layer", y.dtype(), [&](auto tag) {
    forward<decltype(tag)>(s, y, h_n, c_n, gates, cells, x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse);
  });
}

void LOOM_ISA_NAME(lstm_backward)(NDArray& dx, NDArray& dh0, NDArray& dc0, NDArray& dw_ih, NDArray& dw_hh,
                                  NDArray& db, const NDArray& gy, const NDArray& ghn, const NDArray& gcn,
                                  const NDArray& x, const NDArray& h0, const NDArray& c0, const NDArray& w_ih,
                                  const NDArray& w_hh, const NDArray& y, const NDArray& gates, const NDArray& cells,
                                  bool reverse) {
  const LstmShape s = lstm_shape(x, w_hh);
  by_dtype("lstm_layer (backward)", x.dtype(), [&](auto tag) {
    backward<decltype(tag)>(s, dx, dh0, dc0, dw_ih, dw_hh, db, gy, ghn, gcn, x, h0, c0, w_ih, w_hh, y, gates, cells,
                            reverse);
  });
}

}  // inline namespace LOOM_CPU_ISA

#if !defined(LOOM_CPU_ISA_BUILD)
LOOM_ISA_DECLARE(lstm_forward, (NDArray&, NDArray&, NDArray&, NDArray&, NDArray&, const NDArray&, const NDArray&,
                                const NDArray&, const NDArray&, const NDArray&, const NDArray&, const NDArray&, bool))
LOOM_ISA_DECLARE(lstm_backward, (NDArray&, NDArray&, NDArray&, NDArray&, NDArray&, NDArray&, const NDArray&,
                                 const NDArray&, const NDArray&, const NDArray&, const NDArray&, const NDArray&,
                                 const NDArray&, const NDArray&, const NDArray&, const NDArray&, const NDArray&, bool))

std::vector<Shape> infer_lstm_layer(const NDArray& x, const NDArray& w_ih, const NDArray& w_hh, const NDArray& b_ih,
                                    const NDArray& b_hh, const NDArray& h0, const NDArray& c0, bool reverse) {
  const std::int64_t H = check_recurrent_layer("lstm_layer", 4, x, w_ih, w_hh, {{"b_ih", &b_ih}, {"b_hh", &b_hh}},
                                                {{"h0", &h0}, {"c0", &c0}});
  const std::int64_t T = x.shape()[0], N = x.shape()[1];
  return {{T, N, H}, {N, H}, {N, H}, {T, N, 4 * H}, {T, N, H}};
}

void lstm_layer_cpu(NDArray& y, NDArray& h_n, NDArray& c_n, NDArray& gates, NDArray& cells, const NDArray& x,
                    const NDArray& w_ih, const NDArray& w_hh, const NDArray& b_ih, const NDArray& b_hh,
                    const NDArray& h0, const NDArray& c0, bool reverse) {
  const LstmShape s = lstm_shape(x, w_hh);
  if (s.steps == 0 || s.batch == 0) {  // no steps: the final states are the initial ones
    rnn::copy_initial_state("lstm_layer", h_n, h0);
    rnn::copy_initial_state("lstm_layer", c_n, c0);
    return;
  }
  LOOM_ISA_CALL(lstm_forward, y, h_n, c_n, gates, cells, x, w_ih, w_hh, b_ih, b_hh, h0, c0, reverse);
}

void lstm_backward_cpu(NDArray& dx, NDArray& dh0, NDArray& dc0, NDArray& dw_ih, NDArray& dw_hh, NDArray& db,
                       const NDArray& gy, const NDArray& ghn, const NDArray& gcn, const NDArray& x, const NDArray& h0,
                       const NDArray& c0, const NDArray& w_ih, const NDArray& w_hh, const NDArray& y,
                       const NDArray& gates, const NDArray& cells, bool reverse) {
  LOOM_ISA_CALL(lstm_backward, dx, dh0, dc0, dw_ih, dw_hh, db, gy, ghn, gcn, x, h0, c0, w_ih, w_hh, y, gates, cells,
                reverse);
}
#endif  // !LOOM_CPU_ISA_BUILD

}  // namespace loom::kernels
