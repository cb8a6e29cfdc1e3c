// lm.profiler: the engine profiler (microkernel/engine/profiler.h) from Python.
#pragma once

#include <nanobind/nanobind.h>

namespace loom::python {

void bind_profiler(nanobind::module_& m);

}  // namespace loom::python
