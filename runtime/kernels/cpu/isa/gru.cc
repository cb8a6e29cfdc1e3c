// gru_layer on the CPU (opdefs/nn/gru.yaml): the shape rule, the fused
// forward and the fused backward (gru_kernels.h), as lstm.cc: GEMMs outside
// parallel regions (OpenBLAS uses every thread), vectorised gate passes.
// Gates are saved as (T, N, 4H): r, z, n and hn = W_hn h + b_hn, which the
// candidate's gradient needs (r multiplies it). Built per ISA.
#include <algorithm>
#include <vector>

#include "generated/kernels/gru_layer.h"
#include "microkernel/base/error.h"
#include "runtime/core/shape.h"
#include "runtime/kernels/cpu/cpu_gemm.h"
#include "runtime/kernels/cpu/isa_dispatch.h"
#include "runtime/kernels/cpu/rnn_math.h"
#include "runtime/kernels/cpu/rnn_shapes.h"
#include "runtime/kernels/gru_kernels.h"

namespace loom::kernels {
inline namespace LOOM_CPU_ISA {
namespace {

using rnn::ptr_or_null;
using rnn::sigmoid;
using rnn::tanh_of;

template <typename T>
void forward(const rnn::Shape4& s, NDArray& y, NDArray& h_n, NDArray& gates, const NDArray& x_in,
             const NDArray& w_ih_in, const NDArray& w_hh_in, const NDArray& b_ih_in, const NDArray& b_hh_in,
             const NDArray& h0_in, bool reverse) {
  NDArray k[6];
  const T* x = ptr_or_null<T>(x_in, k[0]);
  const T* w_ih = ptr_or_null<T>(w_ih_in, k[1]);
  const T* w_hh = ptr_or_null<T>(w_hh_in, k[2]);
  const T* b_ih = ptr_or_null<T>(b_ih_in, k[3]);
  const T* b_hh = ptr_or_null<T>(b_hh_in, k[4]);
  const T* h0 = ptr_or_null<T>(h0_in, k[5]);
  const std::int64_t N = s.batch, H = s.hidden, G3 = 3 * H, G4 = 4 * H, rows = s.steps * N;
  rnn::Scratch<T> xproj(rows * G3), hproj(N * G3);
  gemm<T>(false, true, rows, G3, s.input, x, s.input, w_ih, s.input, xproj.data(), G3);
  rnn::add_biases<T>(xproj.data(), rows, G3, b_ih, nullptr);
  const std::vector<T> zeros(static_cast<std::size_t>(N * H), T(0));
  const T* h_prev = h0 ? h0 : zeros.data();
  const rnn::Scratch<T> w_hh_t = rnn::transposed(w_hh, G3, H);  // (H, 3H)
  T* py = y.data<T>();
  T* pg = gates.data<T>();
  for (std::int64_t step = 0; step < s.steps; ++step) {
    const std::int64_t t = reverse ? s.steps - 1 - step : step;
    gemm<T>(false, false, N, G3, H, h_prev, H, w_hh_t.data(), G3, hproj.data(), G3);
    rnn::add_biases<T>(hproj.data(), N, G3, b_hh, nullptr);
    T* ht = py + t * N * H;
#pragma omp parallel for schedule(static) if (rnn::parallel_gates(N * H, 3))
    for (std::int64_t n = 0; n < N; ++n) {
      const T* xi = xproj.data() + (t * N + n) * G3;
      const T* hh = hproj.data() + n * G3;
      const T* hp = h_prev + n * H;
      T* g = pg + (t * N + n) * G4;
      T* h = ht + n * H;
#pragma omp simd
      for (std::int64_t j = 0; j < H; ++j) {
        const T r = sigmoid(xi[j] + hh[j]), z = sigmoid(xi[H + j] + hh[H + j]);
        const T cand = tanh_of(xi[2 * H + j] + r * hh[2 * H + j]);
        g[j] = r;
        g[H + j] = z;
        g[2 * H + j] = cand;
        g[3 * H + j] = hh[2 * H + j];
        h[j] = (T(1) - z) * cand + z * hp[j];
      }
    }
    h_prev = ht;
  }
  std::copy(h_prev, h_prev + N * H, h_n.data<T>());
}

template <typename T>
void backward(const rnn::Shape4& s, NDArray& dx, NDArray& dh0, NDArray& dw_ih, NDArray& dw_hh, NDArray& db_ih,
              NDArray& db_hh, const NDArray& gy_in, const NDArray& ghn_in, const NDArray& x_in, const NDArray& h0_in,
              const NDArray& w_ih_in, const NDArray& w_hh_in, const NDArray& y_in, const NDArray& gates_in,
              bool reverse) {
  NDArray k[8];
  const T* gy = ptr_or_null<T>(gy_in, k[0]);
  const T* ghn = ptr_or_null<T>(ghn_in, k[1]);
  const T* x = ptr_or_null<T>(x_in, k[2]);
  const T* h0 = ptr_or_null<T>(h0_in, k[3]);
  const T* w_ih = ptr_or_null<T>(w_ih_in, k[4]);
  const T* w_hh = ptr_or_null<T>(w_hh_in, k[5]);
  const T* y = ptr_or_null<T>(y_in, k[6]);
  const T* gates = ptr_or_null<T>(gates_in, k[7]);
  const std::int64_t N = s.batch, H = s.hidden, G3 = 3 * H, G4 = 4 * H, rows = s.steps * N;
  // the pre-activation gradients, input side (r, z, n) and hidden side (r, z, hn)
  rnn::Scratch<T> dxpre(rows * G3), dhpre(rows * G3);
  const rnn::Scratch<T> h_prev_all = rnn::previous_states(s, y, h0, reverse);
  std::vector<T> dh(static_cast<std::size_t>(N * H), T(0));
  if (ghn) std::copy(ghn, ghn + N * H, dh.begin());
  for (std::int64_t step = s.steps - 1; step >= 0; --step) {
    const std::int64_t t = reverse ? s.steps - 1 - step : step;
    const T* hp = h_prev_all.data() + t * N * H;
#pragma omp parallel for schedule(static) if (rnn::parallel_gates(N * H, 2))
    for (std::int64_t n = 0; n < N; ++n) {
      const T* g = gates + (t * N + n) * G4;
      T* dxp = dxpre.data() + (t * N + n) * G3;
      T* dhp = dhpre.data() + (t * N + n) * G3;
      T* dhn = dh.data() + n * H;
      const T* gyt = gy ? gy + (t * N + n) * H : nullptr;
      const T* hpn = hp + n * H;
#pragma omp simd
      for (std::int64_t j = 0; j < H; ++j) {
        const T r = g[j], z = g[H + j], cand = g[2 * H + j], hn = g[3 * H + j];
        const T d = dhn[j] + (gyt ? gyt[j] : T(0));
        const T dn = d * (T(1) - z) * (T(1) - cand * cand);
        const T dz = d * (hpn[j] - cand) * z * (T(1) - z);
        const T dr = dn * hn * r * (T(1) - r);
        dxp[j] = dr;
        dxp[H + j] = dz;
        dxp[2 * H + j] = dn;
        dhp[j] = dr;
        dhp[H + j] = dz;
        dhp[2 * H + j] = dn * r;
        dhn[j] = d * z;  // the direct path; the W_hh path is added below
      }
    }
    gemm<T>(false, false, N, H, G3, dhpre.data() + t * N * G3, G3, w_hh, H, dh.data(), H, /*accumulate=*/true);
  }
  if (dh0.defined()) std::copy(dh.begin(), dh.end(), dh0.data<T>());
  rnn::input_and_weight_grads(s, G3, dxpre.data(), dhpre.data(), x, w_ih, h_prev_all.data(), dx, dw_ih, dw_hh);
  rnn::bias_grad(db_ih, dxpre.data(), rows, G3);
  rnn::bias_grad(db_hh, dhpre.data(), rows, G3);
}

}  // namespace

void LOOM_ISA_NAME(gru_forward)(NDArray& y, NDArray& h_n, NDArray& gates, const NDArray& x, const NDArray& w_ih,
                                const NDArray& w_hh, const NDArray& b_ih, const NDArray& b_hh, const NDArray& h0,
                                bool reverse) {
  const rnn::Shape4 s = rnn::shape_of(x, w_hh);
  by_dtype("gru_layer", y.dtype(), [&](auto tag) {
    forward<decltype(tag)>(s, y, h_n, gates, x, w_ih, w_hh, b_ih, b_hh, h0, reverse);
  });
}

void LOOM_ISA_NAME(gru_backward)(NDArray& dx, NDArray& dh0, NDArray& dw_ih, NDArray& dw_hh, NDArray& db_ih,
                                 NDArray& db_hh, const NDArray& gy, const NDArray& ghn, const NDArray& x,
                                 const NDArray& h0, const NDArray& w_ih, const NDArray& w_hh, const NDArray& y,
                                 const NDArray& gates, bool reverse) {
  const rnn::Shape4 s = rnn::shape_of(x, w_hh);
  by_dtype("gru_layer (backward)", x.dtype(), [&](auto tag) {
    backward<decltype(tag)>(s, dx, dh0, dw_ih, dw_hh, db_ih, db_hh, gy, ghn, x, h0, w_ih, w_hh, y, gates, reverse);
  });
}

}  // inline namespace LOOM_CPU_ISA

#if !defined(LOOM_CPU_ISA_BUILD)
LOOM_ISA_DECLARE(gru_forward, (NDArray&, NDArray&, NDArray&, const NDArray&, const NDArray&, const NDArray&,
                               const NDArray&, const NDArray&, const NDArray&, bool))
LOOM_ISA_DECLARE(gru_backward, (NDArray&, NDArray&, NDArray&, NDArray&, NDArray&, NDArray&, const NDArray&,
                                const NDArray&, const NDArray&, const NDArray&, const NDArray&, const NDArray&,
                                const NDArray&, const NDArray&, bool))

std::vector<Shape> infer_gru_layer(const NDArray& x, const NDArray& w_ih, const NDArray& w_hh, const NDArray& b_ih,
                                   const NDArray& b_hh, const NDArray& h0, bool reverse) {
  const std::int64_t H = check_recurrent_layer("gru_layer", 3, x, w_ih, w_hh, {{"b_ih", &b_ih}, {"b_hh", &b_hh}},
                                                {{"h0", &h0}});
  const std::int64_t T = x.shape()[0], N = x.shape()[1];
  return {{T, N, H}, {N, H}, {T, N, 4 * H}};
}

void gru_layer_cpu(NDArray& y, NDArray& h_n, NDArray& gates, const NDArray& x, const NDArray& w_ih,
                   const NDArray& w_hh, const NDArray& b_ih, const NDArray& b_hh, const NDArray& h0, bool reverse) {
  const rnn::Shape4 s = rnn::shape_of(x, w_hh);
  if (s.steps == 0 || s.batch == 0) {  // no steps: the final state is the initial one
    rnn::copy_initial_state("gru_layer", h_n, h0);
    return;
  }
  LOOM_ISA_CALL(gru_forward, y, h_n, gates, x, w_ih, w_hh, b_ih, b_hh, h0, reverse);
}

void gru_backward_cpu(NDArray& dx, NDArray& dh0, NDArray& dw_ih, NDArray& dw_hh, NDArray& db_ih, NDArray& db_hh,
                      const NDArray& gy, const NDArray& ghn, const NDArray& x, const NDArray& h0, const NDArray& w_ih,
                      const NDArray& w_hh, const NDArray& y, const NDArray& gates, bool reverse) {
  LOOM_ISA_CALL(gru_backward, dx, dh0, dw_ih, dw_hh, db_ih, db_hh, gy, ghn, x, h0, w_ih, w_hh, y, gates, reverse);
}
#endif  // !LOOM_CPU_ISA_BUILD

}  // namespace loom::kernels
