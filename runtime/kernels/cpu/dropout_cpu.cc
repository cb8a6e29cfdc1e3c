// dropout_seeded on the CPU (opdefs/nn/dropout.yaml): one Philox block per
// element (runtime/kernels/dropout_mask.h), elements split across threads.
#include <cmath>

#include "generated/kernels/dropout_seeded.h"
#include "microkernel/base/error.h"
#include "runtime/kernels/dropout_mask.h"

namespace loom::kernels {

std::vector<Shape> infer_dropout_seeded(const NDArray& x, double p, std::int64_t seed, std::int64_t offset) {
  LOOM_CHECK(p >= 0.0 && p < 1.0, "dropout: p must be in [0, 1), got ", p);
  LOOM_CHECK(offset >= 0, "dropout: offset must be >= 0, got ", offset);
  return {x.shape(), x.shape()};
}

void dropout_seeded_cpu(NDArray& out, NDArray& keep_out, const NDArray& x_in, double p, std::int64_t seed,
                        std::int64_t offset) {
  const NDArray x = x_in.contiguous();
  const std::int64_t n = x.numel();
  const double keep = 1.0 - p;
  auto run = [&](auto tag) {
    using T = decltype(tag);
    const T* in = x.data<const T>();
    T* o = out.data<T>();
    T* m = keep_out.data<T>();
    const T scale = T(1.0 / keep);
    const auto s = static_cast<std::uint64_t>(seed), off = static_cast<std::uint64_t>(offset);
#pragma omp parallel for schedule(static) if (n > 32768)
    for (std::int64_t i = 0; i < n; ++i) {
      m[i] = dropout_scale<T>(s, off, i, keep, scale);
      o[i] = in[i] * m[i];
    }
  };
  switch (out.dtype()) {
    case DType::kFloat32: return run(float{});
    case DType::kFloat64: return run(double{});
    default: LOOM_THROW(ErrorKind::kType, "dropout: no CPU kernel for dtype ", dtype_name(out.dtype()));
  }
}

}  // namespace loom::kernels
