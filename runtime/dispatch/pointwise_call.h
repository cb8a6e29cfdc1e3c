// What a generated pointwise operator hands its kernel: the output and the
// inputs, all of one dtype and on one device, inputs broadcastable to the
// output's shape. prepare_pointwise() builds it and does every check that is
// the same for all pointwise ops, so the generated code stays a few lines.
#pragma once

#include <initializer_list>
#include <string_view>
#include <utility>
#include <vector>

#include "runtime/kernels/cpu/strided_layout.h"
#include "runtime/ndarray/ndarray.h"

namespace loom {

struct PointwiseCall {
  NDArray out;
  std::vector<NDArray> inputs;

  // The merged iteration layout (operand 0 is out, then the inputs).
  kernels::StridedLayout layout() const;
};

struct NamedInput {
  const char* name;
  const NDArray* array;
  bool index = false;     // integer indices (an `index: true` argument): read as int64
  bool optional = false;  // an optional Tensor (`Tensor?`): may be undefined, meaning "not given"
};

// Checks that every input is defined (or optional) and all given inputs are
// on one device (errors name `op` and the arguments); returns that device,
// the first input's (which is never optional).
Device check_inputs(std::string_view op, std::initializer_list<NamedInput> inputs);

// The promoted dtype of `dtype` and an optional input: `dtype` itself when
// the input was not given.
inline DType promote_if_given(DType dtype, const NDArray& optional_input) {
  return optional_input.defined() ? promote_types(dtype, optional_input.dtype()) : dtype;
}

// Checks the inputs (defined, one device), broadcasts their shapes, converts
// them to `compute_dtype`, and allocates the output of `result_dtype`, or
// checks the caller's `out` (shape and dtype must match exactly; out= never
// resizes). `op` names the operator in every error message.
PointwiseCall prepare_pointwise(std::string_view op, std::initializer_list<NamedInput> inputs,
                                DType compute_dtype, const NDArray* out, DType result_dtype);

// Checks a caller's out= array: exactly `shape`, `dtype` and `device`, and no
// element addressed twice (a broadcast view). Errors name `op`.
void check_out_array(std::string_view op, const NDArray& out, const Shape& shape, DType dtype,
                     Device device);

// Checks that `op` has a kernel for `dtype`: `built` lists the dtypes with
// kernels, `pending` those its YAML declares but whose kernels the generator
// cannot build yet (kNotImplemented); anything else is a kType error.
void check_op_dtype(std::string_view op, DType dtype, std::initializer_list<DType> built,
                    std::initializer_list<DType> pending);

// Throws kNotImplemented: `op` was asked to run on a GPU in a CPU-only build.
[[noreturn]] void throw_without_cuda(std::string_view op, Device device);

// Throws loom::Error(kType) saying `op` has no kernel for `dtype`, listing
// the dtypes it has. Generated dtype switches call it for everything else.
[[noreturn]] void throw_unsupported_dtype(std::string_view op, DType dtype,
                                          std::string_view supported);

}  // namespace loom
