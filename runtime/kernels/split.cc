// split and split_with_sizes (kernel.view in opdefs/shape/split.yaml): x
// cut into parts along one dim, each part a view of x (its own offset, x's
// strides), so a split costs no copy whatever x's layout, and the gradient
// (unsplit, in runtime/autograd/functions.cc) joins the parts' gradients back.
#include <string>
#include <vector>

#include "generated/kernels/split.h"
#include "generated/kernels/split_with_sizes.h"
#include "microkernel/base/error.h"
#include "runtime/kernels/indexing.h"

namespace loom::kernels {
namespace {

// The part of x along `dim` from `start`, `size` long (dropping the dim
// when `squeeze`).
NDArray part_view(const NDArray& x, std::int64_t dim, std::int64_t start, std::int64_t size, bool squeeze) {
  Shape shape = x.shape();
  Strides strides = x.strides();
  shape[dim] = size;
  if (squeeze) {
    shape.erase(shape.begin() + dim);
    strides.erase(strides.begin() + dim);
  }
  // An empty part keeps x's offset: no element of it is ever read (and x's
  // storage may hold none).
  const std::int64_t offset = x.offset() + (shape_numel(shape) > 0 ? start * x.strides()[dim] : 0);
  return x.as_strided(shape, strides, offset);
}

}  // namespace

std::vector<NDArray> split_views(const NDArray& x, std::int64_t num_outputs, std::int64_t axis, bool squeeze_axis) {
  const std::int64_t dim = wrap_axis("split", axis, x.shape());
  const std::int64_t size = x.shape()[dim];
  LOOM_CHECK(size % num_outputs == 0, "split: axis ", axis, " of shape ", shape_str(x.shape()), " has ", size,
             " elements, which num_outputs = ", num_outputs, " does not divide into equal parts");
  const std::int64_t part = size / num_outputs;
  LOOM_CHECK(!squeeze_axis || part == 1, "split: squeeze_axis needs parts of size 1 along axis ", axis,
             " (num_outputs = ", num_outputs, " equal to its size), but shape ", shape_str(x.shape()), " gives parts of ",
             part);
  std::vector<NDArray> parts;
  parts.reserve(static_cast<std::size_t>(num_outputs));
  for (std::int64_t k = 0; k < num_outputs; ++k) parts.push_back(part_view(x, dim, k * part, part, squeeze_axis));
  return parts;
}

std::vector<NDArray> split_with_sizes_views(const NDArray& x, ::loom::ReduceDims sizes, std::int64_t dim) {
  const std::int64_t d = wrap_axis("split_with_sizes", dim, x.shape());
  const std::vector<std::int64_t>& parts_sizes = *sizes;  // required: the generated dispatch checked it is given
  std::int64_t total = 0;
  for (std::int64_t s : parts_sizes) {
    LOOM_CHECK(s >= 0, "split_with_sizes: sizes ", dims_str(parts_sizes), " has a negative size");
    total += s;
  }
  LOOM_CHECK(total == x.shape()[d], "split_with_sizes: sizes ", dims_str(parts_sizes), " add up to ", total,
             ", but dim ", dim, " of shape ", shape_str(x.shape()), " has ", x.shape()[d], " elements");
  std::vector<NDArray> parts;
  parts.reserve(parts_sizes.size());
  std::int64_t start = 0;
  for (std::int64_t s : parts_sizes) {
    parts.push_back(part_view(x, d, start, s, false));
    start += s;
  }
  return parts;
}

}  // namespace loom::kernels
