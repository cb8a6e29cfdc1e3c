#include "runtime/python/bind_operators.h"

#include <nanobind/stl/string.h>

#include <string>

#include "loom/ops/add.h"
#include "loom/ops/matmul.h"
#include "loom/ops/mul.h"
#include "loom/ops/sub.h"

namespace nb = nanobind;

namespace loom::python {
namespace {

using BinaryOp = NDArray (*)(const NDArray&, const NDArray&);

void def_fast(nb::class_<NDArray>& cls, const char* dunder, BinaryOp op) {
  // The Python fallback, looked up on first use and kept (deliberately never
  // released: it lives as long as the method).
  auto* general = new nb::object();
  cls.def(
      dunder,
      [dunder, op, general](nb::handle self, nb::handle other) -> nb::object {
        if (nb::isinstance<NDArray>(other)) {
          const NDArray& a = nb::cast<const NDArray&>(self);
          const NDArray& b = nb::cast<const NDArray&>(other);
          NDArray result;
          {
            nb::gil_scoped_release release;
            result = op(a, b);
          }
          return nb::cast(std::move(result));
        }
        // Scalars, NumPy arrays, foreign types: Python's rules (weak scalars,
        // NotImplemented for what cannot convert) live in operators.py.
        if (!general->is_valid()) *general = nb::module_::import_("loom.operators").attr("general_binary")(dunder);
        return (*general)(self, other);
      },
      nb::is_operator());
}

}  // namespace

void bind_fast_operators(nb::class_<NDArray>& cls) {
  def_fast(cls, "__add__", &op::add);
  def_fast(cls, "__sub__", &op::sub);
  def_fast(cls, "__mul__", &op::mul);
  def_fast(cls, "__matmul__", &op::matmul);
}

}  // namespace loom::python
