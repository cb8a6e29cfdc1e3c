// generated from opdefs/elementwise/relu.yaml:1 — do not edit
#include "runtime/python/bind_support.h"

#include "loom/ops/relu.h"

namespace nb = nanobind;
using namespace nb::literals;
using loom::NDArray;

void loom_bind_relu(nb::module_& m) {
  m.def(
      "relu",
      [](const NDArray& x, loom::NDArray* out) -> loom::NDArray {
        if (out != nullptr) return loom::op::relu_out(*out, x);
        return loom::op::relu(x);
      },
      "x"_a, nb::kw_only(), "out"_a.none() = nb::none(),
      nb::call_guard<nb::gil_scoped_release>(),
      R"doc(relu(x, *, out=None)

Rectified linear unit, max(x, 0), elementwise.

dtypes: float32, float64, float16, bfloat16, int32, int64
(generated from opdefs/elementwise/relu.yaml:1))doc");
}
