// lstm_layer, gru_layer and rnn_layer on a GPU, forward and fused backward:
// the CPU kernels' algorithm (runtime/kernels/cpu/isa/lstm.cc, gru.cc,
// simple_rnn.cc) step for step, so both devices save the same hidden
// outputs and agree to rounding. Every step's input projection is one
// cuBLAS GEMM before the recurrence; each step is then one GEMM against
// W_hh plus one fused kernel for the gates; the backward runs the
// recurrence in reverse and finishes with single GEMMs for dx, dW and the
// bias sums. Everything is queued on the default stream in order, so the
// scratch arrays (stream-ordered caching allocator) may be released when
// this returns. cuDNN's persistent RNN kernels would be faster for small
// batches; this keeps one algorithm, one gate layout and one set of hidden
// outputs across devices.
#if LOOM_WITH_CUBLAS
#include <cuda_runtime.h>

#include <cstdint>

#include "generated/kernels/gru_layer.h"
#include "generated/kernels/lstm_layer.h"
#include "generated/kernels/rnn_layer.h"
#include "microkernel/base/error.h"
#include "runtime/kernels/cuda/gemm_rows.h"
#include "runtime/kernels/cuda/pointwise_cuda.cuh"
#include "runtime/kernels/float_dtype.h"
#include "runtime/kernels/gru_kernels.h"
#include "runtime/kernels/lstm_kernels.h"
#include "runtime/kernels/rnn_kernels.h"

namespace loom::kernels {
namespace {

__device__ inline float exp_of(float v) { return expf(v); }
__device__ inline double exp_of(double v) { return exp(v); }
__device__ inline float tanh_of(float v) { return tanhf(v); }
__device__ inline double tanh_of(double v) { return tanh(v); }
template <typename T>
__device__ inline T sigmoid(T v) {
  return T(1) / (T(1) + exp_of(-v));
}

#define LOOM_GRID_LOOP(i, n)                                                                      \
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < (n); \
       i += std::int64_t(blockDim.x) * gridDim.x)

// The device, scratch memory and launch geometry of one layer call.
struct Gpu {
  const char* op;
  Device device;
  DType dtype;

  unsigned blocks(std::int64_t items) const { return cuda_grid_blocks(items, 256, device.id); }

