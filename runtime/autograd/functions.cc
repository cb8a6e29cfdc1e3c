#include "runtime/autograd/functions.h"

#include "runtime/dispatch/launch.h"

#include <algorithm>
#include <utility>

#include "loom/ops/broadcast_to.h"
#include "loom/ops/cast.h"
#include "loom/ops/concat.h"
#include "loom/ops/copy.h"
#include "loom/ops/full.h"
#include "loom/ops/index_add.h"
#include "loom/ops/reshape.h"
#include "loom/ops/stack.h"
#include "loom/ops/sum.h"
#include "loom/ops/swapaxes.h"
#include "loom/ops/take.h"
#include "loom/ops/transpose.h"
#include "microkernel/base/error.h"
#include "runtime/autograd/grad_mode.h"
#include "runtime/autograd/record.h"
#include "runtime/graph/trace.h"
#include "runtime/kernels/shuffle.h"
#include "runtime/kernels/slice.h"
#include "runtime/dispatch/launch.h"

namespace loom::autograd {
namespace {

// A node whose gradient is one function of the incoming gradient and what
// the forward recorded about its input (shape, dtype, device).
template <typename Backward>
class UnaryNode final : public Node {
 public:
  UnaryNode(const char* name, Backward backward) : name_(name), backward_(std::move(backward)) {}
  std::string name() const override { return name_; }
  std::vector<NDArray> apply(std::vector<NDArray>& grads) override {
    std::vector<NDArray> result(1);
    if (needs_input_grad(0)) result[0] = backward_(grads.at(0), input_meta().at(0));
    return result;
  }

 private:
  const char* name_;
  Backward backward_;
};

template <typename Backward>
NDArray record_unary(const char* name, const NDArray& x, NDArray result, Backward backward) {
  if (should_record({&x}) && is_floating(result.dtype())) {
    record_node(std::make_shared<UnaryNode<Backward>>(name, std::move(backward)), {&x}, {&result});
  }
  return result;
}

}  // namespace

// The generated op (opdefs/creation/creation.yaml) fills on the array's own
// device and traces itself as a `full` node, which a graph re-runs (a head
// gradient of ones is made fresh on every run).
NDArray full(const Shape& shape, double value, DType dtype, Device device) {
  return op::full(ReduceDims(std::vector<std::int64_t>(shape.begin(), shape.end())), value, dtype, device);
}

NDArray zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }

NDArray scalar_like(double value, const NDArray& like) {
  return full({}, value, like.dtype(), like.device());
}

NDArray weak_scalar(double value, const NDArray& like, const NDArray& fallback) {
  const DType dtype = is_floating(like.dtype()) ? like.dtype() : fallback.dtype();
  return full({}, value, dtype, like.device());
}

// reshape and broadcast_to are the generated ops (opdefs/shape/views.yaml):
// they record their own backward and trace themselves.
NDArray reshape(const NDArray& x, const Shape& shape) {
  return op::reshape(x, ReduceDims(std::vector<std::int64_t>(shape.begin(), shape.end())));
}

NDArray broadcast_to(const NDArray& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  return op::broadcast_to(x, ReduceDims(std::vector<std::int64_t>(shape.begin(), shape.end())));
}

NDArray sum_to(const NDArray& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  const int lead = g.ndim() - static_cast<int>(shape.size());
  LOOM_CHECK(lead >= 0, "sum_to: cannot reduce ", g.describe(), " to shape ", shape_str(shape));
  std::vector<std::int64_t> dims;
  for (int d = 0; d < g.ndim(); ++d) {
    if (d < lead) {
      dims.push_back(d);
      continue;
    }
    const std::int64_t want = shape[d - lead];
    LOOM_CHECK(want == g.shape()[d] || want == 1, "sum_to: cannot reduce ", g.describe(),
               " to shape ", shape_str(shape));
    if (want == 1 && g.shape()[d] != 1) dims.push_back(d);
  }
  NDArray summed = op::sum(g, dims, /*keepdim=*/true);
  return reshape(summed, shape);
}

NDArray unreduce(const NDArray& reduced, const Shape& in_shape, const ReduceDims& dims, bool keepdim) {
  if (keepdim) return reduced;
  Shape kept = in_shape;
  const std::vector<bool> mask = reduced_dims("unreduce", in_shape, dims);
  for (std::size_t d = 0; d < kept.size(); ++d) {
    if (mask[d]) kept[d] = 1;
  }
  return reshape(reduced, kept);
}

// The generated cast op (opdefs/elementwise/cast.yaml) records the
// backward (a cast back) and traces itself.
NDArray astype(const NDArray& x, DType dtype) {
  if (x.dtype() == dtype) return x;
  return op::cast(x, dtype);
}

