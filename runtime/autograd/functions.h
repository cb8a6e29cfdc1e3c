// Differentiable array functions that are not generated from opdefs/: the
// shape plumbing gradient formulas need (reshape, broadcast_to, sum_to,
// unreduce), dtype/device moves, and constant makers. Each records a node
// when autograd is recording, so gradients of gradients work through them.
#pragma once

#include <vector>

#include "runtime/dispatch/reduce_call.h"
#include "runtime/ndarray/ndarray.h"

namespace loom::autograd {

// A new array filled with `value`: loom::op::full (a `full` node when traced).
NDArray full(const Shape& shape, double value, DType dtype, Device device);
NDArray zeros(const Shape& shape, DType dtype, Device device);
// A 0-d array holding `value` in `like`'s dtype and device: how gradient
// formulas turn a Python number into an operand (a "weak" scalar).
NDArray scalar_like(double value, const NDArray& like);
// The same, but a bool or integer `like` (a comparison's result) takes the
// dtype of `fallback` (the incoming gradient in a formula), so constants in
// gradient formulas never lose precision or round to integers.
NDArray weak_scalar(double value, const NDArray& like, const NDArray& fallback);

// Same elements in a new shape (one dim may be -1); a view when `x` is
// contiguous, a copy otherwise. Gradient: reshape back.
NDArray reshape(const NDArray& x, const Shape& shape);
// `x` repeated along broadcast dims, as a view with stride 0. Gradient: sum_to.
NDArray broadcast_to(const NDArray& x, const Shape& shape);
// Sums `g` down to `shape`, which must broadcast to g's shape: the gradient
// of broadcasting. Returns `g` itself when the shapes match.
NDArray sum_to(const NDArray& g, const Shape& shape);
// The result of a reduction over `dims` of an `in_shape` array, with the
// reduced dims put back as size 1 (a no-op with keepdim), so it broadcasts
// against the input.
NDArray unreduce(const NDArray& reduced, const Shape& in_shape, const ReduceDims& dims, bool keepdim);
// Values in another dtype. Gradient: cast back to x's dtype.
NDArray astype(const NDArray& x, DType dtype);
// Axes reversed, as a view. Gradient: transpose.
NDArray transpose(const NDArray& x);
// The last two axes swapped, as a view (a batch of matrices transposed).
// Gradient: swap back. Needs at least two dims.
NDArray swap_last_dims(const NDArray& x);
// The gradient of transpose(x, dims): grad with the inverse permutation
// applied (dims None, a reversal, is its own inverse).
NDArray unpermute(const NDArray& grad, const ReduceDims& dims);
// The gradient of slice(x, begin, end, step): zeros of x's shape with grad
// in the slice (index_scatter).
NDArray unslice(const NDArray& grad, const Shape& in_shape, const ReduceDims& begin, const ReduceDims& end,
                const ReduceDims& step);
// The gradient of split(x, num_outputs, axis, squeeze_axis): the parts'
// gradients (one per output, zeros where none arrived) joined back along
// axis: stacked when split squeezed it, else concatenated.
NDArray unsplit(const std::vector<NDArray>& grads, std::int64_t axis, bool squeeze_axis);
// The gradient of shuffle_seeded(x, seed, offset): grad's rows put back in
// x's order (take with the inverse permutation, so gradgrad works).
NDArray unshuffle(const NDArray& grad, std::int64_t seed, std::int64_t offset);
// A copy on `device`. Gradient: copied back.
NDArray to_device(const NDArray& x, Device device);

// Basic indexing (x[1, 2:8:3, None, ::-1]) as a view. Per source dim either
// an integer index (the dim is dropped) or a range start, start+step, ...
// of `size` elements (step may be negative); `new_axes` are the output
// positions of inserted size-1 dims. Python's __getitem__ builds it.
struct BasicIndex {
  struct Dim {
    std::int64_t start = 0, step = 1, size = 0;
    bool keep = true;  // false: indexed by the integer `start`
  };
  std::vector<Dim> dims;
  std::vector<int> new_axes;
};
// The view of `x` (no copy). Gradient: index_scatter.
NDArray index_view(const NDArray& x, const BasicIndex& index);
// Zeros of `in_shape` with `g` written at the view `index` selects: the
// gradient of index_view. Gradient: index_view.
NDArray index_scatter(const NDArray& g, const Shape& in_shape, const BasicIndex& index);

// The gradient of concat: `grad` cut along `dim` into views of the inputs'
// shapes. Each piece is an index_view, so gradients of gradients work.
std::vector<NDArray> unconcat(const NDArray& grad, const std::vector<Shape>& shapes, std::int64_t dim);
// The gradient of stack: `grad`'s slices along `dim` (views), one per
// stacked array (`shapes` holds their shapes).
std::vector<NDArray> unstack(const NDArray& grad, const std::vector<Shape>& shapes, std::int64_t dim);

// The gradient of take(x, indices, dim): zeros of x's shape with `grad`'s
// slices added at `indices` along `dim` (repeated indices accumulate), made
// of index_add, so gradients of gradients work.
NDArray take_backward(const NDArray& grad, const NDArray& indices, const Shape& x_shape, std::int64_t dim);

// Gradients of tile, repeat and pad (opdefs/shape/expand.yaml), made of
// differentiable reshapes, sums and views: the sum of grad over the copies
// each input element made (tile, repeat), or the interior slab (pad).
NDArray untile(const NDArray& grad, const Shape& x_shape, const ReduceDims& reps);
NDArray unrepeat(const NDArray& grad, const Shape& x_shape, std::int64_t repeats, std::int64_t dim);
NDArray unpad(const NDArray& grad, const Shape& x_shape, const ReduceDims& pad_width);

}  // namespace loom::autograd
