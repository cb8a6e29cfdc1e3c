// ctc_loss on the CPU (opdefs/nn/ctc.yaml): per sample (across threads),
// the alpha recursion over the blank-extended target l' (blank, l1, blank,
// l2, ..., blank) in log space; the backward adds the beta recursion and
// gathers alpha + beta per class. Infeasible samples (more labels, with
// their repeats, than frames) get an infinite loss and a zero gradient.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "generated/kernels/ctc_loss.h"
#include "microkernel/base/error.h"
#include "runtime/kernels/ctc_kernels.h"
#include "runtime/kernels/float_dtype.h"

namespace loom::kernels {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

inline double log_add(double a, double b) {
  if (a == kNegInf) return b;
  if (b == kNegInf) return a;
  const double m = std::max(a, b);
  return m + std::log1p(std::exp(-std::abs(a - b)));
}

// One sample: its extended target and the alpha table (frames x |l'|).
template <typename T>
struct Sample {
  std::vector<std::int64_t> ext;
  std::vector<double> alpha;

  Sample(const CtcShape& s, const T* lp, std::int64_t n, const std::int64_t* target, std::int64_t length,
         std::int64_t frames, std::int64_t blank) {
    ext.push_back(blank);
    for (std::int64_t i = 0; i < length; ++i) {
      ext.push_back(target[i]);
      ext.push_back(blank);
    }
    const std::int64_t L = static_cast<std::int64_t>(ext.size());
    alpha.assign(static_cast<std::size_t>(std::max<std::int64_t>(frames, 1) * L), kNegInf);
    if (frames == 0) return;
    auto at = [&](std::int64_t t, std::int64_t k) { return double(lp[(t * s.batch + n) * s.classes + k]); };
    alpha[0] = at(0, ext[0]);
    if (L > 1) alpha[1] = at(0, ext[1]);
    for (std::int64_t t = 1; t < frames; ++t) {
      for (std::int64_t j = 0; j < L; ++j) {
        double v = alpha[(t - 1) * L + j];
        if (j >= 1) v = log_add(v, alpha[(t - 1) * L + j - 1]);
        if (j >= 2 && ext[j] != blank && ext[j] != ext[j - 2]) v = log_add(v, alpha[(t - 1) * L + j - 2]);
        alpha[t * L + j] = v == kNegInf ? kNegInf : v + at(t, ext[j]);
      }
    }
  }

  double log_likelihood(std::int64_t frames) const {
    const std::int64_t L = static_cast<std::int64_t>(ext.size());
    if (frames == 0) return L == 1 ? 0.0 : kNegInf;
    const double last = alpha[(frames - 1) * L + L - 1];
    return L > 1 ? log_add(last, alpha[(frames - 1) * L + L - 2]) : last;
  }
};

// The shapes, and the lengths and labels against them (errors name the op and the values).
void check(const CtcShape& s, const NDArray& targets, const NDArray& input_lengths, const NDArray& target_lengths,
           std::int64_t blank) {
  const NDArray t = targets.contiguous(), il = input_lengths.contiguous(), tl = target_lengths.contiguous();
  check_ctc_lengths(s, t.data<const std::int64_t>(), il.data<const std::int64_t>(), tl.data<const std::int64_t>(),
                    blank);
}

}  // namespace

Shape infer_ctc_loss(const NDArray& log_probs, const NDArray& targets, const NDArray& input_lengths,
                     const NDArray& target_lengths, std::int64_t blank) {
  constexpr const char* kOp = "ctc_loss";
  LOOM_CHECK(log_probs.ndim() == 3, kOp, ": log_probs must be (frames, batch, classes), got ", log_probs.describe());
  const std::int64_t N = log_probs.shape()[1], C = log_probs.shape()[2];
  LOOM_CHECK(targets.ndim() == 2 && targets.shape()[0] == N, kOp, ": targets must be (batch, max_target_length) "
             "with batch ", N, ", got ", targets.describe());
  const Shape batch{N};
  LOOM_CHECK(input_lengths.shape() == batch && target_lengths.shape() == batch, kOp, ": input_lengths and "
             "target_lengths must be (", N, ",), got ", input_lengths.describe(), " and ", target_lengths.describe());
  LOOM_CHECK(blank >= 0 && blank < C, kOp, ": blank (", blank, ") must be a class in [0, ", C, ")");
  return batch;
}

