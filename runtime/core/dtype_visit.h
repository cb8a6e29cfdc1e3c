// visit_dtype(dtype, fn): calls fn(TypeTag<T>{}) with the C++ type of dtype,
// so templates can be instantiated once per dtype without a macro per switch.
// float16/bfloat16 have no C++ arithmetic type yet (the operator DSL issue
// adds them, computing in float32); visiting them throws kNotImplemented.
#pragma once

#include <cstdint>
#include <string_view>

#include "microkernel/base/error.h"
#include "runtime/core/dtype.h"

namespace loom {

template <typename T>
struct TypeTag {
  using type = T;
};

template <typename Fn>
decltype(auto) visit_dtype(DType dtype, std::string_view what, Fn&& fn) {
  switch (dtype) {
    case DType::kFloat32: return fn(TypeTag<float>{});
    case DType::kFloat64: return fn(TypeTag<double>{});
    case DType::kInt8: return fn(TypeTag<std::int8_t>{});
    case DType::kUInt8: return fn(TypeTag<std::uint8_t>{});
    case DType::kInt32: return fn(TypeTag<std::int32_t>{});
    case DType::kInt64: return fn(TypeTag<std::int64_t>{});
    case DType::kBool: return fn(TypeTag<bool>{});
    case DType::kFloat16:
    case DType::kBFloat16:
      break;
  }
  LOOM_THROW(ErrorKind::kNotImplemented, what, ": ", dtype_name(dtype),
             " arithmetic is not implemented yet");
}

}  // namespace loom
