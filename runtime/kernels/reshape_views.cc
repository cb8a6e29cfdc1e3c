// reshape, flatten and broadcast_to (kernel.view in opdefs/shape/views.yaml):
// new shapes over the same elements. reshape and flatten re-describe x
// without a copy whenever its strides allow, which includes many
// non-contiguous arrays (a transposed matrix split along one of its dims),
// not only contiguous ones; broadcast_to is always a view (stride 0).
#include <optional>
#include <string>

#include "generated/kernels/broadcast_to.h"
#include "generated/kernels/flatten.h"
#include "generated/kernels/reshape.h"
#include "microkernel/base/error.h"

namespace loom::kernels {
namespace {

// Strides that lay `shape` over x's elements in row-major order without
// moving them, or nullopt when a new dim would have to span two of x's dims
// that are not evenly spaced in memory (then reshape copies).
//
// x's dims are grouped, from the last, into runs whose elements are evenly
// spaced (dim d-1's stride is dim d's stride times its size; size-1 dims
// join any run). Each run is a 1-D sequence with one base stride, so it can
// be cut into new dims freely; the new dims must cover the runs exactly.
std::optional<Strides> view_strides(const Shape& from, const Strides& from_strides, const Shape& to) {
  if (shape_numel(to) == 0 || from.empty()) return contiguous_strides(to);
  Strides strides(to.size());
  int next = static_cast<int>(to.size()) - 1;  // the next new dim to place, from the last
  int last = static_cast<int>(from.size()) - 1;
  while (last >= 0) {
    const std::int64_t base = from_strides[last];
    std::int64_t run = from[last];
    int first = last;
    while (first > 0 && (from[first - 1] == 1 || from_strides[first - 1] == run * base)) {
      run *= from[--first];
    }
    std::int64_t placed = 1;
    // Leading size-1 new dims go with the first run, whatever their stride.
    while (next >= 0 && (placed < run || to[next] == 1)) {
      strides[next] = placed * base;
      placed *= to[next--];
    }
    if (placed != run) return std::nullopt;
    last = first - 1;
  }
  if (next >= 0) return std::nullopt;
  return strides;
}

// `shape` with its -1 resolved against x's element count, checked.
Shape resolve_shape(const char* op, const NDArray& x, const std::vector<std::int64_t>& shape) {
  Shape target(shape.begin(), shape.end());
  std::int64_t known = 1;
  int infer = -1;
  for (std::size_t i = 0; i < target.size(); ++i) {
    if (target[i] == -1) {
      LOOM_CHECK(infer < 0, op, ": only one dim of the new shape can be -1, got ", shape_str(target));
      infer = static_cast<int>(i);
    } else {
      LOOM_CHECK(target[i] >= 0, op, ": the new shape ", shape_str(target), " has a negative dim other than -1");
      known *= target[i];
    }
  }
  if (infer >= 0) {
    LOOM_CHECK(known != 0 && x.numel() % known == 0, op, ": cannot reshape ", x.describe(), " (", x.numel(),
               " elements) to ", shape_str(target));
    target[infer] = x.numel() / known;
  }
  LOOM_CHECK(shape_numel(target) == x.numel(), op, ": cannot reshape ", x.describe(), " (", x.numel(),
             " elements) to ", shape_str(target), " (", shape_numel(target), " elements)");
  return target;
}

NDArray reshaped(const NDArray& x, const Shape& target) {
  if (const auto strides = view_strides(x.shape(), x.strides(), target)) {
    return x.as_strided(target, *strides, x.offset());
  }
  const NDArray dense = x.contiguous();
  return dense.as_strided(target, contiguous_strides(target), dense.offset());
}

}  // namespace

NDArray reshape_view(const NDArray& x, ::loom::ReduceDims shape) {
  LOOM_CHECK(shape.has_value(), "reshape: needs a shape, got None (for ", x.describe(), ")");
  return reshaped(x, resolve_shape("reshape", x, *shape));
}

NDArray flatten_view(const NDArray& x) {
  LOOM_CHECK(x.ndim() >= 1, "flatten: expects at least one dim (the batch), got ", x.describe());
  std::int64_t rest = 1;
  for (int d = 1; d < x.ndim(); ++d) rest *= x.shape()[d];
  return reshaped(x, Shape{x.shape()[0], rest});
}

NDArray broadcast_view(const NDArray& x, ::loom::ReduceDims shape) {
  LOOM_CHECK(shape.has_value(), "broadcast_to: needs a shape, got None (for ", x.describe(), ")");
  const Shape target(shape->begin(), shape->end());
  const Shape merged = broadcast_shapes("broadcast_to", x.shape(), target);
  LOOM_CHECK(merged == target, "broadcast_to: cannot broadcast ", x.describe(), " to ", shape_str(target),
             " (dims of x other than 1 must equal the target's, aligned from the right)");
  return x.as_strided(target, broadcast_strides(x.shape(), x.strides(), target), x.offset());
}

}  // namespace loom::kernels
