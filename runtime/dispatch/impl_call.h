// What a generated operator with hand-written kernels (kernel.impl in its
// YAML) does around them: check and convert the inputs, allocate the result
// or check out=, and when out= shares memory with an input compute into a
// private array first (a GEMM cannot write over its own operands).
//
//   ImplCall call = prepare_impl("matmul", {{"a", &a}, {"b", &b}}, dtype);
//   call.allocate("matmul", matmul_shape("matmul", call.inputs[0], call.inputs[1]), dtype, out);
//   kernels::matmul_cpu(call.out, call.inputs[0], call.inputs[1]);
//   return call.finish();
#pragma once

#include <initializer_list>
#include <optional>
#include <string_view>
#include <vector>

#include "runtime/dispatch/pointwise_call.h"

namespace loom {

struct ImplCall {
  std::vector<NDArray> inputs;  // converted to the compute dtype
  NDArray out;                  // what the kernel writes
  NDArray user_out;             // the caller's out= when `out` is a private stand-in
  DType result_dtype = DType::kFloat32;  // what the caller gets (float16 for a float32 `out`)

  // Allocates `out` with `shape` and `dtype`, or adopts the caller's out=
  // after checking it against `result_dtype` (`dtype` when not given). A
  // result dtype other than the compute dtype (float16/bfloat16 computed in
  // float32) gives a private float32 `out`, rounded into the result at finish().
  // `writable_input`: the input (its YAML's `inplace`) the kernel may write
  // over; an out= that is exactly that array is adopted, not stood in for.
  void allocate(std::string_view op, const Shape& shape, DType dtype, const NDArray* caller_out,
                std::optional<DType> result_dtype = std::nullopt, int writable_input = -1);
  // The result (the caller's out= when given), in the result dtype.
  NDArray finish();
};

// float16 and bfloat16 ops with hand-written kernels compute in float32
// (their kernels are written for float32/float64): the dtype the kernels
// see for a result dtype.
inline DType impl_compute_dtype(DType dtype) {
  return dtype == DType::kFloat16 || dtype == DType::kBFloat16 ? DType::kFloat32 : dtype;
}

// Checks the inputs are defined and on one device; converts them to `dtype`.
ImplCall prepare_impl(std::string_view op, std::initializer_list<NamedInput> inputs, DType dtype);

// The same for an op whose arrays come as one list argument (concat's
// `arrays`): at least one, defined, on one device; errors call them
// `name[i]`.
ImplCall prepare_impl_list(std::string_view op, std::string_view name, const std::vector<NDArray>& arrays,
                           DType dtype);
// The promoted dtype of a list argument's arrays (an error naming `op` for
// an empty list).
DType promote_list(std::string_view op, std::string_view name, const std::vector<NDArray>& arrays);

// An array an impl op's kernel writes in place (YAML `mutates`, e.g.
// batch_norm's running statistics): when given, it must be dense, on
// `device` and of the kernels' compute dtype (float32 for float16/bfloat16
// inputs), since the kernel writes it directly, with no converted copy.
void check_mutated(std::string_view op, std::string_view name, const NDArray& array, DType compute, Device device);

// Output `k` of an op with several outputs: `(*into)[k]` when `into` gives
// a defined array there (checked like out=: shape, dtype, device, and
// contiguous, since the kernel writes it directly), else a new array.
NDArray output_or_empty(std::string_view op, const std::vector<NDArray>* into, std::size_t k, const Shape& shape,
                        DType dtype, Device device);

// Throws kNotImplemented: `op` needs a build option (`missing`) this loom lacks.
[[noreturn]] void throw_without_option(std::string_view op, std::string_view missing, Device device);

}  // namespace loom
