// dtype conversion of GPU arrays on the GPU (NDArray::astype), with the host
// conversion's rules: float16/bfloat16 through float with round-to-nearest-
// even, float -> integer saturating with NaN -> 0, anything -> bool as != 0.
#pragma once

#include "runtime/ndarray/ndarray.h"

namespace loom {

#if LOOM_WITH_CUDA
// `out` is a contiguous array of src's shape on src's device; src must be
// contiguous. Queued on the current stream (returns at once).
void cast_cuda(const NDArray& src, NDArray& out);
#endif

}  // namespace loom
