// What every generated binding file (generated/python/bind_<op>.cc) needs:
// nanobind itself and the NDArray type, whose Python class module.cc binds.
#pragma once

#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/variant.h>
#include <nanobind/stl/vector.h>

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "runtime/dispatch/reduce_call.h"
#include "runtime/ndarray/ndarray.h"

namespace loom::python {

// A reduction's `dims` as Python passes it: None (every dim), an int, or a
// list of ints. Converted by nanobind while the GIL is held.
using DimsArg = std::optional<std::variant<std::int64_t, std::vector<std::int64_t>>>;

inline ReduceDims to_reduce_dims(const DimsArg& arg) {
  if (!arg) return std::nullopt;
  if (const auto* one = std::get_if<std::int64_t>(&*arg)) return std::vector<std::int64_t>{*one};
  return std::get<std::vector<std::int64_t>>(*arg);
}

// The arrays of a list op's positional arguments: concat(a, b, c) or, as
// NumPy spells it, concat([a, b, c]). Anything else is a TypeError naming
// the op and the position. Called with the GIL held.
inline std::vector<NDArray> array_list(const char* op, const nanobind::args& args) {
  nanobind::handle items = args;
  if (args.size() == 1 && (nanobind::isinstance<nanobind::list>(args[0]) ||
                           nanobind::isinstance<nanobind::tuple>(args[0]))) {
    items = args[0];
  }
  std::vector<NDArray> arrays;
  std::size_t i = 0;
  for (nanobind::handle item : items) {
    NDArray* a = nullptr;
    if (!nanobind::try_cast<NDArray*>(item, a) || a == nullptr) {
      throw nanobind::type_error((std::string(op) + "(): argument " + std::to_string(i) + " is a " +
                                  nanobind::type_name(item.type()).c_str() + ", not an NDArray").c_str());
    }
    arrays.push_back(*a);
    ++i;
  }
  return arrays;
}

}  // namespace loom::python