void ctc_loss_cpu(NDArray& loss, const NDArray& log_probs_in, const NDArray& targets_in,
                  const NDArray& input_lengths, const NDArray& target_lengths, std::int64_t blank) {
  const CtcShape s = ctc_shape(log_probs_in, targets_in);
  check(s, targets_in, input_lengths, target_lengths, blank);
  const NDArray lp = log_probs_in.contiguous(), t = targets_in.contiguous(), il = input_lengths.contiguous(),
                tl = target_lengths.contiguous();
  by_dtype("ctc_loss", loss.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* out = loss.data<T>();
#pragma omp parallel for schedule(dynamic, 1) if (s.batch > 1)
    for (std::int64_t n = 0; n < s.batch; ++n) {
      const std::int64_t frames = il.data<const std::int64_t>()[n];
      const Sample<T> sample(s, lp.data<const T>(), n, t.data<const std::int64_t>() + n * s.max_target,
                             tl.data<const std::int64_t>()[n], frames, blank);
      out[n] = T(-sample.log_likelihood(frames));
    }
  });
}

void ctc_loss_backward_cpu(NDArray& dlp, const NDArray& grad_in, const NDArray& log_probs_in,
                           const NDArray& targets_in, const NDArray& input_lengths, const NDArray& target_lengths,
                           const NDArray& loss_in, std::int64_t blank) {
  const CtcShape s = ctc_shape(log_probs_in, targets_in);
  const NDArray lp = log_probs_in.contiguous(), t = targets_in.contiguous(), il = input_lengths.contiguous(),
                tl = target_lengths.contiguous(), g = grad_in.contiguous(), loss = loss_in.contiguous();
  by_dtype("ctc_loss (backward)", dlp.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* plp = lp.data<const T>();
    T* out = dlp.data<T>();
    std::fill(out, out + dlp.numel(), T(0));
#pragma omp parallel for schedule(dynamic, 1) if (s.batch > 1)
    for (std::int64_t n = 0; n < s.batch; ++n) {
      const std::int64_t frames = il.data<const std::int64_t>()[n];
      const double nll = double(loss.data<const T>()[n]);
      if (frames == 0 || !std::isfinite(nll)) continue;  // infeasible: zero gradient
      const Sample<T> sample(s, plp, n, t.data<const std::int64_t>() + n * s.max_target,
                             tl.data<const std::int64_t>()[n], frames, blank);
      const std::vector<std::int64_t>& ext = sample.ext;
      const std::int64_t L = static_cast<std::int64_t>(ext.size());
      auto at = [&](std::int64_t tt, std::int64_t k) { return double(plp[(tt * s.batch + n) * s.classes + k]); };
      // beta[t][j]: log-probability of the rest from (t, j), emission at t included
      std::vector<double> beta(static_cast<std::size_t>(frames * L), kNegInf);
      beta[(frames - 1) * L + L - 1] = at(frames - 1, ext[L - 1]);
      if (L > 1) beta[(frames - 1) * L + L - 2] = at(frames - 1, ext[L - 2]);
      for (std::int64_t tt = frames - 2; tt >= 0; --tt) {
        for (std::int64_t j = 0; j < L; ++j) {
          double v = beta[(tt + 1) * L + j];
          if (j + 1 < L) v = log_add(v, beta[(tt + 1) * L + j + 1]);
          if (j + 2 < L && ext[j] != blank && ext[j] != ext[j + 2]) v = log_add(v, beta[(tt + 1) * L + j + 2]);
          beta[tt * L + j] = v == kNegInf ? kNegInf : v + at(tt, ext[j]);
        }
      }
      // d loss / d lp[t, k] = -exp(logsumexp_{j: l'_j = k}(alpha + beta) + nll - lp[t, k])
      const double scale = double(g.data<const T>()[n]);
      std::vector<double> gathered(static_cast<std::size_t>(s.classes));
      for (std::int64_t tt = 0; tt < frames; ++tt) {
        std::fill(gathered.begin(), gathered.end(), kNegInf);
        for (std::int64_t j = 0; j < L; ++j) {
          const double ab = sample.alpha[tt * L + j] + beta[tt * L + j];
          if (ab != kNegInf) gathered[ext[j]] = log_add(gathered[ext[j]], ab);
        }
        T* row = out + (tt * s.batch + n) * s.classes;
        for (std::int64_t k = 0; k < s.classes; ++k) {
          if (gathered[k] != kNegInf) row[k] = T(-scale * std::exp(gathered[k] + nll - at(tt, k)));
        }
      }
    }
  });
}

}  // namespace loom::kernels
