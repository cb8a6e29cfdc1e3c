// Adds autograd to the NDArray class and module that module.cc creates.
#pragma once

#include <nanobind/nanobind.h>

#include "runtime/ndarray/ndarray.h"

namespace loom::python {

void bind_autograd(nanobind::module_& m, nanobind::class_<NDArray>& cls);

}  // namespace loom::python
