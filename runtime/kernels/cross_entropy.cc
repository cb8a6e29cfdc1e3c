// softmax_cross_entropy (opdefs/nn/cross_entropy.yaml): the shape rule and
// the CPU kernel. One pass per line along the dim: the max, the sum of
// exp(x - max), then the probabilities and -log_softmax at the label. Lines
// run across OpenMP threads; labels are checked before anything is written.
#include "generated/kernels/softmax_cross_entropy.h"

#include <cmath>

#include "microkernel/base/error.h"
#include "runtime/core/dtype_visit.h"
#include "runtime/kernels/cross_entropy_loss.h"
#include "runtime/kernels/indexing.h"

namespace loom::kernels {

std::vector<Shape> infer_softmax_cross_entropy(const NDArray& logits, const NDArray& label, std::int64_t dim,
                                               std::int64_t ignore_index, double label_smoothing) {
  const std::int64_t d = wrap_axis("softmax_cross_entropy", dim, logits.shape());
  Shape want = logits.shape();
  want.erase(want.begin() + d);
  LOOM_CHECK_KIND(label.shape() == want, ErrorKind::kValue, "softmax_cross_entropy: label must have logits' shape "
                  "without dim ", dim, ", ", shape_str(want), ", got ", label.describe(), " for logits ",
                  logits.describe());
  LOOM_CHECK(label_smoothing >= 0 && label_smoothing <= 1, "softmax_cross_entropy: label_smoothing must be in "
             "[0, 1], got ", label_smoothing);
  return {want, logits.shape()};
}

void softmax_cross_entropy_cpu(NDArray& loss, NDArray& prob, const NDArray& logits, const NDArray& label,
                               std::int64_t dim, std::int64_t ignore_index, double label_smoothing) {
  const std::int64_t d = wrap_axis("softmax_cross_entropy", dim, logits.shape());
  const AxisSplit s = split_around(logits.shape(), d);
  const NDArray x = logits.contiguous(), y = label.contiguous();
  const std::int64_t* labels = y.data<const std::int64_t>();
  for (std::int64_t i = 0; i < y.numel(); ++i) {
    if (labels[i] == ignore_index) continue;
    if (labels[i] < 0 || labels[i] >= s.axis) throw_bad_index("softmax_cross_entropy", labels[i], d, s.axis);
  }
  visit_dtype(x.dtype(), "softmax_cross_entropy", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_floating_point_v<T>) {
      const T* in = x.data<const T>();
      T* p = prob.data<T>();
      T* l = loss.data<T>();
#pragma omp parallel for schedule(static) if (x.numel() > 65536)
      for (std::int64_t line = 0; line < s.outer * s.inner; ++line) {
        const std::int64_t o = line / s.inner, r = line % s.inner;
        const std::int64_t base = o * s.axis * s.inner + r;
        T top = in[base];
        for (std::int64_t a = 1; a < s.axis; ++a) top = std::fmax(top, in[base + a * s.inner]);
        T total = 0, shifted_sum = 0;
        for (std::int64_t a = 0; a < s.axis; ++a) {
          const T e = std::exp(in[base + a * s.inner] - top);
          p[base + a * s.inner] = e;
          total += e;
          shifted_sum += in[base + a * s.inner] - top;
        }
        const T inv = T(1) / total;
        for (std::int64_t a = 0; a < s.axis; ++a) p[base + a * s.inner] *= inv;
        // -log softmax at a class c: log(total) - (x[c] - max)
        const T lse = std::log(total);
        if (labels[line] == ignore_index) {
          l[line] = T(0);
        } else {
          const T picked = lse - (in[base + labels[line] * s.inner] - top);
          const T uniform = lse - shifted_sum / T(s.axis);
          l[line] = smoothed_nll(picked, uniform, label_smoothing);
        }
      }
    } else {
      LOOM_THROW(ErrorKind::kType, "softmax_cross_entropy: logits must be floating, got ", dtype_name(x.dtype()));
    }
  });
}

}  // namespace loom::kernels
