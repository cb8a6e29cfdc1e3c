// cumsum (opdefs/reduce_scan.yaml): the shape rule and the CPU kernel, one
// sequential running sum per line along the dim (threads over lines), so
// results equal NumPy's sequential cumsum bit for bit in float64.
#include "generated/kernels/cumsum.h"
#include "microkernel/base/error.h"
#include "runtime/core/dtype_visit.h"
#include "runtime/kernels/indexing.h"

namespace loom::kernels {

Shape infer_cumsum(const NDArray& x, std::int64_t dim) {
  wrap_axis("cumsum", dim, x.shape());  // as NumPy: a 0-d array has no dim to scan
  return x.shape();
}

void cumsum_cpu(NDArray& out, const NDArray& x, std::int64_t dim) {
  const NDArray src = x.contiguous();
  const AxisSplit s = split_around(x.shape(), wrap_axis("cumsum", dim, x.shape()));
  visit_dtype(x.dtype(), "cumsum", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = src.data<const T>();
    T* o = out.data<T>();
#pragma omp parallel for schedule(static) if (s.outer * s.axis * s.inner > 65536)
    for (std::int64_t r = 0; r < s.outer; ++r) {
      for (std::int64_t k = 0; k < s.inner; ++k) {
        T acc = T(0);
        for (std::int64_t a = 0; a < s.axis; ++a) {
          const std::int64_t at = (r * s.axis + a) * s.inner + k;
          acc = static_cast<T>(acc + in[at]);
          o[at] = acc;
        }
      }
    }
  });
}

}  // namespace loom::kernels
