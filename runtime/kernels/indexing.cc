// take, index_add and one_hot (opdefs/indexing/indexing.yaml): shape rules
// and CPU kernels. Indices arrive as int64 (the generated dispatch converts
// `index: true` arguments); a negative index counts from the end of its
// dim, as in NumPy, and anything outside [-size, size) is an IndexError.
#include "runtime/kernels/indexing.h"

#include <cstring>
#include <limits>

#include "generated/kernels/index_add.h"
#include "generated/kernels/one_hot.h"
#include "generated/kernels/take.h"
#include "microkernel/base/error.h"
#include "runtime/core/dtype_visit.h"

namespace loom::kernels {

AxisSplit split_around(const Shape& shape, std::int64_t dim) {
  AxisSplit s;
  for (std::int64_t d = 0; d < static_cast<std::int64_t>(shape.size()); ++d) {
    if (d < dim) s.outer *= shape[d];
    if (d == dim) s.axis = shape[d];
    if (d > dim) s.inner *= shape[d];
  }
  return s;
}

std::int64_t wrap_dim(std::string_view op, std::int64_t dim, std::int64_t positions, const Shape& shape) {
  LOOM_CHECK_KIND(dim >= -positions && dim < positions, ErrorKind::kIndex, op, ": dim ", dim,
                  " is out of range for an array of shape ", shape_str(shape), " (expected ", -positions, " to ",
                  positions - 1, ")");
  return dim < 0 ? dim + positions : dim;
}

std::int64_t wrap_axis(std::string_view op, std::int64_t dim, const Shape& shape) {
  const auto rank = static_cast<std::int64_t>(shape.size());
  LOOM_CHECK_KIND(rank > 0, ErrorKind::kIndex, op, ": a 0-d array has no dim to index");
  return wrap_dim(op, dim, rank, shape);
}

namespace {

// Float index arrays reach the kernels cast to int64: infinities saturate
// to the int64 limits, and NaN is sent to the lower one (prepare_impl).
const char* float_index_hint(std::int64_t index) {
  return index == std::numeric_limits<std::int64_t>::min()   ? " (a float index that was NaN or -inf?)"
         : index == std::numeric_limits<std::int64_t>::max() ? " (a float index that was +inf?)"
                                                              : "";
}

}  // namespace

void throw_bad_index(std::string_view op, std::int64_t index, std::int64_t dim, std::int64_t size) {
  LOOM_THROW(ErrorKind::kIndex, op, ": index ", index, float_index_hint(index), " is out of range for dim ", dim,
             " of size ", size, " (valid: ", -size, " to ", size - 1, ")");
}

void throw_bad_depth_index(std::string_view op, std::int64_t index, std::int64_t depth) {
  LOOM_THROW(ErrorKind::kIndex, op, ": index ", index, " is out of range for depth ", depth, " (valid: 0 to ",
             depth - 1, ")");
}

std::string dims_str(const std::vector<std::int64_t>& dims) {
  std::string s = "(";
  for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + (dims.size() == 1 ? ",)" : ")");
}

namespace {

// The indices as offsets into [0, size), all checked before anything is
// written. `negative_wraps`: -1 is the last (take, index_add), or an error
// (one_hot, where -1 often marks a label to ignore: silently wrapping it
// would give a wrong number).
std::vector<std::int64_t> checked_indices(std::string_view op, const NDArray& indices, std::int64_t dim,
                                          std::int64_t size, bool negative_wraps = true) {
  const NDArray dense = indices.contiguous();
  const std::int64_t* p = dense.data<const std::int64_t>();
  std::vector<std::int64_t> out(static_cast<std::size_t>(dense.numel()));
  const std::int64_t low = negative_wraps ? -size : 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    const std::int64_t v = p[i];
    if (v < low || v >= size) {
      if (!negative_wraps) throw_bad_depth_index(op, v, size);
      throw_bad_index(op, v, dim, size);
    }
    out[i] = v < 0 ? v + size : v;
  }
  return out;
}

}  // namespace

Shape infer_take(const NDArray& x, const NDArray& indices, std::int64_t dim) {
  const std::int64_t d = wrap_axis("take", dim, x.shape());
  Shape out(x.shape().begin(), x.shape().begin() + d);
  out.insert(out.end(), indices.shape().begin(), indices.shape().end());
  out.insert(out.end(), x.shape().begin() + d + 1, x.shape().end());
  return out;
}

