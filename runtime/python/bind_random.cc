#include "runtime/python/bind_random.h"

#include <nanobind/stl/string.h>

#include <string>

#include "microkernel/base/error.h"
#include "runtime/random/random_fill.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace loom::python {

void bind_random(nb::module_& m) {
  m.def(
      "random_fill",
      [](NDArray& out, const std::string& dist, double a, double b, std::uint64_t seed, std::uint64_t offset) {
        random::Distribution d;
        if (dist == "uniform") d = random::Distribution::kUniform;
        else if (dist == "normal") d = random::Distribution::kNormal;
        else if (dist == "bernoulli") d = random::Distribution::kBernoulli;
        else if (dist == "randint") d = random::Distribution::kRandint;
        else LOOM_THROW(ErrorKind::kValue, "random_fill: unknown distribution '", dist, "'");
        nb::gil_scoped_release release;
        random::fill(out, d, a, b, seed, offset);
      },
      "out"_a, "dist"_a, "a"_a, "b"_a, "seed"_a, "offset"_a,
      "Fills a dense array from the Philox4x32-10 stream (seed, offset): element i takes block offset + i.");
}

}  // namespace loom::python
