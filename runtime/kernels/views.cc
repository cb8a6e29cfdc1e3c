// The view operators (kernel.view in opdefs/shape/): each returns its input
// re-described by a new shape, strides and offset over the same storage,
// so they cost no copy and writes through either array show in both, as in
// NumPy. The generator declares these functions (generated/kernels/<op>.h)
// and records their gradients from the YAML.
#include <algorithm>
#include <string>
#include <vector>

#include "generated/kernels/expand_dims.h"
#include "generated/kernels/flip.h"
#include "generated/kernels/squeeze.h"
#include "generated/kernels/swapaxes.h"
#include "generated/kernels/transpose.h"
#include "microkernel/base/error.h"
#include "runtime/kernels/indexing.h"

namespace loom::kernels {

NDArray permute_view(const NDArray& x, ::loom::ReduceDims dims) {
  const std::int64_t n = x.ndim();
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  if (!dims) {  // no dims: reversed, as NumPy's transpose and MXNet's
    for (std::int64_t i = 0; i < n; ++i) order[i] = n - 1 - i;
  } else {
    LOOM_CHECK(static_cast<std::int64_t>(dims->size()) == n, "transpose: dims ", dims_str(*dims), " must name each of the ",
               n, " dims of an array of shape ", shape_str(x.shape()), " once");
    std::vector<bool> seen(static_cast<std::size_t>(n), false);
    for (std::int64_t i = 0; i < n; ++i) {
      const std::int64_t d = wrap_dim("transpose", (*dims)[i], n, x.shape());
      LOOM_CHECK(!seen[d], "transpose: dims ", dims_str(*dims), " repeat dim ", d, " (shape ", shape_str(x.shape()),
                 ")");
      seen[d] = true;
      order[i] = d;
    }
  }
  Shape shape(order.size());
  Strides strides(order.size());
  for (std::size_t i = 0; i < order.size(); ++i) {
    shape[i] = x.shape()[order[i]];
    strides[i] = x.strides()[order[i]];
  }
  return x.as_strided(shape, strides, x.offset());
}

NDArray swapaxes_view(const NDArray& x, std::int64_t dim1, std::int64_t dim2) {
  const std::int64_t n = x.ndim();
  const std::int64_t a = wrap_dim("swapaxes", dim1, n, x.shape()), b = wrap_dim("swapaxes", dim2, n, x.shape());
  Shape shape = x.shape();
  Strides strides = x.strides();
  std::swap(shape[a], shape[b]);
  std::swap(strides[a], strides[b]);
  return x.as_strided(shape, strides, x.offset());
}

NDArray squeeze_view(const NDArray& x, ::loom::ReduceDims dims) {
  const std::int64_t n = x.ndim();
  std::vector<bool> drop(static_cast<std::size_t>(n), false);
  if (!dims) {  // every size-1 dim
    for (std::int64_t d = 0; d < n; ++d) drop[d] = x.shape()[d] == 1;
  } else {
    for (std::int64_t given : *dims) {
      const std::int64_t d = wrap_dim("squeeze", given, n, x.shape());
      LOOM_CHECK(x.shape()[d] == 1, "squeeze: dim ", given, " has size ", x.shape()[d],
                 ", not 1, in an array of shape ", shape_str(x.shape()));
      drop[d] = true;
    }
  }
  Shape shape;
  Strides strides;
  for (std::int64_t d = 0; d < n; ++d) {
    if (drop[d]) continue;
    shape.push_back(x.shape()[d]);
    strides.push_back(x.strides()[d]);
  }
  return x.as_strided(shape, strides, x.offset());
}

NDArray expand_dims_view(const NDArray& x, std::int64_t dim) {
  const std::int64_t n = x.ndim();
  const std::int64_t d = wrap_dim("expand_dims", dim, n + 1, x.shape());
  Shape shape = x.shape();
  Strides strides = x.strides();
  // Any stride is valid for a size-1 dim; the contiguous one keeps a dense
  // input dense.
  const std::int64_t stride = d < n ? x.strides()[d] * x.shape()[d] : 1;
  shape.insert(shape.begin() + d, 1);
  strides.insert(strides.begin() + d, stride);
  return x.as_strided(shape, strides, x.offset());
}

NDArray flip_view(const NDArray& x, ::loom::ReduceDims dims) {
  const std::int64_t n = x.ndim();
  std::vector<bool> flip(static_cast<std::size_t>(n), !dims.has_value());
  if (dims) {
    for (std::int64_t given : *dims) {
      const std::int64_t d = wrap_dim("flip", given, n, x.shape());
      LOOM_CHECK(!flip[d], "flip: dim ", given, " is repeated (shape ", shape_str(x.shape()), ")");
      flip[d] = true;
    }
  }
  Strides strides = x.strides();
  std::int64_t offset = x.offset();
  for (std::int64_t d = 0; d < n; ++d) {
    if (!flip[d] || x.shape()[d] <= 1) continue;
    // Start at the last element of the dim and walk backwards (a negative
    // stride, as NumPy's flip).
    offset += (x.shape()[d] - 1) * strides[d];
    strides[d] = -strides[d];
  }
  return x.as_strided(x.shape(), strides, offset);
}

}  // namespace loom::kernels
