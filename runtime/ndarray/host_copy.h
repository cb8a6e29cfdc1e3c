// Element copies on the host that NDArray needs before the generated ops
// exist: strided gather into a dense buffer, and dtype conversion.
#pragma once

#include <cstdint>

#include "runtime/core/dtype.h"

namespace loom {

class NDArray;

// Writes src's elements, row-major, to the dense host buffer `dst`.
void copy_strided_host(const NDArray& src, void* dst);
// Converts `count` dense elements of `from` at src into `to` at dst.
void cast_host(const void* src, DType from, void* dst, DType to, std::int64_t count);

}  // namespace loom
