// lm._C.random_fill: the Philox fill behind lm.random (runtime/random/).
#pragma once

#include <nanobind/nanobind.h>

namespace loom::python {

void bind_random(nanobind::module_& m);

}  // namespace loom::python