NDArray transpose(const NDArray& x) {
  if (graph::tracing()) return op::transpose(x, std::nullopt);  // the op, so the graph has it
  return record_unary("TransposeBackward", x, x.transpose().without_autograd(),
                      [](const NDArray& g, const TensorMeta&) { return transpose(g); });
}

NDArray swap_last_dims(const NDArray& x) {
  LOOM_CHECK(x.ndim() >= 2, "swap_last_dims: needs at least 2 dims, got ", x.describe());
  if (graph::tracing()) return op::swapaxes(x, -2, -1);  // the op, so the graph has it
  Shape shape = x.shape();
  Strides strides = x.strides();
  std::swap(shape[shape.size() - 1], shape[shape.size() - 2]);
  std::swap(strides[strides.size() - 1], strides[strides.size() - 2]);
  return record_unary("SwapLastDimsBackward", x, x.as_strided(shape, strides, x.offset()).without_autograd(),
                      [](const NDArray& g, const TensorMeta&) { return swap_last_dims(g); });
}

namespace {

// The view `index` selects, applied to any array of the indexed shape.
NDArray apply_index(const NDArray& a, const BasicIndex& index) {
  LOOM_CHECK_KIND(static_cast<int>(index.dims.size()) == a.ndim(), ErrorKind::kIndex, "index: ",
                  index.dims.size(), " indices for an array of shape ", shape_str(a.shape()));
  std::int64_t offset = a.offset();
  Shape shape;
  Strides strides;
  for (int d = 0; d < a.ndim(); ++d) {
    const BasicIndex::Dim& dim = index.dims[d];
    const std::int64_t n = a.shape()[d];
    if (!dim.keep) {
      LOOM_CHECK_KIND(dim.start >= 0 && dim.start < n, ErrorKind::kIndex, "index ", dim.start,
                      " is out of bounds for dim ", d, " with size ", n);
      offset += dim.start * a.strides()[d];
      continue;
    }
    LOOM_CHECK_KIND(dim.size == 0 || (dim.start >= 0 && dim.start < n && dim.start + (dim.size - 1) * dim.step >= 0 &&
                                      dim.start + (dim.size - 1) * dim.step < n),
                    ErrorKind::kIndex, "index: slice start ", dim.start, " step ", dim.step, " size ", dim.size,
                    " does not fit dim ", d, " of size ", n);
    if (dim.size > 0) offset += dim.start * a.strides()[d];
    shape.push_back(dim.size);
    strides.push_back(dim.step * a.strides()[d]);
  }
  for (int pos : index.new_axes) {
    LOOM_CHECK_KIND(pos >= 0 && pos <= static_cast<int>(shape.size()), ErrorKind::kIndex,
                    "index: new axis position ", pos, " out of range");
    shape.insert(shape.begin() + pos, 1);
    strides.insert(strides.begin() + pos, 0);
  }
  return a.as_strided(shape, strides, offset).without_autograd();
}

}  // namespace

NDArray index_view(const NDArray& x, const BasicIndex& index) {
  return record_unary("IndexBackward", x, apply_index(x, index),
                      [index](const NDArray& g, const TensorMeta& in) { return index_scatter(g, in.shape, index); });
}

NDArray index_scatter(const NDArray& g, const Shape& in_shape, const BasicIndex& index) {
  NDArray z = zeros(in_shape, g.dtype(), g.device());
  NDArray target = apply_index(z, index);
  {
    ModeScope quiet(false);  // the write below is this function's own business
    op::copy_out(target, g.without_autograd());
  }
  return record_unary("IndexScatterBackward", g, z,
                      [index](const NDArray& gg, const TensorMeta&) { return index_view(gg, index); });
}

NDArray to_device(const NDArray& x, Device device) {
  return record_unary("ToDeviceBackward", x, x.to(device).without_autograd(),
                      [](const NDArray& g, const TensorMeta& in) { return to_device(g, in.device); });
}

NDArray unslice(const NDArray& grad, const Shape& in_shape, const ReduceDims& begin, const ReduceDims& end,
                const ReduceDims& step) {
  BasicIndex index;
  for (const kernels::SliceDim& d : kernels::resolve_slice(in_shape, begin, end, step)) {
    index.dims.push_back({d.start, d.step, d.size, true});
  }
  return index_scatter(grad, in_shape, index);
}

NDArray unsplit(const std::vector<NDArray>& grads, std::int64_t axis, bool squeeze_axis) {
  return squeeze_axis ? op::stack(grads, axis) : op::concat(grads, axis);
}

