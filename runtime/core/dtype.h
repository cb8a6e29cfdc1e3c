// Element types. The enum lists every dtype loom's arrays can hold; which of
// them an operator has kernels for is the operator's YAML's business.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace loom {

enum class DType : std::uint8_t {
  kFloat32, kFloat64, kFloat16, kBFloat16,
  kInt8, kUInt8, kInt32, kInt64, kBool,
};
inline constexpr int kNumDTypes = 9;

// "float32", "int64", ... (NumPy's spelling, also used in YAML and Python).
std::string_view dtype_name(DType t);
// Inverse of dtype_name; throws loom::Error(kType) listing the valid names.
DType dtype_from_name(std::string_view name);
std::size_t dtype_size(DType t);
bool is_floating(DType t);

// The dtype binary arithmetic computes in. Category first, as in PyTorch:
// a float operand wins over any integer one and keeps its own width
// (float32 with int64 stays float32, where NumPy would widen to float64, so
// float32 models never silently turn float64); within a category the wider
// wins; a signed and an unsigned integer meet in the next signed type that
// holds both (int8 with uint8 gives int32, since loom has no int16).
DType promote_types(DType a, DType b);


}  // namespace loom
