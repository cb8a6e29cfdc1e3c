// slice (kernel.view in opdefs/shape/views.yaml): x[b0:e0:s0, b1:e1:s1, ...]
// as a view, with Python's rules for each dim's range.
#include "runtime/kernels/slice.h"

#include <algorithm>

#include "generated/kernels/slice.h"
#include "microkernel/base/error.h"
#include "runtime/kernels/indexing.h"

namespace loom::kernels {

std::vector<SliceDim> resolve_slice(const Shape& shape, const ReduceDims& begin, const ReduceDims& end,
                                    const ReduceDims& step) {
  const std::size_t ndim = shape.size();
  LOOM_CHECK(begin.has_value(), "slice: begin must be given (one start per sliced dim)");
  const std::size_t count = begin->size();
  LOOM_CHECK(count <= ndim, "slice: begin ", dims_str(*begin), " has ", count, " entries, but x of shape ",
             shape_str(shape), " has only ", ndim, " dims");
  LOOM_CHECK(!end || end->size() == count, "slice: end ", end ? dims_str(*end) : "", " must have begin's ", count,
             " entries");
  LOOM_CHECK(!step || step->size() == count, "slice: step ", step ? dims_str(*step) : "", " must have begin's ",
             count, " entries");
  std::vector<SliceDim> dims(ndim);
  for (std::size_t d = 0; d < ndim; ++d) {
    const std::int64_t n = shape[d];
    if (d >= count) {  // not sliced: the whole dim
      dims[d] = {0, 1, n};
      continue;
    }
    const std::int64_t s = step ? (*step)[d] : 1;
    LOOM_CHECK(s != 0, "slice: step ", dims_str(*step), " has a 0 at dim ", d);
    // Python's slice.indices(n): negative positions count from the end,
    // out-of-range ones clamp; a missing end is the dim's end in the step's
    // direction.
    auto clamp = [&](std::int64_t v) {
      if (v < 0) v += n;
      return s > 0 ? std::clamp<std::int64_t>(v, 0, n) : std::clamp<std::int64_t>(v, -1, n - 1);
    };
    const std::int64_t start = clamp((*begin)[d]);
    const std::int64_t stop = end ? clamp((*end)[d]) : (s > 0 ? n : -1);
    std::int64_t size = 0;
    if (s > 0 && stop > start) size = (stop - start + s - 1) / s;
    if (s < 0 && start > stop) size = (start - stop - s - 1) / (-s);
    dims[d] = {size > 0 ? start : 0, s, size};
  }
  return dims;
}

NDArray slice_view(const NDArray& x, ::loom::ReduceDims begin, ::loom::ReduceDims end, ::loom::ReduceDims step) {
  const std::vector<SliceDim> dims = resolve_slice(x.shape(), begin, end, step);
  Shape shape(dims.size());
  Strides strides(dims.size());
  std::int64_t offset = x.offset();
  for (std::size_t d = 0; d < dims.size(); ++d) {
    shape[d] = dims[d].size;
    strides[d] = dims[d].step * x.strides()[d];
    if (dims[d].size > 0) offset += dims[d].start * x.strides()[d];
  }
  return x.as_strided(shape, strides, offset);
}

}  // namespace loom::kernels
