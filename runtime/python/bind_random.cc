#include "runtime/python/bind_random.h"

#include <nanobind/stl/pair.h>

#include "runtime/random/generator.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace loom::python {

void bind_random(nb::module_& m) {
  m.def("random_seed", &random::seed, "seed"_a, "Restarts the random stream at `seed`.");
  m.def("random_state", [] {
    const random::StreamPosition at = random::state();
    return std::make_pair(at.seed, at.offset);
  }, "(seed, offset): where the next random draw starts.");
  m.def("random_set_state", [](std::uint64_t seed, std::uint64_t offset) { random::set_state({seed, offset}); },
        "seed"_a, "offset"_a, "Resumes the random stream at (seed, offset).");
  m.def("random_reserve", [](std::uint64_t count) {
    const random::StreamPosition at = random::reserve(count);
    return std::make_pair(at.seed, at.offset);
  }, "count"_a, "(seed, offset) for `count` draws, the stream advanced past them (for kernels that draw "
                "their own: dropout).");
}

}  // namespace loom::python
