// DLPack export (NDArray.__dlpack__) and import (from_dlpack) for module.cc.
#pragma once

#include <nanobind/nanobind.h>

#include "runtime/ndarray/ndarray.h"

namespace loom::python {

void bind_dlpack(nanobind::module_& m, nanobind::class_<NDArray>& cls);

}  // namespace loom::python