NDArray unshuffle(const NDArray& grad, std::int64_t seed, std::int64_t offset) {
  const std::int64_t rows = grad.shape().at(0);
  const std::vector<std::int64_t> perm = kernels::shuffle_permutation(rows, seed, offset);
  std::vector<std::int64_t> inverse(perm.size());
  for (std::int64_t r = 0; r < rows; ++r) inverse[perm[r]] = r;
  const NDArray indices = NDArray::from_host(inverse.data(), rows, {rows}, DType::kInt64, grad.device());
  return op::take(grad, indices, 0);
}

NDArray unpermute(const NDArray& grad, const ReduceDims& dims) {
  if (!dims) return op::transpose(grad, std::nullopt);
  const std::int64_t n = grad.ndim();
  std::vector<std::int64_t> inverse(static_cast<std::size_t>(n));
  // dims were validated by the forward call; only negative entries remain to wrap.
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t d = (*dims)[i] < 0 ? (*dims)[i] + n : (*dims)[i];
    inverse[d] = i;
  }
  return op::transpose(grad, inverse);
}

namespace {

// A BasicIndex keeping every dim of `shape` whole except `dim`, where it
// takes `size` elements from `start` (keep) or the one at `start` (drop).
BasicIndex along(const Shape& shape, std::int64_t dim, std::int64_t start, std::int64_t size, bool keep) {
  BasicIndex index;
  for (std::size_t d = 0; d < shape.size(); ++d) index.dims.push_back({0, 1, shape[d], true});
  index.dims[dim] = {start, 1, size, keep};
  return index;
}

}  // namespace

std::vector<NDArray> unconcat(const NDArray& grad, const std::vector<Shape>& shapes, std::int64_t dim) {
  if (dim < 0) dim += grad.ndim();
  std::vector<NDArray> pieces;
  std::int64_t start = 0;
  for (const Shape& s : shapes) {
    pieces.push_back(index_view(grad, along(grad.shape(), dim, start, s[dim], true)));
    start += s[dim];
  }
  return pieces;
}

std::vector<NDArray> unstack(const NDArray& grad, const std::vector<Shape>& shapes, std::int64_t dim) {
  if (dim < 0) dim += grad.ndim();
  std::vector<NDArray> slices;
  const auto count = static_cast<std::int64_t>(shapes.size());
  for (std::int64_t i = 0; i < count; ++i) slices.push_back(index_view(grad, along(grad.shape(), dim, i, 1, false)));
  return slices;
}

NDArray take_backward(const NDArray& grad, const NDArray& indices, const Shape& x_shape, std::int64_t dim) {
  const auto rank = static_cast<std::int64_t>(x_shape.size());
  if (dim < 0) dim += rank;
  // grad is x_shape[:dim] + indices.shape + x_shape[dim+1:]: fold the
  // indices' dims into one, as index_add takes a 1-d list of indices.
  Shape folded(x_shape.begin(), x_shape.begin() + dim);
  folded.push_back(indices.numel());
  folded.insert(folded.end(), x_shape.begin() + dim + 1, x_shape.end());
  const NDArray flat_indices = reshape(indices, Shape{indices.numel()});
  return op::index_add(zeros(x_shape, grad.dtype(), grad.device()), flat_indices, reshape(grad, folded), dim);
}

NDArray untile(const NDArray& grad, const Shape& x_shape, const ReduceDims& reps) {
  Shape in = x_shape;
  std::vector<std::int64_t> r = *reps;
  while (in.size() < r.size()) in.insert(in.begin(), 1);
  while (r.size() < in.size()) r.insert(r.begin(), 1);
  Shape split;  // (r0, s0, r1, s1, ...)
  std::vector<std::int64_t> copies;
  for (std::size_t i = 0; i < in.size(); ++i) {
    split.insert(split.end(), {r[i], in[i]});
    copies.push_back(static_cast<std::int64_t>(2 * i));
  }
  return reshape(op::sum(reshape(grad, split), copies, false), x_shape);
}

NDArray unrepeat(const NDArray& grad, const Shape& x_shape, std::int64_t repeats, std::int64_t dim) {
  if (dim < 0) dim += static_cast<std::int64_t>(x_shape.size());
  Shape split = x_shape;
  split.insert(split.begin() + dim + 1, repeats);
  return op::sum(reshape(grad, split), std::vector<std::int64_t>{dim + 1}, false);
}

NDArray unpad(const NDArray& grad, const Shape& x_shape, const ReduceDims& pad_width) {
  BasicIndex index;
  for (std::size_t d = 0; d < x_shape.size(); ++d) index.dims.push_back({(*pad_width)[2 * d], 1, x_shape[d], true});
  return index_view(grad, index);
}

}  // namespace loom::autograd
