// lm._C.build_features(): which optional parts this build of libloom was
// compiled with, and which CPU kernel widths the running CPU can use
// (loom/runtime.py adds the ones the comm layer reports, and prints them).
#pragma once

#include <nanobind/nanobind.h>

namespace loom::python {

void bind_build_features(nanobind::module_& m);

}  // namespace loom::python