  // A dense device pointer to an optional input (null when not given);
  // `keep` holds the copy.
  template <typename T>
  const T* dense(const NDArray& a, NDArray& keep) const {
    if (!a.defined()) return nullptr;
    keep = a.contiguous();
    return keep.template data<const T>();
  }
  template <typename T>
  T* scratch(NDArray& keep, std::int64_t count) const {
    keep = NDArray::empty({count}, dtype, device);
    return keep.template data<T>();
  }
  template <typename T>
  T* zeros(NDArray& keep, std::int64_t count) const {
    T* p = scratch<T>(keep, count);
    check(cudaMemsetAsync(p, 0, count * sizeof(T)), "cudaMemsetAsync");
    return p;
  }
  // dst <- src (count elements), or zeros when src is null
  template <typename T>
  void copy(T* dst, const T* src, std::int64_t count) const {
    if (count == 0) return;
    check(src ? cudaMemcpyAsync(dst, src, count * sizeof(T), cudaMemcpyDeviceToDevice)
              : cudaMemsetAsync(dst, 0, count * sizeof(T)),
          "cudaMemcpyAsync");
  }
  void check(cudaError_t status, const char* what) const {
    LOOM_CHECK_KIND(status == cudaSuccess, ErrorKind::kRuntime, op, ": ", what, " failed on ", device.str(), ": ",
                    cudaGetErrorString(status));
  }
  template <typename T>
  void gemm(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, const T* a, std::int64_t lda,
            const T* b, std::int64_t ldb, T* c, std::int64_t ldc, bool accumulate = false) const {
    gemm_rows<T>(device.id, ta, tb, m, n, k, a, lda, b, ldb, c, ldc, accumulate);
  }
  // out (g,) = the column sums of m (rows, g): ones (1, rows) x m
  template <typename T>
  void column_sums(T* out, const T* m, std::int64_t rows, std::int64_t g) const;
  // A bias's gradient (g,) from the (rows, g) pre-activation gradients, if asked for.
  template <typename T>
  void bias_grad(NDArray& db, const T* dpre, std::int64_t rows, std::int64_t g) const {
    if (db.defined()) column_sums<T>(db.data<T>(), dpre, rows, g);
  }
  // The gradients every layer ends with, one GEMM each over all steps, as
  // the CPU's rnn::input_and_weight_grads: dx = dpre_x W_ih, dW_ih =
  // dpre_x^T x, dW_hh = dpre_h^T h_prev, for the (rows, g) input-side and
  // hidden-side pre-activation gradients (one array except in the GRU).
  template <typename T>
  void input_and_weight_grads(std::int64_t rows, std::int64_t in, std::int64_t h, std::int64_t g, const T* dpre_x,
                              const T* dpre_h, const T* x, const T* w_ih, const T* h_prev, NDArray& dx,
                              NDArray& dw_ih, NDArray& dw_hh) const {
    if (dx.defined()) gemm<T>(false, false, rows, in, g, dpre_x, g, w_ih, in, dx.data<T>(), in);
    if (dw_ih.defined()) gemm<T>(true, false, g, in, rows, dpre_x, g, x, in, dw_ih.data<T>(), in);
    if (dw_hh.defined()) gemm<T>(true, false, g, h, rows, dpre_h, g, h_prev, h, dw_hh.data<T>(), h);
  }
  // every step's previous h (T, N, H) in time order: h0 (or zeros) at the
  // first step of the recurrence, y of the step before elsewhere
  template <typename T>
  void previous_states(T* out, const T* y, const T* h0, std::int64_t steps, std::int64_t nh, bool reverse) const {
    if (steps == 0) return;
    const std::int64_t first = reverse ? steps - 1 : 0;
    copy(out + first * nh, h0, nh);
    copy(out + (reverse ? 0 : nh), y + (reverse ? nh : 0), (steps - 1) * nh);
  }
};

template <typename T>
__global__ void fill_kernel(T* p, std::int64_t n, T value) {
  LOOM_GRID_LOOP(i, n) p[i] = value;
}

template <typename T>
void Gpu::column_sums(T* out, const T* m, std::int64_t rows, std::int64_t g) const {
  NDArray keep;
  T* ones = scratch<T>(keep, rows);
  if (rows > 0) fill_kernel<<<blocks(rows), 256>>>(ones, rows, T(1));
  gemm<T>(false, false, 1, g, rows, ones, rows, m, g, out, g);
}

template <typename T>
__global__ void add_biases(T* m, std::int64_t rows, std::int64_t g, const T* b1, const T* b2) {
  LOOM_GRID_LOOP(i, rows * g) {
    const std::int64_t j = i % g;
    m[i] += (b1 ? b1[j] : T(0)) + (b2 ? b2[j] : T(0));
  }
}

// ------------------------------------------------------------------ LSTM
template <typename T>
__global__ void lstm_step(T* gates, const T* c_prev, T* c_out, T* h_out, std::int64_t N, std::int64_t H) {
  LOOM_GRID_LOOP(a, N * H) {
    const std::int64_t n = a / H, j = a % H;
    T* g = gates + n * 4 * H;
    const T i = sigmoid(g[j]), f = sigmoid(g[H + j]), cand = tanh_of(g[2 * H + j]), o = sigmoid(g[3 * H + j]);
    const T c = f * c_prev[a] + i * cand;
    g[j] = i;
    g[H + j] = f;
    g[2 * H + j] = cand;
    g[3 * H + j] = o;
    c_out[a] = c;
    h_out[a] = o * tanh_of(c);
  }
}

template <typename T>
__global__ void lstm_back_step(const T* gates, const T* c_t, const T* c_prev, const T* gy, const T* dh, T* dc,
                               T* dpre, std::int64_t N, std::int64_t H) {
  LOOM_GRID_LOOP(a, N * H) {
    const std::int64_t n = a / H, j = a % H;
    const T* g = gates + n * 4 * H;
    T* d = dpre + n * 4 * H;
    const T i = g[j], f = g[H + j], cand = g[2 * H + j], o = g[3 * H + j];
    const T dht = dh[a] + (gy ? gy[a] : T(0));
    const T tc = tanh_of(c_t[a]);
    const T dct = dc[a] + dht * o * (T(1) - tc * tc);
    d[j] = dct * cand * i * (T(1) - i);
    d[H + j] = dct * c_prev[a] * f * (T(1) - f);
    d[2 * H + j] = dct * i * (T(1) - cand * cand);
    d[3 * H + j] = dht * tc * o * (T(1) - o);
    dc[a] = dct * f;
  }
}

template <typename T>
void lstm_forward(const Gpu& gpu, NDArray& y, NDArray& h_n, NDArray& c_n, NDArray& gates, NDArray& cells,
                  const NDArray& x_in, const NDArray& w_ih_in, const NDArray& w_hh_in, const NDArray& b_ih_in,
                  const NDArray& b_hh_in, const NDArray& h0_in, const NDArray& c0_in, bool reverse) {
  NDArray k[8];
  const T* x = gpu.dense<T>(x_in, k[0]);
  const T* w_ih = gpu.dense<T>(w_ih_in, k[1]);
  const T* w_hh = gpu.dense<T>(w_hh_in, k[2]);
  const T* b_ih = gpu.dense<T>(b_ih_in, k[3]);
  const T* b_hh = gpu.dense<T>(b_hh_in, k[4]);
  const std::int64_t steps = x_in.shape()[0], N = x_in.shape()[1], I = x_in.shape()[2], H = w_hh_in.shape()[1];
  const std::int64_t G = 4 * H, rows = steps * N, NH = N * H;
  const T* h_prev = h0_in.defined() ? gpu.dense<T>(h0_in, k[5]) : gpu.zeros<T>(k[5], NH);
  const T* c_prev = c0_in.defined() ? gpu.dense<T>(c0_in, k[6]) : gpu.zeros<T>(k[6], NH);
  T* pg = gates.data<T>();
  T* pc = cells.data<T>();
  T* py = y.data<T>();
  gpu.gemm<T>(false, true, rows, G, I, x, I, w_ih, I, pg, G);
  if ((b_ih || b_hh) && rows * G > 0) add_biases<<<gpu.blocks(rows * G), 256>>>(pg, rows, G, b_ih, b_hh);
  for (std::int64_t step = 0; step < steps; ++step) {
    const std::int64_t t = reverse ? steps - 1 - step : step;
    T* gt = pg + t * N * G;
    gpu.gemm<T>(false, true, N, G, H, h_prev, H, w_hh, H, gt, G, /*accumulate=*/true);
    if (NH > 0) lstm_step<<<gpu.blocks(NH), 256>>>(gt, c_prev, pc + t * NH, py + t * NH, N, H);
    h_prev = py + t * NH;
    c_prev = pc + t * NH;
  }
  gpu.copy(h_n.data<T>(), h_prev, NH);
  gpu.copy(c_n.data<T>(), c_prev, NH);
}

template <typename T>
void lstm_backward(const Gpu& gpu, NDArray& dx, NDArray& dh0, NDArray& dc0, NDArray& dw_ih, NDArray& dw_hh,
                   NDArray& db, const NDArray& gy_in, const NDArray& ghn_in, const NDArray& gcn_in, const NDArray& x_in,
                   const NDArray& h0_in, const NDArray& c0_in, const NDArray& w_ih_in, const NDArray& w_hh_in,
                   const NDArray& y_in, const NDArray& gates_in, const NDArray& cells_in, bool reverse) {
  NDArray k[16];
  const T* gy = gpu.dense<T>(gy_in, k[0]);
  const T* x = gpu.dense<T>(x_in, k[1]);
  const T* w_ih = gpu.dense<T>(w_ih_in, k[2]);
  const T* w_hh = gpu.dense<T>(w_hh_in, k[3]);
  const T* y = gpu.dense<T>(y_in, k[4]);
  const T* gates = gpu.dense<T>(gates_in, k[5]);
  const T* cells = gpu.dense<T>(cells_in, k[6]);
  const T* h0 = gpu.dense<T>(h0_in, k[7]);
  const T* c0 = gpu.dense<T>(c0_in, k[8]);
  const std::int64_t steps = x_in.shape()[0], N = x_in.shape()[1], I = x_in.shape()[2], H = w_hh_in.shape()[1];
  const std::int64_t G = 4 * H, rows = steps * N, NH = N * H;
  T* dpre = gpu.scratch<T>(k[9], rows * G);
  T* h_prev_all = gpu.scratch<T>(k[10], rows * H);
  T* dh = gpu.scratch<T>(k[11], NH);
  T* dc = gpu.scratch<T>(k[12], NH);
  T* zero_state = gpu.zeros<T>(k[13], NH);
  NDArray kh, kc;
  gpu.copy(dh, gpu.dense<T>(ghn_in, kh), NH);
  gpu.copy(dc, gpu.dense<T>(gcn_in, kc), NH);
  gpu.previous_states(h_prev_all, y, h0, steps, NH, reverse);
  for (std::int64_t step = steps - 1; step >= 0; --step) {
    const std::int64_t t = reverse ? steps - 1 - step : step;
    const std::int64_t prev = reverse ? t + 1 : t - 1;
    const T* cp = step == 0 ? (c0 ? c0 : zero_state) : cells + prev * NH;
    T* dp = dpre + t * N * G;
    if (NH > 0) {
      lstm_back_step<<<gpu.blocks(NH), 256>>>(gates + t * N * G, cells + t * NH, cp, gy ? gy + t * NH : nullptr, dh,
                                              dc, dp, N, H);
    }
    gpu.gemm<T>(false, false, N, H, G, dp, G, w_hh, H, dh, H);  // dh_{t-1} = dpre_t W_hh
  }
  if (dh0.defined()) gpu.copy(dh0.data<T>(), dh, NH);
  if (dc0.defined()) gpu.copy(dc0.data<T>(), dc, NH);
  gpu.input_and_weight_grads(rows, I, H, G, dpre, dpre, x, w_ih, h_prev_all, dx, dw_ih, dw_hh);
  gpu.bias_grad(db, dpre, rows, G);
}

// ------------------------------------------------------------------ GRU
template <typename T>
__global__ void gru_step(const T* xproj, const T* hproj, const T* b_ih, const T* b_hh, const T* h_prev, T* gates,
                         T* h_out, std::int64_t N, std::int64_t H) {
  LOOM_GRID_LOOP(a, N * H) {
    const std::int64_t n = a / H, j = a % H, G3 = 3 * H;
    const T* xi = xproj + n * G3;
    const T* hh = hproj + n * G3;
    const auto bi = [&](std::int64_t q) { return b_ih ? b_ih[q] : T(0); };
    const auto bh = [&](std::int64_t q) { return b_hh ? b_hh[q] : T(0); };
    const T hn = hh[2 * H + j] + bh(2 * H + j);
    const T r = sigmoid((xi[j] + bi(j)) + (hh[j] + bh(j)));
    const T z = sigmoid((xi[H + j] + bi(H + j)) + (hh[H + j] + bh(H + j)));
    const T cand = tanh_of((xi[2 * H + j] + bi(2 * H + j)) + r * hn);
    T* g = gates + n * 4 * H;
    g[j] = r;
    g[H + j] = z;
    g[2 * H + j] = cand;
    g[3 * H + j] = hn;
    h_out[a] = (T(1) - z) * cand + z * h_prev[a];
  }
}

template <typename T>
__global__ void gru_back_step(const T* gates, const T* h_prev, const T* gy, T* dh, T* dxpre, T* dhpre,
                              std::int64_t N, std::int64_t H) {
  LOOM_GRID_LOOP(a, N * H) {
    const std::int64_t n = a / H, j = a % H, G3 = 3 * H;
    const T* g = gates + n * 4 * H;
    T* dxp = dxpre + n * G3;
    T* dhp = dhpre + n * G3;
    const T r = g[j], z = g[H + j], cand = g[2 * H + j], hn = g[3 * H + j];
    const T d = dh[a] + (gy ? gy[a] : T(0));
    const T dn = d * (T(1) - z) * (T(1) - cand * cand);
    const T dz = d * (h_prev[a] - cand) * z * (T(1) - z);
    const T dr = dn * hn * r * (T(1) - r);
    dxp[j] = dr;
    dxp[H + j] = dz;
    dxp[2 * H + j] = dn;
    dhp[j] = dr;
    dhp[H + j] = dz;
    dhp[2 * H + j] = dn * r;
    dh[a] = d * z;  // the direct path; the W_hh path is added by a GEMM
  }
}

template <typename T>
void gru_forward(const Gpu& gpu, NDArray& y, NDArray& h_n, NDArray& gates, const NDArray& x_in, const NDArray& w_ih_in,
                 const NDArray& w_hh_in, const NDArray& b_ih_in, const NDArray& b_hh_in, const NDArray& h0_in,
                 bool reverse) {
  NDArray k[8];
  const T* x = gpu.dense<T>(x_in, k[0]);
  const T* w_ih = gpu.dense<T>(w_ih_in, k[1]);
  const T* w_hh = gpu.dense<T>(w_hh_in, k[2]);
  const T* b_ih = gpu.dense<T>(b_ih_in, k[3]);
  const T* b_hh = gpu.dense<T>(b_hh_in, k[4]);
  const std::int64_t steps = x_in.shape()[0], N = x_in.shape()[1], I = x_in.shape()[2], H = w_hh_in.shape()[1];
  const std::int64_t G3 = 3 * H, rows = steps * N, NH = N * H;
  const T* h_prev = h0_in.defined() ? gpu.dense<T>(h0_in, k[5]) : gpu.zeros<T>(k[5], NH);
  T* xproj = gpu.scratch<T>(k[6], rows * G3);
  T* hproj = gpu.scratch<T>(k[7], N * G3);
  T* py = y.data<T>();
  T* pg = gates.data<T>();
  gpu.gemm<T>(false, true, rows, G3, I, x, I, w_ih, I, xproj, G3);
  for (std::int64_t step = 0; step < steps; ++step) {
    const std::int64_t t = reverse ? steps - 1 - step : step;
    gpu.gemm<T>(false, true, N, G3, H, h_prev, H, w_hh, H, hproj, G3);
    if (NH > 0) {
      gru_step<<<gpu.blocks(NH), 256>>>(xproj + t * N * G3, hproj, b_ih, b_hh, h_prev, pg + t * N * 4 * H,
                                         py + t * NH, N, H);
    }
    h_prev = py + t * NH;
  }
  gpu.copy(h_n.data<T>(), h_prev, NH);
}

template <typename T>
void gru_backward(const Gpu& gpu, NDArray& dx, NDArray& dh0, NDArray& dw_ih, NDArray& dw_hh, NDArray& db_ih,
                  NDArray& db_hh, const NDArray& gy_in, const NDArray& ghn_in, const NDArray& x_in,
                  const NDArray& h0_in, const NDArray& w_ih_in, const NDArray& w_hh_in, const NDArray& y_in,
                  const NDArray& gates_in, bool reverse) {
  NDArray k[14];
  const T* gy = gpu.dense<T>(gy_in, k[0]);
  const T* x = gpu.dense<T>(x_in, k[1]);
  const T* w_ih = gpu.dense<T>(w_ih_in, k[2]);
  const T* w_hh = gpu.dense<T>(w_hh_in, k[3]);
  const T* y = gpu.dense<T>(y_in, k[4]);
  const T* gates = gpu.dense<T>(gates_in, k[5]);
  const T* h0 = gpu.dense<T>(h0_in, k[6]);
  const std::int64_t steps = x_in.shape()[0], N = x_in.shape()[1], I = x_in.shape()[2], H = w_hh_in.shape()[1];
  const std::int64_t G3 = 3 * H, rows = steps * N, NH = N * H;
  T* dxpre = gpu.scratch<T>(k[7], rows * G3);
  T* dhpre = gpu.scratch<T>(k[8], rows * G3);
  T* h_prev_all = gpu.scratch<T>(k[9], rows * H);
  T* dh = gpu.scratch<T>(k[10], NH);
  gpu.copy(dh, gpu.dense<T>(ghn_in, k[11]), NH);
  gpu.previous_states(h_prev_all, y, h0, steps, NH, reverse);
  for (std::int64_t step = steps - 1; step >= 0; --step) {
    const std::int64_t t = reverse ? steps - 1 - step : step;
    if (NH > 0) {
      gru_back_step<<<gpu.blocks(NH), 256>>>(gates + t * N * 4 * H, h_prev_all + t * NH, gy ? gy + t * NH : nullptr,
                                              dh, dxpre + t * N * G3, dhpre + t * N * G3, N, H);
    }
    gpu.gemm<T>(false, false, N, H, G3, dhpre + t * N * G3, G3, w_hh, H, dh, H, /*accumulate=*/true);
  }
  if (dh0.defined()) gpu.copy(dh0.data<T>(), dh, NH);
  gpu.input_and_weight_grads(rows, I, H, G3, dxpre, dhpre, x, w_ih, h_prev_all, dx, dw_ih, dw_hh);
  gpu.bias_grad(db_ih, dxpre, rows, G3);
  gpu.bias_grad(db_hh, dhpre, rows, G3);
}

// ------------------------------------------------------------------ Elman RNN
template <typename T>
__global__ void rnn_step(T* h, const T* b_ih, const T* b_hh, std::int64_t N, std::int64_t H, bool relu) {
  LOOM_GRID_LOOP(a, N * H) {
    const std::int64_t j = a % H;
    const T pre = h[a] + (b_ih ? b_ih[j] : T(0)) + (b_hh ? b_hh[j] : T(0));
    h[a] = relu ? (pre > T(0) ? pre : T(0)) : tanh_of(pre);
  }
}

template <typename T>
__global__ void rnn_back_step(const T* h, const T* gy, const T* dh, T* dpre, std::int64_t n, bool relu) {
  LOOM_GRID_LOOP(a, n) {
    const T d = dh[a] + (gy ? gy[a] : T(0));
    dpre[a] = relu ? (h[a] > T(0) ? d : T(0)) : d * (T(1) - h[a] * h[a]);
  }
}

template <typename T>
void rnn_forward(const Gpu& gpu, NDArray& y, NDArray& h_n, const NDArray& x_in, const NDArray& w_ih_in,
                 const NDArray& w_hh_in, const NDArray& b_ih_in, const NDArray& b_hh_in, const NDArray& h0_in,
                 bool reverse, bool relu) {
  NDArray k[6];
  const T* x = gpu.dense<T>(x_in, k[0]);
  const T* w_ih = gpu.dense<T>(w_ih_in, k[1]);
  const T* w_hh = gpu.dense<T>(w_hh_in, k[2]);
  const T* b_ih = gpu.dense<T>(b_ih_in, k[3]);
  const T* b_hh = gpu.dense<T>(b_hh_in, k[4]);
  const std::int64_t steps = x_in.shape()[0], N = x_in.shape()[1], I = x_in.shape()[2], H = w_hh_in.shape()[1];
  const std::int64_t rows = steps * N, NH = N * H;
  const T* h_prev = h0_in.defined() ? gpu.dense<T>(h0_in, k[5]) : gpu.zeros<T>(k[5], NH);
  T* py = y.data<T>();
  gpu.gemm<T>(false, true, rows, H, I, x, I, w_ih, I, py, H);  // every step's input projection
  for (std::int64_t step = 0; step < steps; ++step) {
    const std::int64_t t = reverse ? steps - 1 - step : step;
    T* ht = py + t * NH;
    gpu.gemm<T>(false, true, N, H, H, h_prev, H, w_hh, H, ht, H, /*accumulate=*/true);
    if (NH > 0) rnn_step<<<gpu.blocks(NH), 256>>>(ht, b_ih, b_hh, N, H, relu);
    h_prev = ht;
  }
  gpu.copy(h_n.data<T>(), h_prev, NH);
}

template <typename T>
void rnn_backward(const Gpu& gpu, NDArray& dx, NDArray& dh0, NDArray& dw_ih, NDArray& dw_hh, NDArray& db,
                  const NDArray& gy_in, const NDArray& ghn_in, const NDArray& x_in, const NDArray& h0_in,
                  const NDArray& w_ih_in, const NDArray& w_hh_in, const NDArray& y_in, bool reverse, bool relu) {
  NDArray k[10];
  const T* gy = gpu.dense<T>(gy_in, k[0]);
  const T* x = gpu.dense<T>(x_in, k[1]);
  const T* w_ih = gpu.dense<T>(w_ih_in, k[2]);
  const T* w_hh = gpu.dense<T>(w_hh_in, k[3]);
  const T* y = gpu.dense<T>(y_in, k[4]);
  const T* h0 = gpu.dense<T>(h0_in, k[5]);
  const std::int64_t steps = x_in.shape()[0], N = x_in.shape()[1], I = x_in.shape()[2], H = w_hh_in.shape()[1];
  const std::int64_t rows = steps * N, NH = N * H;
  T* dpre = gpu.scratch<T>(k[6], rows * H);
  T* h_prev_all = gpu.scratch<T>(k[7], rows * H);
  T* dh = gpu.scratch<T>(k[8], NH);
  gpu.copy(dh, gpu.dense<T>(ghn_in, k[9]), NH);
  gpu.previous_states(h_prev_all, y, h0, steps, NH, reverse);
  for (std::int64_t step = steps - 1; step >= 0; --step) {
    const std::int64_t t = reverse ? steps - 1 - step : step;
    T* dp = dpre + t * NH;
    if (NH > 0) rnn_back_step<<<gpu.blocks(NH), 256>>>(y + t * NH, gy ? gy + t * NH : nullptr, dh, dp, NH, relu);
    gpu.gemm<T>(false, false, N, H, H, dp, H, w_hh, H, dh, H);  // dh_{t-1} = dpre_t W_hh
  }
  if (dh0.defined()) gpu.copy(dh0.data<T>(), dh, NH);
  gpu.input_and_weight_grads(rows, I, H, H, dpre, dpre, x, w_ih, h_prev_all, dx, dw_ih, dw_hh);
  gpu.bias_grad(db, dpre, rows, H);
}

// Runs fn(T{}) for the call's dtype on its device, then checks the launches.
template <typename Fn>
void on_gpu(const char* op, const NDArray& like, Fn&& fn) {
  cuda_select_device(op, like.device().id);
  const Gpu gpu{op, like.device(), like.dtype()};
  by_dtype(op, like.dtype(), [&](auto tag) { fn(gpu, tag); });
  check_cuda_launch(op);
}

}  // namespace

