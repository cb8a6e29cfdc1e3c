#include "runtime/autograd/linalg_grad.h"

#include "loom/ops/matmul.h"
#include "runtime/autograd/functions.h"

namespace loom::autograd {
namespace {

// The gradient reshaped to the product of the 2-D forms of a and b: a 1-D a
// was a (1, k) row, a 1-D b a (k, 1) column, and their dims were dropped.
NDArray grad_as_matrix(const NDArray& grad, bool a_vector, bool b_vector) {
  Shape s = grad.shape();
  if (a_vector && b_vector) {
    s = {1, 1};
  } else if (a_vector) {
    s.insert(s.end() - 1, 1);
  } else if (b_vector) {
    s.push_back(1);
  }
  return reshape(grad, s);
}

}  // namespace

NDArray matmul_grad_a(const NDArray& grad, const Shape& a_shape, const NDArray& b) {
  const bool a_vector = a_shape.size() == 1, b_vector = b.ndim() == 1;
  const NDArray b2 = b_vector ? reshape(b, {b.shape()[0], 1}) : b;
  // (..., n, m) @ (..., m, k): for a 1-D a the result is (..., 1, k), which
  // the backward pass sums down to (k,) like any broadcast batch dim.
  return op::matmul(grad_as_matrix(grad, a_vector, b_vector), swap_last_dims(b2));
}

NDArray matmul_grad_b(const NDArray& grad, const NDArray& a, const Shape& b_shape) {
  const bool a_vector = a.ndim() == 1, b_vector = b_shape.size() == 1;
  const NDArray a2 = a_vector ? reshape(a, {1, a.shape()[0]}) : a;
  NDArray g = op::matmul(swap_last_dims(a2), grad_as_matrix(grad, a_vector, b_vector));  // (..., k, m)
  if (b_vector) {  // (..., k, 1) -> (..., k): the column's dim goes
    Shape s = g.shape();
    s.pop_back();
    g = reshape(g, s);
  }
  return g;
}

}  // namespace loom::autograd
