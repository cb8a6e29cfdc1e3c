// batch_norm on the CPU (opdefs/nn/batch_norm.yaml): the shape rule, the
// forward kernel and the fused backward (batch_norm_kernels.h). Channels
// are split across OpenMP threads; each channel's values are `batch` runs
// of `rest` contiguous elements. Sums accumulate in blocks of at most 4096
// values, the blocks in double, so a float32 channel of millions of values
// keeps its mean to float32 precision.
// Built per ISA (isa_dispatch.h): the run loops are `omp simd` reductions.
#include <algorithm>
#include <cmath>

#include "generated/kernels/batch_norm.h"
#include "microkernel/base/error.h"
#include "runtime/kernels/float_dtype.h"
#include "runtime/core/shape.h"
#include "runtime/kernels/batch_norm_kernels.h"
#include "runtime/kernels/cpu/isa_dispatch.h"

namespace loom::kernels {
inline namespace LOOM_CPU_ISA {
namespace {

// Calls fn(pointer to run, length) for each of channel c's `batch` runs.
template <typename T, typename Fn>
inline void for_runs(T* base, const ChannelSplit& s, std::int64_t c, Fn&& fn) {
  for (std::int64_t n = 0; n < s.batch; ++n) fn(base + (n * s.channels + c) * s.rest, s.rest);
}

template <typename T>
const T* data_or_null(const NDArray& a, NDArray& keep) {
  if (!a.defined()) return nullptr;
  keep = a.contiguous();
  return keep.data<const T>();
}

template <typename T>
void forward(NDArray& out, NDArray& mean_out, NDArray& invstd_out, const NDArray& x_in, const NDArray& weight,
             const NDArray& bias, const NDArray& running_mean, const NDArray& running_var, bool training,
             double momentum, double eps, bool relu) {
  const NDArray x = x_in.contiguous();
  const ChannelSplit s = channel_split(x.shape());
  NDArray wk, bk;
  const T* w = data_or_null<T>(weight, wk);
  const T* b = data_or_null<T>(bias, bk);
  T* rm = running_mean.defined() ? running_mean.data<T>() : nullptr;
  T* rv = running_var.defined() ? running_var.data<T>() : nullptr;
  const T* px = x.data<const T>();
  T* po = out.data<T>();
  T* pm = mean_out.data<T>();
  T* pi = invstd_out.data<T>();
  const std::int64_t m = s.per_channel();
#pragma omp parallel for schedule(dynamic, 1) if (x.numel() > 32768)
  for (std::int64_t c = 0; c < s.channels; ++c) {
    double mu, var;
    if (training) {
      // One pass over x for both moments, of x - shift with the channel's
      // first value as the shift: the shifted mean is then of the order of
      // the spread, so sum(d^2) - sum(d)^2 / m loses no more than a second
      // pass around the exact mean would (Chan et al.'s shifted data
      // algorithm), and x is read twice per step instead of three times.
      const T shift = px[c * s.rest];
      double total = 0, sq_total = 0;
      for_runs(px, s, c, [&](const T* p, std::int64_t len) {
        // Blocks of at most 4096 values summed in T across the vector
        // lanes, the blocks in double: T's rounding spans a few hundred
        // values per lane, whatever the channel's size.
        for (std::int64_t b0 = 0; b0 < len; b0 += 4096) {
          const std::int64_t b1 = std::min(len, b0 + 4096);
          T part = 0, part_sq = 0;
#pragma omp simd reduction(+ : part, part_sq)
          for (std::int64_t i = b0; i < b1; ++i) {
            const T d = p[i] - shift;
            part += d;
            part_sq += d * d;
          }
          total += double(part);
          sq_total += double(part_sq);
        }
      });
      mu = double(shift) + total / double(m);
      const double sq = std::max(sq_total - total * total / double(m), 0.0);
      var = sq / double(m);
      if (rm != nullptr) rm[c] = T((1 - momentum) * double(rm[c]) + momentum * mu);
      if (rv != nullptr) rv[c] = T((1 - momentum) * double(rv[c]) + momentum * sq / double(m - 1));
    } else {
      mu = double(rm[c]);
      var = double(rv[c]);
    }
    const double inv = 1.0 / std::sqrt(var + eps);
    pm[c] = T(mu);
    pi[c] = T(inv);
    // y = x * scale + shift
    const T scale = T(inv * (w ? double(w[c]) : 1.0));
    const T shift = T((b ? double(b[c]) : 0.0) - mu * inv * (w ? double(w[c]) : 1.0));
    for (std::int64_t n = 0; n < s.batch; ++n) {
      const T* p = px + (n * s.channels + c) * s.rest;
      T* o = po + (n * s.channels + c) * s.rest;
      if (relu) {  // relu's where(y > 0, y, 0): NaN gives 0, as the op does
#pragma omp simd
        for (std::int64_t i = 0; i < s.rest; ++i) {
          const T y = p[i] * scale + shift;
          o[i] = y > T(0) ? y : T(0);
        }
      } else {
#pragma omp simd
        for (std::int64_t i = 0; i < s.rest; ++i) o[i] = p[i] * scale + shift;
      }
    }
  }
}

// The forward's output (before a fused ReLU) from x and the saved
// statistics: x * scale + shift, with scale and shift as the forward's
// except that mean and invstd come rounded to T, which can flip the mask
// of a value within rounding of 0, where ReLU's derivative is a choice.
template <typename T>
struct ReluMask {
  T scale, shift;
  bool passes(T x) const { return x * scale + shift > T(0); }
};

// One channel's backward; kRelu masks the incoming gradient with `mask`.
template <typename T, bool kRelu>
void backward_channel(const ChannelSplit& s, std::int64_t c, const T* pg, const T* px, T* pdx, T* pdw, T* pdb,
                      double mu, double inv, double wc, bool training, const ReluMask<T>& mask) {
  const double m = double(s.per_channel());
  double sum_g = 0, sum_gx = 0;  // sum(g), sum(g * (x - mean))
  const T mu_run = T(mu);
  for (std::int64_t n = 0; n < s.batch; ++n) {
    const std::int64_t at = (n * s.channels + c) * s.rest;
    for (std::int64_t b0 = 0; b0 < s.rest; b0 += 4096) {  // blocks in T, added in double (as the forward)
      const std::int64_t b1 = std::min(s.rest, b0 + 4096);
      T run_g = 0, run_gx = 0;
#pragma omp simd reduction(+ : run_g, run_gx)
      for (std::int64_t i = b0; i < b1; ++i) {
        const T xi = px[at + i];
        const T gi = !kRelu || mask.passes(xi) ? pg[at + i] : T(0);
        run_g += gi;
        run_gx += gi * (xi - mu_run);
      }
      sum_g += double(run_g);
      sum_gx += double(run_gx);
    }
  }
  if (pdb) pdb[c] = T(sum_g);
  if (pdw) pdw[c] = T(sum_gx * inv);
  if (!pdx) return;
  // dx = w * inv * (g - mean(g) - xhat * mean(g * xhat)) in training; w * inv * g otherwise
  const T a = T(wc * inv);
  const T g_mean = T(training ? sum_g / m : 0.0);
  const T x_coef = T(training ? sum_gx * inv * inv / m : 0.0);  // times (x - mean)
  const T mu_t = T(mu);
  for (std::int64_t n = 0; n < s.batch; ++n) {
    const std::int64_t at = (n * s.channels + c) * s.rest;
#pragma omp simd
    for (std::int64_t i = 0; i < s.rest; ++i) {
      const T xi = px[at + i];
      const T gi = !kRelu || mask.passes(xi) ? pg[at + i] : T(0);
      pdx[at + i] = a * (gi - g_mean - (xi - mu_t) * x_coef);
    }
  }
}

template <typename T>
void backward(NDArray& dx, NDArray& dweight, NDArray& dbias, const NDArray& grad_in, const NDArray& x_in,
              const NDArray& weight, const NDArray& bias, const NDArray& mean, const NDArray& invstd, bool training,
              bool relu) {
  const NDArray g = grad_in.contiguous(), x = x_in.contiguous();
  const ChannelSplit s = channel_split(x.shape());
  NDArray wk, bk, mk, ik;
  const T* w = data_or_null<T>(weight, wk);
  const T* b = relu ? data_or_null<T>(bias, bk) : nullptr;
  const T* pm = data_or_null<T>(mean, mk);
  const T* pi = data_or_null<T>(invstd, ik);
  const T* pg = g.data<const T>();
  const T* px = x.data<const T>();
  T* pdx = dx.defined() ? dx.data<T>() : nullptr;
  T* pdw = dweight.defined() ? dweight.data<T>() : nullptr;
  T* pdb = dbias.defined() ? dbias.data<T>() : nullptr;
#pragma omp parallel for schedule(dynamic, 1) if (x.numel() > 32768)
  for (std::int64_t c = 0; c < s.channels; ++c) {
    const double mu = pm[c], inv = pi[c], wc = w ? double(w[c]) : 1.0;
    const ReluMask<T> mask{T(inv * wc), T((b ? double(b[c]) : 0.0) - mu * inv * wc)};
    if (relu) {
      backward_channel<T, true>(s, c, pg, px, pdx, pdw, pdb, mu, inv, wc, training, mask);
    } else {
      backward_channel<T, false>(s, c, pg, px, pdx, pdw, pdb, mu, inv, wc, training, mask);
    }
  }
}

}  // namespace

void LOOM_ISA_NAME(batch_norm_forward)(NDArray& out, NDArray& mean, NDArray& invstd, const NDArray& x,
                                       const NDArray& weight, const NDArray& bias, const NDArray& running_mean,
                                       const NDArray& running_var, bool training, double momentum, double eps,
                                       bool relu) {
  by_dtype("batch_norm", out.dtype(), [&](auto tag) {
    forward<decltype(tag)>(out, mean, invstd, x, weight, bias, running_mean, running_var, training, momentum, eps,
                           relu);
  });
}

void LOOM_ISA_NAME(batch_norm_backward)(NDArray& dx, NDArray& dweight, NDArray& dbias, const NDArray& grad,
                                        const NDArray& x, const NDArray& weight, const NDArray& bias,
                                        const NDArray& mean, const NDArray& invstd, bool training, bool relu) {
  by_dtype("batch_norm (backward)", x.dtype(), [&](auto tag) {
    backward<decltype(tag)>(dx, dweight, dbias, grad, x, weight, bias, mean, invstd, training, relu);
  });
}

}  // inline namespace LOOM_CPU_ISA

#if !defined(LOOM_CPU_ISA_BUILD)
LOOM_ISA_DECLARE(batch_norm_forward, (NDArray&, NDArray&, NDArray&, const NDArray&, const NDArray&, const NDArray&,
                                      const NDArray&, const NDArray&, bool, double, double, bool))
LOOM_ISA_DECLARE(batch_norm_backward, (NDArray&, NDArray&, NDArray&, const NDArray&, const NDArray&, const NDArray&,
                                       const NDArray&, const NDArray&, const NDArray&, bool, bool))

ChannelSplit channel_split(const Shape& s) {
  std::int64_t rest = 1;
  for (std::size_t d = 2; d < s.size(); ++d) rest *= s[d];
  return {s[0], s[1], rest};
}

std::vector<Shape> infer_batch_norm(const NDArray& x, const NDArray& weight, const NDArray& bias,
                                    const NDArray& running_mean, const NDArray& running_var, bool training,
                                    double momentum, double eps, bool relu) {
  constexpr const char* kOp = "batch_norm";
  LOOM_CHECK(x.ndim() >= 2, kOp, ": x must be (batch, channels, ...), got ", x.describe());
  const std::int64_t c = x.shape()[1];
  const std::pair<const char*, const NDArray*> params[] = {
      {"weight", &weight}, {"bias", &bias}, {"running_mean", &running_mean}, {"running_var", &running_var}};
  for (const auto& [name, a] : params) {
    LOOM_CHECK(!a->defined() || (a->ndim() == 1 && a->shape()[0] == c), kOp, ": ", name, " must be (channels,) = (",
               c, ",) for x ", x.describe(), ", got ", a->describe());
  }
  LOOM_CHECK(running_mean.defined() == running_var.defined(), kOp,
             ": give both running_mean and running_var, or neither");
  LOOM_CHECK(training || running_mean.defined(), kOp, ": training=False normalises with running_mean and "
             "running_var, which are not given");
  LOOM_CHECK(eps > 0 && momentum >= 0 && momentum <= 1, kOp, ": eps must be > 0 and momentum in [0, 1], got eps ",
             eps, ", momentum ", momentum);
  const ChannelSplit s = channel_split(x.shape());
  LOOM_CHECK(!training || s.per_channel() != 1, kOp, ": training needs more than one value per channel, got x ",
             x.describe());
  return {x.shape(), {c}, {c}};
}

void batch_norm_cpu(NDArray& out, NDArray& mean, NDArray& invstd, const NDArray& x, const NDArray& weight,
                    const NDArray& bias, const NDArray& running_mean, const NDArray& running_var, bool training,
                    double momentum, double eps, bool relu) {
  if (x.numel() == 0) {  // no values: nothing to normalise, statistics unknown
    by_dtype("batch_norm", out.dtype(), [&](auto tag) {
      using T = decltype(tag);
      std::fill(mean.data<T>(), mean.data<T>() + mean.numel(), T(NAN));
      std::fill(invstd.data<T>(), invstd.data<T>() + invstd.numel(), T(NAN));
    });
    return;
  }
  LOOM_ISA_CALL(batch_norm_forward, out, mean, invstd, x, weight, bias, running_mean, running_var, training, momentum,
                eps, relu);
}

void batch_norm_backward_cpu(NDArray& dx, NDArray& dweight, NDArray& dbias, const NDArray& grad, const NDArray& x,
                             const NDArray& weight, const NDArray& bias, const NDArray& mean, const NDArray& invstd,
                             bool training, bool relu) {
  LOOM_ISA_CALL(batch_norm_backward, dx, dweight, dbias, grad, x, weight, bias, mean, invstd, training, relu);
}
#endif  // !LOOM_CPU_ISA_BUILD

}  // namespace loom::kernels