void lstm_layer_cuda(NDArray& y, NDArray& h_n, NDArray& c_n, NDArray& gates, NDArray& cells, const NDArray& x,
                     const NDArray& w_ih, const NDArray& w_hh, const NDArray& b_ih, const NDArray& b_hh,
                     const NDArray& h0, const NDArray& c0, bool reverse) {
  on_gpu("lstm_layer", h_n, [&](const Gpu& gpu, auto tag) {
    lstm_forward<decltype(tag)>(gpu, y, h_n, c_n, gates, cells, x, w_ih, w_hh, b_ih, b_hh, h0, c0, reverse);
  });
}

void lstm_backward_cuda(NDArray& dx, NDArray& dh0, NDArray& dc0, NDArray& dw_ih, NDArray& dw_hh, NDArray& db,
                        const NDArray& gy, const NDArray& ghn, const NDArray& gcn, const NDArray& x, const NDArray& h0,
                        const NDArray& c0, const NDArray& w_ih, const NDArray& w_hh, const NDArray& y,
                        const NDArray& gates, const NDArray& cells, bool reverse) {
  on_gpu("lstm_layer (backward)", x, [&](const Gpu& gpu, auto tag) {
    lstm_backward<decltype(tag)>(gpu, dx, dh0, dc0, dw_ih, dw_hh, db, gy, ghn, gcn, x, h0, c0, w_ih, w_hh, y, gates,
                                 cells, reverse);
  });
}

