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

#include "microkernel/base/error.h"
#include "runtime/core/dtype.h"
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

// A generate op's `dtype` as Python passes it: a name ("float32") or
// anything numpy.dtype() takes (np.float32). The caster keeps the name;
// to_dtype() checks it inside the op, so an unknown one is a TypeError
// naming the op rather than nanobind's signature mismatch.
struct DTypeArg {
  std::string name;
};

inline DType to_dtype(const char* op, const DTypeArg& arg) {
  try {
    return dtype_from_name(arg.name);
  } catch (const Error& e) {
    LOOM_THROW(ErrorKind::kType, op, ": ", e.what());
  }
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

namespace nanobind::detail {

template <>
struct type_caster<loom::python::DTypeArg> {
  NB_TYPE_CASTER(loom::python::DTypeArg, const_name("str"))

  bool from_python(handle src, uint8_t, cleanup_list*) noexcept {
    if (PyUnicode_Check(src.ptr())) {
      Py_ssize_t size = 0;
      const char* text = PyUnicode_AsUTF8AndSize(src.ptr(), &size);
      if (text == nullptr) {
        PyErr_Clear();
        return false;
      }
      value.name.assign(text, static_cast<std::size_t>(size));
      return true;
    }
    // np.float32, np.dtype("int64"), ...: numpy.dtype(src).name
    PyObject* numpy = PyImport_ImportModule("numpy");
    if (numpy == nullptr) {
      PyErr_Clear();
      return false;
    }
    PyObject* dtype = PyObject_CallMethod(numpy, "dtype", "O", src.ptr());
    Py_DECREF(numpy);
    if (dtype == nullptr) {
      PyErr_Clear();
      return false;
    }
    PyObject* name = PyObject_GetAttrString(dtype, "name");
    Py_DECREF(dtype);
    if (name == nullptr || !PyUnicode_Check(name)) {
      Py_XDECREF(name);
      PyErr_Clear();
      return false;
    }
    value.name = PyUnicode_AsUTF8(name);
    Py_DECREF(name);
    return true;
  }

  static handle from_cpp(const loom::python::DTypeArg& arg, rv_policy, cleanup_list*) noexcept {
    return PyUnicode_FromStringAndSize(arg.name.data(), static_cast<Py_ssize_t>(arg.name.size()));
  }
};

}  // namespace nanobind::detail
