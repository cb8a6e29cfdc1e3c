// lm._C.comm: the comm layer's Group (microkernel/comm/group.h) from Python,
// with NDArrays as message bodies.
#pragma once

#include <nanobind/nanobind.h>

namespace loom::python {

void bind_comm(nanobind::module_& m);

}  // namespace loom::python