void gru_layer_cuda(NDArray& y, NDArray& h_n, NDArray& gates, const NDArray& x, const NDArray& w_ih,
                    const NDArray& w_hh, const NDArray& b_ih, const NDArray& b_hh, const NDArray& h0, bool reverse) {
  on_gpu("gru_layer", h_n, [&](const Gpu& gpu, auto tag) {
    gru_forward<decltype(tag)>(gpu, y, h_n, gates, x, w_ih, w_hh, b_ih, b_hh, h0, reverse);
  });
}

void gru_backward_cuda(NDArray& dx, NDArray& dh0, NDArray& dw_ih, NDArray& dw_hh, NDArray& db_ih, NDArray& db_hh,
                       const NDArray& gy, const NDArray& ghn, const NDArray& x, const NDArray& h0, const NDArray& w_ih,
                       const NDArray& w_hh, const NDArray& y, const NDArray& gates, bool reverse) {
  on_gpu("gru_layer (backward)", x, [&](const Gpu& gpu, auto tag) {
    gru_backward<decltype(tag)>(gpu, dx, dh0, dw_ih, dw_hh, db_ih, db_hh, gy, ghn, x, h0, w_ih, w_hh, y, gates,
                                reverse);
  });
}

void rnn_layer_cuda(NDArray& y, NDArray& h_n, const NDArray& x, const NDArray& w_ih, const NDArray& w_hh,
                    const NDArray& b_ih, const NDArray& b_hh, const NDArray& h0, bool reverse, bool relu) {
  on_gpu("rnn_layer", h_n, [&](const Gpu& gpu, auto tag) {
    rnn_forward<decltype(tag)>(gpu, y, h_n, x, w_ih, w_hh, b_ih, b_hh, h0, reverse, relu);
  });
}

void rnn_backward_cuda(NDArray& dx, NDArray& dh0, NDArray& dw_ih, NDArray& dw_hh, NDArray& db, const NDArray& gy,
                       const NDArray& ghn, const NDArray& x, const NDArray& h0, const NDArray& w_ih,
                       const NDArray& w_hh, const NDArray& y, bool reverse, bool relu) {
  on_gpu("rnn_layer (backward)", x, [&](const Gpu& gpu, auto tag) {
    rnn_backward<decltype(tag)>(gpu, dx, dh0, dw_ih, dw_hh, db, gy, ghn, x, h0, w_ih, w_hh, y, reverse, relu);
  });
}

}  // namespace loom::kernels
#endif  // LOOM_WITH_CUBLAS
