#include "runtime/random/random_fill.h"

#include "microkernel/base/error.h"
#include "runtime/core/dtype_visit.h"
#include "runtime/dispatch/launch.h"
#include "runtime/random/random_sample.h"

namespace loom::random {
namespace {

const char* name(Distribution d) {
  switch (d) {
    case Distribution::kUniform: return "uniform";
    case Distribution::kNormal: return "normal";
    case Distribution::kBernoulli: return "bernoulli";
    case Distribution::kRandint: return "randint";
  }
  return "random";
}

void check(const NDArray& out, Distribution dist, double a, double b) {
  LOOM_CHECK(out.is_contiguous(), "random.", name(dist), ": the output must be dense");
  const DType d = out.dtype();
  if (dist == Distribution::kUniform || dist == Distribution::kNormal) {
    LOOM_CHECK_KIND(d == DType::kFloat32 || d == DType::kFloat64, ErrorKind::kType, "random.", name(dist),
                    ": dtype must be float32 or float64, got ", dtype_name(d));
  }
  if (dist == Distribution::kRandint) {
    LOOM_CHECK_KIND(d == DType::kInt8 || d == DType::kUInt8 || d == DType::kInt32 || d == DType::kInt64,
                    ErrorKind::kType, "random.randint: dtype must be an integer type, got ", dtype_name(d));
    LOOM_CHECK(b > a, "random.randint: high (", b, ") must be greater than low (", a, ")");
  }
  if (dist == Distribution::kUniform) LOOM_CHECK(b >= a, "random.uniform: high (", b, ") is below low (", a, ")");
  if (dist == Distribution::kNormal) LOOM_CHECK(b >= 0, "random.normal: scale must be >= 0, got ", b);
  if (dist == Distribution::kBernoulli) LOOM_CHECK(a >= 0 && a <= 1, "random.bernoulli: p must be in [0, 1], got ", a);
}

}  // namespace

void fill(NDArray& out, Distribution dist, double a, double b, std::uint64_t seed, std::uint64_t offset) {
  check(out, dist, a, b);
  if (!out.device().is_cpu()) {
#if LOOM_WITH_CUDA
    if (should_run_kernels()) fill_cuda(out, dist, a, b, seed, offset);
    return;
#else
    LOOM_THROW(ErrorKind::kNotImplemented, "random.", name(dist), ": this loom was built without CUDA");
#endif
  }
  const NDArray target = out.without_autograd();
  launch("random", {}, {&target, 1}, [target, dist, a, b, seed, offset] {
    const std::int64_t n = target.numel();
    visit_dtype(target.dtype(), "random", [&](auto tag) {
      using T = typename decltype(tag)::type;
      T* p = target.data<T>();
#pragma omp parallel for schedule(static) if (n > 65536)
      for (std::int64_t i = 0; i < n; ++i) {
        p[i] = sample<T>(dist, a, b, philox_element(seed, offset, static_cast<std::uint64_t>(i)));
      }
    });
  });
}

}  // namespace loom::random
