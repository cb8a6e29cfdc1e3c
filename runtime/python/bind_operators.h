// The hottest Python operators (`a + b`, `a - b`, `a * b`, `a @ b` of two
// arrays) as C++ methods: one type test and the op, without a Python frame.
// Any other operand (a scalar, a NumPy array) goes to the general Python
// method of runtime/python/loom/operators.py, which also installs every other
// operator from the registry.
#pragma once

#include <nanobind/nanobind.h>

#include "runtime/ndarray/ndarray.h"

namespace loom::python {

void bind_fast_operators(nanobind::class_<NDArray>& cls);

}  // namespace loom::python
