// generated from the list of operators in opdefs/ — do not edit
#include <nanobind/nanobind.h>

namespace nb = nanobind;

void loom_bind_add(nb::module_& m);
void loom_bind_relu(nb::module_& m);

void loom_bind_all_ops(nb::module_& m) {
  loom_bind_add(m);
  loom_bind_relu(m);
}
