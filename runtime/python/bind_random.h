// lm._C.random_seed / random_state / random_set_state / random_reserve: the
// process's random stream (runtime/random/generator.h) behind lm.random.
#pragma once

#include <nanobind/nanobind.h>

namespace loom::python {

void bind_random(nanobind::module_& m);

}  // namespace loom::python
