// What a kernel.generate op's dispatch (generated/ops/<op>.cc) does around
// its kernel: the result's shape from an int[] attribute, and the array the
// kernel writes (a new one, or the caller's out=).
#pragma once

#include <string_view>

#include "runtime/dispatch/reduce_call.h"
#include "runtime/ndarray/ndarray.h"

namespace loom {

// The shape an int[] attribute gives: None and negative sizes are refused.
Shape generate_shape(std::string_view op, const char* name, const ReduceDims& dims);

struct GenerateCall {
  NDArray out;       // dense: what the kernel writes
  NDArray user_out;  // the caller's strided out=, written from `out` by finish()
  // The op's result: `out`, or the caller's out= once written.
  NDArray finish() const;
};

// A new dense array of `shape`, or the caller's out= (which must have that
// shape, `dtype` and `device` exactly; a strided one is written through a
// dense temporary).
GenerateCall prepare_generate(std::string_view op, const Shape& shape, DType dtype, Device device,
                              const NDArray* caller_out);

}  // namespace loom
