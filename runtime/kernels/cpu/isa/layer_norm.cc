// layer_norm on the CPU (opdefs/nn/layer_norm.yaml): each row (an index of
// the dims before axis) is normalised over its `cols` contiguous elements,
// rows split across OpenMP threads; sums in double. The fused backward
// (layer_norm_kernels.h) computes the rows' dx in the same split and the
// weight and bias gradients (sums over rows) from per-thread partials.
// Built per ISA (isa_dispatch.h): the row loops are `omp simd` reductions,
// which the compiler may vectorise without -ffast-math.
#include <omp.h>

#include <cmath>
#include <vector>

#include "generated/kernels/layer_norm.h"
#include "microkernel/base/error.h"
#include "runtime/kernels/float_dtype.h"
#include "runtime/core/shape.h"
#include "runtime/kernels/indexing.h"
#include "runtime/kernels/cpu/isa_dispatch.h"
#include "runtime/kernels/layer_norm_kernels.h"

namespace loom::kernels {
inline namespace LOOM_CPU_ISA {
namespace {

template <typename T>
void forward(NDArray& out, NDArray& mean, NDArray& invstd, const NDArray& x_in, const NDArray& w_in,
             const NDArray& b_in, std::int64_t axis, double eps) {
  const NDArray x = x_in.contiguous();
  const NDArray wk = w_in.defined() ? w_in.contiguous() : NDArray(), bk = b_in.defined() ? b_in.contiguous() : NDArray();
  const T* w = wk.defined() ? wk.data<const T>() : nullptr;
  const T* b = bk.defined() ? bk.data<const T>() : nullptr;
  const RowSplit s = row_split(x.shape(), axis);
  const T* px = x.data<const T>();
  T* po = out.data<T>();
  T* pm = mean.data<T>();
  T* pi = invstd.data<T>();
#pragma omp parallel for schedule(static) if (x.numel() > 32768)
  for (std::int64_t r = 0; r < s.rows; ++r) {
    const T* row = px + r * s.cols;
    double total = 0;
#pragma omp simd reduction(+ : total)
    for (std::int64_t i = 0; i < s.cols; ++i) total += row[i];
    const double mu = total / double(s.cols);
    double sq = 0;
#pragma omp simd reduction(+ : sq)
    for (std::int64_t i = 0; i < s.cols; ++i) {
      const double d = double(row[i]) - mu;
      sq += d * d;
    }
    const double inv = 1.0 / std::sqrt(sq / double(s.cols) + eps);
    pm[r] = T(mu);
    pi[r] = T(inv);
    const T mu_t = T(mu), inv_t = T(inv);
    T* o = po + r * s.cols;
    if (w && b) {  // the common affine case without per-element branches
#pragma omp simd
      for (std::int64_t i = 0; i < s.cols; ++i) o[i] = (row[i] - mu_t) * inv_t * w[i] + b[i];
    } else {
#pragma omp simd
      for (std::int64_t i = 0; i < s.cols; ++i) {
        const T y = (row[i] - mu_t) * inv_t;
        o[i] = (w ? y * w[i] : y) + (b ? b[i] : T(0));
      }
    }
  }
}

// The head gradient as s.rows rows of s.cols, row r at ptr + r * stride.
// Dense rows are read in place whatever the distance between them: 0 when
// one row was broadcast to all (a stride-0 view, as sum's backward gives
// for y.sum().backward()); a broadcast single value becomes one row. Only
// other layouts are copied. Copying the broadcast head wrote and read back
// an array the size of x: 1.6 of 5.3 ms at (4096, 1024) on 2 cores.
template <typename T>
struct GradRows {
  const T* ptr = nullptr;
  std::int64_t stride = 0;
  NDArray keep;
  std::vector<T> row;
};

template <typename T>
GradRows<T> grad_rows(const NDArray& g, const RowSplit& s, std::int64_t axis) {
  const int nd = g.ndim();
  const int a = int(axis < 0 ? axis + nd : axis);
  const Shape& shape = g.shape();
  const Strides& strides = g.strides();
  bool dense = true, constant = true;  // within a row: row-major and stride 1, or stride 0 throughout
  std::int64_t expect = 1;
  for (int d = nd - 1; d >= a; --d) {
    if (shape[d] == 1) continue;
    dense = dense && strides[d] == expect;
    constant = constant && strides[d] == 0;
    expect *= shape[d];
  }
  // between rows: one stride for the flattened dims before axis, or none
  std::int64_t row_stride = -1, span = 1;
  bool uniform = true;
  for (int d = a - 1; d >= 0; --d) {
    if (shape[d] == 1) continue;
    if (row_stride < 0) row_stride = strides[d];
    uniform = uniform && strides[d] == row_stride * span;
    span *= shape[d];
  }
  if (row_stride < 0) row_stride = s.cols;  // a single row
  GradRows<T> out;
  if (uniform && dense) {
    out.ptr = g.data<const T>();
    out.stride = row_stride;
  } else if (uniform && constant && row_stride == 0) {
    out.row.assign(static_cast<std::size_t>(s.cols), g.data<const T>()[0]);
    out.ptr = out.row.data();
  } else {
    out.keep = g.contiguous();
    out.ptr = out.keep.template data<const T>();
    out.stride = s.cols;
  }
  return out;
}

template <typename T>
void backward(NDArray& dx, NDArray& dw, NDArray& db, const NDArray& g_in, const NDArray& x_in, const NDArray& w_in,
              const NDArray& mean_in, const NDArray& invstd_in, std::int64_t axis) {
  const NDArray x = x_in.contiguous(), m = mean_in.contiguous(), iv = invstd_in.contiguous();
  const NDArray wk = w_in.defined() ? w_in.contiguous() : NDArray();
  const T* w = wk.defined() ? wk.data<const T>() : nullptr;
  const RowSplit s = row_split(x.shape(), axis);
  const GradRows<T> g = grad_rows<T>(g_in, s, axis);
  const T* px = x.data<const T>();
  const T* pm = m.data<const T>();
  const T* pi = iv.data<const T>();
  T* pdx = dx.defined() ? dx.data<T>() : nullptr;
  const bool want_wb = dw.defined() || db.defined();
  const int threads = omp_get_max_threads();
  // per-thread column sums of g * xhat and g, added up at the end
  std::vector<double> partial(want_wb ? static_cast<std::size_t>(threads * 2 * s.cols) : 0, 0.0);
  // The rows add into T-typed column sums (vectorised at T's width), which
  // every kFlushRows rows go into the double ones: few enough terms per
  // T sum that float32 keeps its precision, without a double conversion
  // per element.
  constexpr std::int64_t kFlushRows = 32;
#pragma omp parallel if (x.numel() > 32768)
  {
    double* sums = want_wb ? partial.data() + omp_get_thread_num() * 2 * s.cols : nullptr;
    std::vector<T> block(want_wb ? static_cast<std::size_t>(2 * s.cols) : 0, T(0));
    T* acc = want_wb ? block.data() : nullptr;
    std::int64_t pending = 0;  // rows in `block` not yet added into `sums`
    auto flush = [&] {
      for (std::int64_t i = 0; i < 2 * s.cols; ++i) {
        sums[i] += double(acc[i]);
        acc[i] = T(0);
      }
      pending = 0;
    };
#pragma omp for schedule(static)
    for (std::int64_t r = 0; r < s.rows; ++r) {
      const T* gr = g.ptr + r * g.stride;
      const T* xr = px + r * s.cols;
      const double mu = pm[r], inv = pi[r];
      const T mu_t = T(mu), inv_t = T(inv);
      double sum_gw = 0, sum_gwx = 0;  // sums of g*w and g*w*xhat over the row
      if (acc) {  // one pass: the row sums and the column partials of dweight, dbias
        T* acc_w = acc;
        T* acc_b = acc + s.cols;
#pragma omp simd reduction(+ : sum_gw, sum_gwx)
        for (std::int64_t i = 0; i < s.cols; ++i) {
          const T xhat = (xr[i] - mu_t) * inv_t;
          const T gw = w ? gr[i] * w[i] : gr[i];
          sum_gw += gw;
          sum_gwx += gw * xhat;
          acc_w[i] += gr[i] * xhat;
          acc_b[i] += gr[i];
        }
        if (++pending == kFlushRows) flush();
      } else {
#pragma omp simd reduction(+ : sum_gw, sum_gwx)
        for (std::int64_t i = 0; i < s.cols; ++i) {
          const T xhat = (xr[i] - mu_t) * inv_t;
          const T gw = w ? gr[i] * w[i] : gr[i];
          sum_gw += gw;
          sum_gwx += gw * xhat;
        }
      }
      if (!pdx) continue;
      const T mean_gw = T(sum_gw / double(s.cols)), mean_gwx = T(sum_gwx / double(s.cols));
      T* o = pdx + r * s.cols;
#pragma omp simd
      for (std::int64_t i = 0; i < s.cols; ++i) {
        const T xhat = (xr[i] - mu_t) * inv_t;
        const T gw = w ? gr[i] * w[i] : gr[i];
        o[i] = inv_t * (gw - mean_gw - xhat * mean_gwx);
      }
    }
    if (acc && pending > 0) flush();  // this thread's last rows
  }
  if (!want_wb) return;
  T* pdw = dw.defined() ? dw.data<T>() : nullptr;
  T* pdb = db.defined() ? db.data<T>() : nullptr;
  for (std::int64_t i = 0; i < s.cols; ++i) {
    double sw = 0, sb = 0;
    for (int t = 0; t < threads; ++t) {
      sw += partial[static_cast<std::size_t>(t * 2 * s.cols + i)];
      sb += partial[static_cast<std::size_t>(t * 2 * s.cols + s.cols + i)];
    }
    if (pdw) pdw[i] = T(sw);
    if (pdb) pdb[i] = T(sb);
  }
}

}  // namespace

void LOOM_ISA_NAME(layer_norm_forward)(NDArray& out, NDArray& mean, NDArray& invstd, const NDArray& x,
                                       const NDArray& weight, const NDArray& bias, std::int64_t axis, double eps) {
  by_dtype("layer_norm", out.dtype(),
           [&](auto tag) { forward<decltype(tag)>(out, mean, invstd, x, weight, bias, axis, eps); });
}

void LOOM_ISA_NAME(layer_norm_backward)(NDArray& dx, NDArray& dweight, NDArray& dbias, const NDArray& grad,
                                        const NDArray& x, const NDArray& weight, const NDArray& mean,
                                        const NDArray& invstd, std::int64_t axis) {
  by_dtype("layer_norm (backward)", x.dtype(),
           [&](auto tag) { backward<decltype(tag)>(dx, dweight, dbias, grad, x, weight, mean, invstd, axis); });
}

}  // inline namespace LOOM_CPU_ISA

#if !defined(LOOM_CPU_ISA_BUILD)
LOOM_ISA_DECLARE(layer_norm_forward, (NDArray&, NDArray&, NDArray&, const NDArray&, const NDArray&, const NDArray&,
                                      std::int64_t, double))
LOOM_ISA_DECLARE(layer_norm_backward, (NDArray&, NDArray&, NDArray&, const NDArray&, const NDArray&, const NDArray&,
                                       const NDArray&, const NDArray&, std::int64_t))

RowSplit row_split(const Shape& shape, std::int64_t axis) {
  const std::int64_t a = wrap_axis("layer_norm", axis, shape);
  RowSplit s{1, 1};
  for (std::int64_t d = 0; d < static_cast<std::int64_t>(shape.size()); ++d) (d < a ? s.rows : s.cols) *= shape[d];
  return s;
}

std::vector<Shape> infer_layer_norm(const NDArray& x, const NDArray& weight, const NDArray& bias, std::int64_t axis,
                                    double eps) {
  constexpr const char* kOp = "layer_norm";
  LOOM_CHECK(x.ndim() >= 1, kOp, ": x must have at least one dim, got ", x.describe());
  const std::int64_t a = wrap_axis(kOp, axis, x.shape());
  const Shape normalised(x.shape().begin() + a, x.shape().end());
  for (const auto& [name, p] : {std::pair<const char*, const NDArray*>{"weight", &weight}, {"bias", &bias}}) {
    LOOM_CHECK(!p->defined() || p->shape() == normalised, kOp, ": ", name, " must have x's shape from axis ", axis,
               " on, ", shape_str(normalised), ", got ", p->describe(), " for x ", x.describe());
  }
  LOOM_CHECK(eps > 0, kOp, ": eps must be > 0, got ", eps);
  const Shape rows(x.shape().begin(), x.shape().begin() + a);
  return {x.shape(), rows, rows};
}

void layer_norm_cpu(NDArray& out, NDArray& mean, NDArray& invstd, const NDArray& x, const NDArray& weight,
                    const NDArray& bias, std::int64_t axis, double eps) {
  if (x.numel() == 0) return;
  LOOM_ISA_CALL(layer_norm_forward, out, mean, invstd, x, weight, bias, axis, eps);
}

void layer_norm_backward_cpu(NDArray& dx, NDArray& dweight, NDArray& dbias, const NDArray& grad, const NDArray& x,
                             const NDArray& weight, const NDArray& mean, const NDArray& invstd, std::int64_t axis) {
  LOOM_ISA_CALL(layer_norm_backward, dx, dweight, dbias, grad, x, weight, mean, invstd, axis);
}
#endif  // !LOOM_CPU_ISA_BUILD

}  // namespace loom::kernels
