// What every generated binding file (generated/python/bind_<op>.cc) needs:
// nanobind itself and the NDArray type, whose Python class module.cc binds.
#pragma once

#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/variant.h>
#include <nanobind/stl/vector.h>

#include <cstdint>
#include <optional>
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

}  // namespace loom::python
