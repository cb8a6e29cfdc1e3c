// concat and stack (opdefs/shape/join.yaml): shape rules and the kernels.
// The kernels copy each input into its slice of the output through the
// generated copy op, whose strided CPU and CUDA loops already handle any
// layout, so one function serves both devices.
#include <string>

#include "generated/kernels/concat.h"
#include "generated/kernels/stack.h"
#include "loom/ops/copy.h"
#include "microkernel/base/error.h"
#include "runtime/kernels/indexing.h"

namespace loom::kernels {
namespace {

// `out`'s elements whose index along `dim` is in [start, start + size).
NDArray slab(const NDArray& out, std::int64_t dim, std::int64_t start, std::int64_t size) {
  Shape shape = out.shape();
  shape[dim] = size;
  return out.as_strided(shape, out.strides(), out.offset() + start * out.strides()[dim]);
}

}  // namespace

Shape infer_concat(const std::vector<NDArray>& arrays, std::int64_t dim) {
  const Shape& first = arrays[0].shape();
  LOOM_CHECK(!first.empty(), "concat: arrays[0] is 0-d; 0-d arrays have no dim to join along (use stack)");
  const std::int64_t d = wrap_dim("concat", dim, static_cast<std::int64_t>(first.size()), first);
  Shape out = first;
  out[d] = 0;
  for (std::size_t i = 0; i < arrays.size(); ++i) {
    const Shape& s = arrays[i].shape();
    bool same = s.size() == first.size();
    for (std::size_t k = 0; same && k < s.size(); ++k) same = static_cast<std::int64_t>(k) == d || s[k] == first[k];
    LOOM_CHECK(same, "concat: arrays[", i, "] has shape ", shape_str(s), " but arrays[0] has shape ",
               shape_str(first), "; all dims except dim ", dim, " must match");
    out[d] += s[d];
  }
  return out;
}

void concat_into(NDArray& out, const std::vector<NDArray>& arrays, std::int64_t dim) {
  const std::int64_t d = dim < 0 ? dim + out.ndim() : dim;
  std::int64_t start = 0;
  for (const NDArray& a : arrays) {
    NDArray target = slab(out, d, start, a.shape()[d]);
    if (a.numel() > 0) op::copy_out(target, a);
    start += a.shape()[d];
  }
}

Shape infer_stack(const std::vector<NDArray>& arrays, std::int64_t dim) {
  const Shape& first = arrays[0].shape();
  for (std::size_t i = 1; i < arrays.size(); ++i) {
    LOOM_CHECK(arrays[i].shape() == first, "stack: arrays[", i, "] has shape ", shape_str(arrays[i].shape()),
               " but arrays[0] has shape ", shape_str(first), "; stacked arrays must have one shape");
  }
  const std::int64_t d = wrap_dim("stack", dim, static_cast<std::int64_t>(first.size()) + 1, first);
  Shape out = first;
  out.insert(out.begin() + d, static_cast<std::int64_t>(arrays.size()));
  return out;
}

void stack_into(NDArray& out, const std::vector<NDArray>& arrays, std::int64_t dim) {
  const std::int64_t d = dim < 0 ? dim + out.ndim() : dim;
  for (std::size_t i = 0; i < arrays.size(); ++i) {
    if (arrays[i].numel() == 0) continue;
    // The i-th slice along `d`, without that dim: the shape of arrays[i].
    NDArray slice = slab(out, d, static_cast<std::int64_t>(i), 1);
    Shape shape = slice.shape();
    Strides strides = slice.strides();
    shape.erase(shape.begin() + d);
    strides.erase(strides.begin() + d);
    NDArray target = slice.as_strided(shape, strides, slice.offset());
    op::copy_out(target, arrays[i]);
  }
}

}  // namespace loom::kernels
