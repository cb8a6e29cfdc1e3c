// Gradients of the neural-network ops, as differentiable compositions of
// loom ops (so they have gradients themselves). The YAML of convolution
// and deconvolution calls them, e.g.
//   x: conv_data_grad(grad, weight, x.shape, stride, padding, dilation, groups)
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/dispatch/reduce_call.h"
#include "runtime/ndarray/ndarray.h"

namespace loom::autograd {

// The gradient of convolution(x, weight) with respect to x, for the
// incoming gradient `grad`: the transposed convolution of grad whose
// output has x's shape (the output_padding that gives it is derived here).
NDArray conv_data_grad(const NDArray& grad, const NDArray& weight, const Shape& x_shape, const ReduceDims& stride,
                       const ReduceDims& padding, const ReduceDims& dilation, std::int64_t groups);

// The gradient with respect to the weight: convolution_weight_grad with
// the kernel size read from the weight's shape.
NDArray conv_weight_grad(const NDArray& x, const NDArray& grad_out, const Shape& weight_shape,
                         const ReduceDims& stride, const ReduceDims& padding, const ReduceDims& dilation,
                         std::int64_t groups);

// convolution without a bias (a gradient formula has no None to pass).
NDArray convolution_nobias(const NDArray& x, const NDArray& weight, const ReduceDims& stride,
                           const ReduceDims& padding, const ReduceDims& dilation, std::int64_t groups);

// max_pool's gradient: grad (batch, channels, *pooled) added at the input
// positions `indices` (flat within each (batch, channel) plane) of a zero
// array of x's shape. Made of scatter_add, so it has a gradient itself.
NDArray pool_scatter(const NDArray& grad, const NDArray& indices, const Shape& x_shape);

// avg_pool's gradient: avg_pool_grad with the input size read from x's shape.
NDArray avg_pool_data_grad(const NDArray& grad, const Shape& x_shape, const ReduceDims& kernel,
                           const ReduceDims& stride, const ReduceDims& padding, bool ceil_mode,
                           bool count_include_pad);

// batch_norm's gradients of x, weight and bias (those `wanted`; the others
// undefined), for the incoming gradient `grad` and the forward's saved
// batch mean and 1/sqrt(var + eps) (the running ones when not training).
// A first-order backward runs the fused kernel (two passes over grad and
// x); while recording (create_graph) it is made of loom ops and
// recomputes the batch statistics from x, so its own gradient is exact.
// With relu (a fused BatchNorm + ReLU), grad flows only where the output
// `out` is positive: the fused kernel recomputes that mask from x and the
// per-channel scale and shift (bias is read for it), the ops from `out`.
std::vector<NDArray> batch_norm_backward(const NDArray& grad, const NDArray& x, const NDArray& weight,
                                         const NDArray& bias, const NDArray& mean, const NDArray& invstd,
                                         const NDArray& out, bool training, double eps, bool relu,
                                         const std::vector<bool>& wanted);

// layer_norm's gradients of x, weight and bias, as batch_norm_backward's.
std::vector<NDArray> layer_norm_backward(const NDArray& grad, const NDArray& x, const NDArray& weight,
                                         const NDArray& mean, const NDArray& invstd, std::int64_t axis, double eps,
                                         const std::vector<bool>& wanted);

// group_norm: x (N, C, ...) as (N, groups, rest) through layer_norm, back
// to x's shape, then weight and bias per channel (either may be undefined).
// instance_norm: the same with one group per channel.
NDArray group_norm_body(const NDArray& x, const NDArray& weight, const NDArray& bias, std::int64_t num_groups,
                        double eps);
NDArray instance_norm_body(const NDArray& x, const NDArray& weight, const NDArray& bias, double eps);

// scaled_dot_product_attention's gradients of q, k and v, for the
// incoming gradient, the inputs, the output and the saved log-sum-exp of
// each query row. First order on the CPU: the fused blocked kernel;
// otherwise (recording, or a GPU) loom ops, recomputing the probabilities.
std::vector<NDArray> attention_backward(const NDArray& grad, const NDArray& q, const NDArray& k, const NDArray& v,
                                        const NDArray& out, const NDArray& lse, const NDArray& valid_length,
                                        bool causal, double scale, const std::vector<bool>& wanted);

// lstm_layer's gradients of x, h0, c0, w_ih, w_hh, b_ih, b_hh (in that
// order; those not wanted undefined) from the gradients arriving at y,
// h_n, c_n (any may be undefined: zero) and the saved gates and cells:
// the fused kernel. First order only: while recording it raises an error.
std::vector<NDArray> lstm_backward(const NDArray& gy, const NDArray& ghn, const NDArray& gcn, const NDArray& x,
                                   const NDArray& h0, const NDArray& c0, const NDArray& w_ih, const NDArray& w_hh,
                                   const NDArray& y, const NDArray& gates, const NDArray& cells,
                                   bool reverse, const std::vector<bool>& wanted);

// gru_layer's gradients of x, h0, w_ih, w_hh, b_ih, b_hh (in that order),
// as lstm_backward's: the fused kernel, first order only.
std::vector<NDArray> gru_backward(const NDArray& gy, const NDArray& ghn, const NDArray& x, const NDArray& h0,
                                  const NDArray& w_ih, const NDArray& w_hh, const NDArray& y, const NDArray& gates,
                                  bool reverse, const std::vector<bool>& wanted);

// rnn_layer's gradients of x, h0, w_ih, w_hh, b_ih, b_hh (in that order),
// as lstm_backward's: the fused kernel, first order only.
std::vector<NDArray> rnn_backward(const NDArray& gy, const NDArray& ghn, const NDArray& x, const NDArray& h0,
                                  const NDArray& w_ih, const NDArray& w_hh, const NDArray& y, bool reverse, bool relu,
                                  const std::vector<bool>& wanted);

// adaptive_avg_pool's gradient (adaptive_avg_pool_grad to x's spatial
// size), and adaptive_avg_pool to the spatial size of `like_shape` (the
// gradient of adaptive_avg_pool_grad).
NDArray adaptive_avg_pool_data_grad(const NDArray& grad, const Shape& x_shape);
NDArray adaptive_avg_pool_like(const NDArray& x, const Shape& like_shape);

// The upsampling ops' gradients: the adjoint op to x's spatial size, and
// the op itself to the spatial size of `like_shape` (the adjoint's gradient).
NDArray upsample_nearest_data_grad(const NDArray& grad, const Shape& x_shape);
NDArray upsample_nearest_like(const NDArray& x, const Shape& like_shape);
NDArray upsample_bilinear_data_grad(const NDArray& grad, const Shape& x_shape, bool align_corners);
NDArray upsample_bilinear_like(const NDArray& x, const Shape& like_shape, bool align_corners);

// softmax_cross_entropy's gradient of the logits, made of loom ops (so it
// differentiates again): ((prob - (1 - e) onehot(label) - e / classes)
// * grad_loss, zero where label == ignore_index, plus the term carrying a
// gradient that reaches the saved probabilities (grad_prob; undefined: none).
NDArray softmax_cross_entropy_grad(const NDArray& grad_loss, const NDArray& grad_prob, const NDArray& prob,
                                   const NDArray& label, std::int64_t dim, std::int64_t ignore_index,
                                   double label_smoothing);

// ctc_loss's gradient of log_probs for the incoming gradient (N,): the
// fused alpha-beta kernel; first order only (recording raises an error).
NDArray ctc_loss_grad(const NDArray& grad, const NDArray& log_probs, const NDArray& targets,
                      const NDArray& input_lengths, const NDArray& target_lengths, const NDArray& loss,
                      std::int64_t blank);

// The sum over every dim but dim 1 (the channels): a per-channel bias's
// gradient, (C,) from (N, C, ...).
NDArray channel_sum(const NDArray& grad);

}  // namespace loom::autograd
