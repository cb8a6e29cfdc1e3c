// Gradients of matrix products, as differentiable compositions of loom ops
// (so they have gradients themselves). The YAML of matmul calls them:
//   a: matmul_grad_a(grad, a.shape, b)
//   b: matmul_grad_b(grad, a, b.shape)
// Results may keep broadcast batch dims; the backward pass sums them away.
#pragma once

#include "runtime/ndarray/ndarray.h"

namespace loom::autograd {

// d(a @ b)/da contracted with grad: grad @ b^T, with NumPy's vector rules.
NDArray matmul_grad_a(const NDArray& grad, const Shape& a_shape, const NDArray& b);
// d(a @ b)/db contracted with grad: a^T @ grad, with NumPy's vector rules.
NDArray matmul_grad_b(const NDArray& grad, const NDArray& a, const Shape& b_shape);

}  // namespace loom::autograd
