// topk (opdefs/indexing/topk.yaml): the shape rule and the CPU kernel. Each
// line along the dim is ordered by a total order (value, then index), so
// the result is deterministic and equal on every device: partial_sort of
// the line's positions, then a gather of the first k. Lines run in
// parallel across OpenMP threads.
#include "generated/kernels/topk.h"

#include <algorithm>
#include <numeric>
#include <vector>

#include "microkernel/base/error.h"
#include "runtime/core/dtype_visit.h"
#include "runtime/kernels/indexing.h"
#include "runtime/kernels/topk_order.h"

namespace loom::kernels {

std::vector<Shape> infer_topk(const NDArray& x, std::int64_t k, std::int64_t dim, bool /*largest*/) {
  LOOM_CHECK_KIND(x.ndim() >= 1, ErrorKind::kValue, "topk: x must have at least one dim, got ", x.describe());
  const std::int64_t d = wrap_axis("topk", dim, x.shape());
  const std::int64_t n = x.shape()[static_cast<std::size_t>(d)];
  LOOM_CHECK_KIND(k >= 0 && k <= n, ErrorKind::kValue, "topk: k must be in [0, ", n, "] (the size of dim ", dim,
                  " of ", x.describe(), "), got ", k);
  Shape out = x.shape();
  out[static_cast<std::size_t>(d)] = k;
  return {out, out};
}

void topk_cpu(NDArray& values, NDArray& indices, const NDArray& x, std::int64_t k, std::int64_t dim, bool largest) {
  if (values.numel() == 0) return;
  const NDArray src = x.contiguous();
  const AxisSplit s = split_around(x.shape(), wrap_axis("topk", dim, x.shape()));
  visit_dtype(x.dtype(), "topk", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (!std::is_same_v<T, bool>) {
      const T* in = src.data<const T>();
      T* v = values.data<T>();
      std::int64_t* ix = indices.data<std::int64_t>();
#pragma omp parallel
      {
        std::vector<std::int64_t> order(static_cast<std::size_t>(s.axis));
#pragma omp for schedule(static)
        for (std::int64_t line = 0; line < s.outer * s.inner; ++line) {
          const std::int64_t o = line / s.inner, r = line % s.inner;
          const T* base = in + o * s.axis * s.inner + r;
          std::iota(order.begin(), order.end(), std::int64_t{0});
          const auto before = [&](std::int64_t a, std::int64_t b) {
            return topk_before(base[a * s.inner], a, base[b * s.inner], b, largest);
          };
          std::partial_sort(order.begin(), order.begin() + k, order.end(), before);
          for (std::int64_t j = 0; j < k; ++j) {
            const std::int64_t at = (o * k + j) * s.inner + r;
            v[at] = base[order[static_cast<std::size_t>(j)] * s.inner];
            ix[at] = order[static_cast<std::size_t>(j)];
          }
        }
      }
    }
  });
}

}  // namespace loom::kernels
