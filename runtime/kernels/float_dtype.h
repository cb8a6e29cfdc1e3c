// The dtype switch of the hand-written NN kernels, which are written for
// float32 and float64 (impl ops hand them float32 copies of float16/bfloat16
// inputs): fn(float{}) or fn(double{}), else a TypeError naming the op.
#pragma once

#include "microkernel/base/error.h"
#include "runtime/core/dtype.h"

namespace loom::kernels {

template <typename Fn>
void by_dtype(const char* op, DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::kFloat32: return fn(float{});
    case DType::kFloat64: return fn(double{});
    default: LOOM_THROW(ErrorKind::kType, op, ": no kernel for dtype ", dtype_name(dtype), " (float32, float64)");
  }
}

}  // namespace loom::kernels