void take_cpu(NDArray& out, const NDArray& x, const NDArray& indices, std::int64_t dim) {
  const std::int64_t d = wrap_axis("take", dim, x.shape());
  const AxisSplit s = split_around(x.shape(), d);
  const std::vector<std::int64_t> idx = checked_indices("take", indices, d, s.axis);
  const NDArray src = x.contiguous();
  const std::size_t item = dtype_size(x.dtype());
  const auto* from = static_cast<const char*>(src.raw_data());
  auto* to = static_cast<char*>(out.raw_data());
  const auto n = static_cast<std::int64_t>(idx.size());
  const std::size_t row = static_cast<std::size_t>(s.inner) * item;
#pragma omp parallel for schedule(static) if (s.outer * n * s.inner > 65536)
  for (std::int64_t o = 0; o < s.outer; ++o) {
    for (std::int64_t j = 0; j < n; ++j) {
      std::memcpy(to + static_cast<std::size_t>(o * n + j) * row,
                  from + static_cast<std::size_t>(o * s.axis + idx[j]) * row, row);
    }
  }
}

Shape infer_index_add(const NDArray& x, const NDArray& indices, const NDArray& src, std::int64_t dim) {
  const std::int64_t d = wrap_axis("index_add", dim, x.shape());
  LOOM_CHECK(indices.ndim() <= 1, "index_add: indices must be 0-d or 1-d, got shape ", shape_str(indices.shape()));
  // A 0-d index adds one slice, which src gives without the dim (as take
  // returns it); a 1-d one adds one slice per index.
  Shape want = x.shape();
  if (indices.ndim() == 0) {
    want.erase(want.begin() + d);
  } else {
    want[d] = indices.numel();
  }
  LOOM_CHECK(src.shape() == want, "index_add: src has shape ", shape_str(src.shape()), " but x of shape ",
             shape_str(x.shape()), " with ", indices.numel(), " indices along dim ", dim, " needs ",
             shape_str(want));
  return x.shape();
}

void index_add_cpu(NDArray& out, const NDArray& x, const NDArray& indices, const NDArray& src, std::int64_t dim) {
  const std::int64_t d = wrap_axis("index_add", dim, x.shape());
  const AxisSplit s = split_around(x.shape(), d);
  const std::vector<std::int64_t> idx = checked_indices("index_add", indices, d, s.axis);
  const NDArray base = x.contiguous(), add = src.contiguous();
  const auto n = static_cast<std::int64_t>(idx.size());
  visit_dtype(x.dtype(), "index_add", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* o = out.data<T>();
    std::memcpy(o, base.data<const T>(), static_cast<std::size_t>(x.numel()) * sizeof(T));
    const T* a = add.data<const T>();
    // Parallel over outer rows only: repeated indices then add in order
    // within a row, so results do not depend on the thread count.
#pragma omp parallel for schedule(static) if (s.outer * n * s.inner > 65536)
    for (std::int64_t r = 0; r < s.outer; ++r) {
      for (std::int64_t j = 0; j < n; ++j) {
        T* dst = o + (r * s.axis + idx[j]) * s.inner;
        const T* from = a + (r * n + j) * s.inner;
        for (std::int64_t k = 0; k < s.inner; ++k) dst[k] = static_cast<T>(dst[k] + from[k]);
      }
    }
  });
}

Shape infer_one_hot(const NDArray& indices, std::int64_t depth, double, double) {
  LOOM_CHECK(depth >= 0, "one_hot: depth must be >= 0, got ", depth);
  LOOM_CHECK_KIND(depth > 0 || indices.numel() == 0, ErrorKind::kIndex, "one_hot: depth 0 leaves no valid index for ",
                  indices.numel(), " indices");
  Shape out = indices.shape();
  out.push_back(depth);
  return out;
}

void one_hot_cpu(NDArray& out, const NDArray& indices, std::int64_t depth, double on_value, double off_value) {
  const std::vector<std::int64_t> idx = checked_indices("one_hot", indices, indices.ndim(), depth, false);
  float* o = out.data<float>();
  const auto on = static_cast<float>(on_value), off = static_cast<float>(off_value);
  for (std::size_t i = 0; i < idx.size(); ++i) {
    float* row = o + static_cast<std::int64_t>(i) * depth;
    for (std::int64_t k = 0; k < depth; ++k) row[k] = off;
    if (depth > 0) row[idx[i]] = on;
  }
}

}  // namespace loom::kernels
