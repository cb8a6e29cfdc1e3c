// generated from opdefs/elementwise/add.yaml:1 — do not edit
#include "runtime/python/bind_support.h"

#include "loom/ops/add.h"

namespace nb = nanobind;
using namespace nb::literals;
using loom::NDArray;

void loom_bind_add(nb::module_& m) {
  m.def(
      "add",
      [](const NDArray& x, const NDArray& y, loom::NDArray* out) -> loom::NDArray {
        if (out != nullptr) return loom::op::add_out(*out, x, y);
        return loom::op::add(x, y);
      },
      "x"_a, "y"_a, nb::kw_only(), "out"_a.none() = nb::none(),
      nb::call_guard<nb::gil_scoped_release>(),
      R"doc(add(x, y, *, out=None)

Elementwise sum x + y, with NumPy broadcasting and type promotion.

dtypes: float32, float64, float16, bfloat16, int8, uint8, int32, int64
(generated from opdefs/elementwise/add.yaml:1))doc");
}
