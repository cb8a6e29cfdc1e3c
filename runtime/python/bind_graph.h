// loom._C.graph: symbols, shape inference and executors (runtime/graph/).
#pragma once

#include <nanobind/nanobind.h>

namespace loom::python {

void bind_graph(nanobind::module_& m);

}  // namespace loom::python
