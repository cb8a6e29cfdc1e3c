// What every generated binding file (generated/python/bind_<op>.cc) needs:
// nanobind itself and the NDArray type, whose Python class module.cc binds.
#pragma once

#include <nanobind/nanobind.h>

#include "runtime/ndarray/ndarray.h"
