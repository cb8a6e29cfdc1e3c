// argmax / argmin on the CPU (opdefs/argreduce.yaml): one pass along `dim`
// per output element, outputs in parallel. Ties keep the first position and
// NaN beats every number (NumPy's rules).
#include <cmath>
#include <cstdint>

#include "generated/kernels/argmax.h"
#include "generated/kernels/argmin.h"
#include "microkernel/base/error.h"
#include "runtime/core/dtype_visit.h"

namespace loom::kernels {
namespace {

int normalize_dim(const char* op, std::int64_t dim, int ndim) {
  const int rank = ndim == 0 ? 1 : ndim;  // a 0-d array behaves as one element along dim 0/-1
  LOOM_CHECK_KIND(dim >= -rank && dim < rank, ErrorKind::kIndex, op, ": dim ", dim,
                  " is out of range for an array with ", ndim, " dims");
  return static_cast<int>(dim < 0 ? dim + rank : dim);
}

template <typename T>
bool is_nan(T v) {
  if constexpr (std::is_floating_point_v<T>) {
    return std::isnan(v);
  } else {
    return false;
  }
}

template <bool kMax>
void argreduce(const char* op, NDArray& out, const NDArray& x_in, std::int64_t dim) {
  if (x_in.ndim() == 0) {
    *out.data<std::int64_t>() = 0;
    return;
  }
  const int d = normalize_dim(op, dim, x_in.ndim());
  const NDArray x = x_in.contiguous();
  std::int64_t outer = 1, inner = 1;
  for (int i = 0; i < d; ++i) outer *= x.shape()[i];
  for (int i = d + 1; i < x.ndim(); ++i) inner *= x.shape()[i];
  const std::int64_t n = x.shape()[d];
  std::int64_t* result = out.data<std::int64_t>();
  visit_dtype(x.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* p = x.data<const T>();
    const std::int64_t total = outer * inner;
#pragma omp parallel for schedule(static) if (total * n > 32768)
    for (std::int64_t o = 0; o < total; ++o) {
      const std::int64_t a = o / inner, b = o % inner;
      const T* row = p + a * n * inner + b;
      std::int64_t best = 0;
      T best_value = row[0];
      for (std::int64_t k = 1; k < n && !is_nan(best_value); ++k) {
        const T v = row[k * inner];
        if (is_nan(v) || (kMax ? v > best_value : v < best_value)) {
          best = k;
          best_value = v;
        }
      }
      result[o] = best;
    }
  });
}

Shape infer_argreduce(const char* op, const NDArray& x, std::int64_t dim, bool keepdim) {
  const int d = normalize_dim(op, dim, x.ndim());
  if (x.ndim() == 0) return {};
  LOOM_CHECK(x.shape()[d] > 0, op, ": dim ", dim, " of ", x.describe(),
             " is empty: an empty sequence has no extreme");
  Shape out = x.shape();
  if (keepdim) {
    out[d] = 1;
  } else {
    out.erase(out.begin() + d);
  }
  return out;
}

}  // namespace

Shape infer_argmax(const NDArray& x, std::int64_t dim, bool keepdim) { return infer_argreduce("argmax", x, dim, keepdim); }
Shape infer_argmin(const NDArray& x, std::int64_t dim, bool keepdim) { return infer_argreduce("argmin", x, dim, keepdim); }

void argmax_cpu(NDArray& out, const NDArray& x, std::int64_t dim, bool) { argreduce<true>("argmax", out, x, dim); }
void argmin_cpu(NDArray& out, const NDArray& x, std::int64_t dim, bool) { argreduce<false>("argmin", out, x, dim); }

}  // namespace loom::kernels
