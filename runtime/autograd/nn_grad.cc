// See nn_grad.h.
#include "runtime/autograd/nn_grad.h"

#include <vector>

#include "loom/ops/adaptive_avg_pool.h"
#include "loom/ops/adaptive_avg_pool_grad.h"
#include "loom/ops/add.h"
#include "loom/ops/avg_pool_grad.h"
#include "loom/ops/convolution.h"
#include "loom/ops/convolution_weight_grad.h"
#include "loom/ops/copy.h"
#include "loom/ops/deconvolution.h"
#include "loom/ops/expand_dims.h"
#include "loom/ops/gt.h"
#include "loom/ops/layer_norm.h"
#include "loom/ops/matmul.h"
#include "loom/ops/mean.h"
#include "loom/ops/mul.h"
#include "loom/ops/ne.h"
#include "loom/ops/rsqrt.h"
#include "loom/ops/scatter_add.h"
#include "loom/ops/softmax.h"
#include "loom/ops/sub.h"
#include "loom/ops/sum.h"
#include "loom/ops/upsample_bilinear.h"
#include "loom/ops/where.h"
#include "loom/ops/upsample_bilinear_grad.h"
#include "loom/ops/upsample_nearest.h"
#include "loom/ops/upsample_nearest_grad.h"
#include "loom/ops/where.h"
#include "microkernel/base/error.h"
#include "runtime/autograd/functions.h"
#include "runtime/autograd/grad_mode.h"
#include "runtime/dispatch/launch.h"
#include "runtime/kernels/attention_kernels.h"
#include "runtime/kernels/attention_layout.h"
#include "runtime/kernels/batch_norm_kernels.h"
#include "runtime/kernels/ctc_kernels.h"
#include "runtime/kernels/gru_kernels.h"
#include "runtime/kernels/layer_norm_kernels.h"
#include "runtime/kernels/lstm_kernels.h"
#include "runtime/kernels/pool_kernels.h"
#include "runtime/kernels/rnn_kernels.h"
#include "runtime/kernels/conv_geometry.h"

namespace loom::autograd {
namespace {

[[maybe_unused]] [[noreturn]] void no_cuda(const char* op, const NDArray& x) {
  LOOM_THROW(ErrorKind::kNotImplemented, op, ": ", x.describe(), " is on a GPU in a build without CUDA");
}

}  // namespace

NDArray conv_data_grad(const NDArray& grad, const NDArray& weight, const Shape& x_shape, const ReduceDims& stride,
                       const ReduceDims& padding, const ReduceDims& dilation, std::int64_t groups) {
  const kernels::ConvGeometry g = kernels::conv_geometry("convolution (backward)", x_shape, weight.shape(), stride,
                                                         padding, dilation, groups);
  // The transposed convolution's natural size can fall short of x's by up
  // to stride - 1 (a strided convolution drops the input's last rows):
  // output_padding restores them.
  std::vector<std::int64_t> extra(static_cast<std::size_t>(g.spatial_dims));
  for (int d = 0; d < g.spatial_dims; ++d) {
    const int k = 3 - g.spatial_dims + d;
    extra[static_cast<std::size_t>(d)] =
        g.image[k] - ((g.cols[k] - 1) * g.stride[k] - 2 * g.pad[k] + g.dilation[k] * (g.kernel[k] - 1) + 1);
  }
  return op::deconvolution(grad, weight, NDArray(), stride, padding, ReduceDims(extra), dilation, groups);
}

NDArray conv_weight_grad(const NDArray& x, const NDArray& grad_out, const Shape& weight_shape,
                         const ReduceDims& stride, const ReduceDims& padding, const ReduceDims& dilation,
                         std::int64_t groups) {
  const std::vector<std::int64_t> kernel(weight_shape.begin() + 2, weight_shape.end());
  return op::convolution_weight_grad(x, grad_out, ReduceDims(kernel), stride, padding, dilation, groups);
}

NDArray convolution_nobias(const NDArray& x, const NDArray& weight, const ReduceDims& stride,
                           const ReduceDims& padding, const ReduceDims& dilation, std::int64_t groups) {
  return op::convolution(x, weight, NDArray(), stride, padding, dilation, groups);
}

NDArray pool_scatter(const NDArray& grad, const NDArray& indices, const Shape& x_shape) {
  if (!is_recording()) {  // first order: one fused pass (zeros, then the scatter, plane by plane)
    const DType compute = grad.dtype() == DType::kFloat64 ? DType::kFloat64 : DType::kFloat32;
    const NDArray g = grad.dtype() == compute ? grad : grad.astype(compute);
    NDArray dx = NDArray::empty(x_shape, compute, grad.device());
    if (grad.device().is_cpu()) {
      launch("max_pool (backward)", std::vector<NDArray>{g, indices}, std::vector<NDArray>{dx},
             [=]() mutable { kernels::max_pool_scatter_cpu(dx, g, indices); });
    } else {
#if LOOM_WITH_CUDA
      if (should_run_kernels()) kernels::max_pool_scatter_cuda(dx, g, indices);
#else
      no_cuda("max_pool (backward)", grad);
#endif
    }
    return dx.dtype() == grad.dtype() ? dx : dx.astype(grad.dtype());
  }
  // each (batch, channel) plane flattened: indices are positions within one
  const auto planes = [](const Shape& s) {
    const std::int64_t lead = s[0] * s[1];
    return Shape{s[0], s[1], lead == 0 ? 0 : shape_numel(s) / lead};
  };
  const NDArray zeros = full(planes(x_shape), 0.0, grad.dtype(), grad.device());
  const NDArray spread = op::scatter_add(zeros, reshape(indices, planes(indices.shape())),
                                         reshape(grad, planes(grad.shape())), 2);
  return reshape(spread, x_shape);
}

NDArray avg_pool_data_grad(const NDArray& grad, const Shape& x_shape, const ReduceDims& kernel,
                           const ReduceDims& stride, const ReduceDims& padding, bool ceil_mode,
                           bool count_include_pad) {
  const std::vector<std::int64_t> size(x_shape.begin() + 2, x_shape.end());
  return op::avg_pool_grad(grad, ReduceDims(size), kernel, stride, padding, ceil_mode, count_include_pad);
}

namespace {

// every dim of an (N, C, ...) array but the channels
ReduceDims all_but_channels(int ndim) {
  std::vector<std::int64_t> dims{0};
  for (int d = 2; d < ndim; ++d) dims.push_back(d);
  return ReduceDims(dims);
}

// (C,) as (1, C, 1, ...): broadcastable against an (N, C, ...) array
NDArray per_channel(const NDArray& v, int ndim) {
  Shape s(static_cast<std::size_t>(ndim), 1);
  s[1] = v.shape()[0];
  return reshape(v, s);
}

std::vector<NDArray> batch_norm_backward_ops(const NDArray& g, const NDArray& x, const NDArray& weight,
                                             const NDArray& mean, const NDArray& invstd, bool training, double eps,
                                             const std::vector<bool>& wanted) {
  const int nd = x.ndim();
  const ReduceDims dims = all_but_channels(nd);
  NDArray mu, inv;
  if (training) {  // recomputed from x, so their dependence on x is differentiated too
    mu = op::mean(x, dims, true);
    const NDArray centered = op::sub(x, mu);
    const NDArray var = op::mean(op::mul(centered, centered), dims, true);
    inv = op::rsqrt(op::add(var, full({}, eps, var.dtype(), var.device())));
  } else {
    mu = per_channel(mean, nd);
    inv = per_channel(invstd, nd);
  }
  const NDArray xhat = op::mul(op::sub(x, mu), inv);
  std::vector<NDArray> out(3);
  if (wanted[0]) {
    const NDArray gw = weight.defined() ? op::mul(g, per_channel(weight, nd)) : g;
    if (training) {
      const NDArray centered_g = op::sub(op::sub(gw, op::mean(gw, dims, true)),
                                         op::mul(xhat, op::mean(op::mul(gw, xhat), dims, true)));
      out[0] = op::mul(inv, centered_g);
    } else {
      out[0] = op::mul(gw, inv);
    }
  }
  if (wanted[1]) out[1] = op::sum(op::mul(g, xhat), dims, false);
  if (wanted[2]) out[2] = op::sum(g, dims, false);
  return out;
}

}  // namespace

namespace {

// The fused first-order backward of a normalisation: the kernels compute in
// float32 or float64 (float16/bfloat16 through float32 copies, the results
// rounded back), dx like x, dweight and dbias of `param_shape`; `kernel`
// runs on the engine for the CPU and directly for a GPU (queued on its stream).
template <typename Kernel>
std::vector<NDArray> fused_norm_backward(const char* op, const NDArray& grad, const NDArray& x, const NDArray& weight,
                                         const NDArray& mean, const NDArray& invstd, const Shape& param_shape,
                                         const std::vector<bool>& wanted, Kernel kernel) {
  const DType dtype = x.dtype();
  const DType compute = dtype == DType::kFloat64 ? DType::kFloat64 : DType::kFloat32;
  auto as_compute = [&](const NDArray& a) { return a.defined() && a.dtype() != compute ? a.astype(compute) : a; };
  const NDArray g = as_compute(grad), xc = as_compute(x), w = as_compute(weight), m = as_compute(mean),
                i = as_compute(invstd);
  std::vector<NDArray> out{wanted[0] ? NDArray::empty(x.shape(), compute, x.device()) : NDArray(),
                           wanted[1] ? NDArray::empty(param_shape, compute, x.device()) : NDArray(),
                           wanted[2] ? NDArray::empty(param_shape, compute, x.device()) : NDArray()};
  if (x.device().is_cpu()) {
    std::vector<NDArray> reads{g, xc, m, i};
    if (w.defined()) reads.push_back(w);
    std::vector<NDArray> writes;
    for (const NDArray& o : out) {
      if (o.defined()) writes.push_back(o);
    }
    launch(op, reads, writes, [=]() mutable { kernel(true, out, g, xc, w, m, i); });
  } else {
    if (should_run_kernels()) kernel(false, out, g, xc, w, m, i);
  }
  for (NDArray& o : out) {
    if (o.defined() && o.dtype() != dtype) o = o.astype(dtype);
  }
  return out;
}

// layer_norm's gradients as loom ops (recording): the statistics recomputed from x
std::vector<NDArray> layer_norm_backward_ops(const NDArray& g, const NDArray& x, const NDArray& weight,
                                             std::int64_t axis, double eps, const std::vector<bool>& wanted) {
  const std::int64_t a = axis < 0 ? axis + x.ndim() : axis;
  std::vector<std::int64_t> cols, rows;
  for (std::int64_t d = 0; d < x.ndim(); ++d) (d < a ? rows : cols).push_back(d);
  const ReduceDims col_dims(cols), row_dims(rows);
  const NDArray mu = op::mean(x, col_dims, true);
  const NDArray centered = op::sub(x, mu);
  const NDArray var = op::mean(op::mul(centered, centered), col_dims, true);
  const NDArray inv = op::rsqrt(op::add(var, full({}, eps, var.dtype(), var.device())));
  const NDArray xhat = op::mul(centered, inv);
  std::vector<NDArray> out(3);
  if (wanted[0]) {
    const NDArray gw = weight.defined() ? op::mul(g, weight) : g;
    out[0] = op::mul(inv, op::sub(op::sub(gw, op::mean(gw, col_dims, true)),
                                  op::mul(xhat, op::mean(op::mul(gw, xhat), col_dims, true))));
  }
  if (wanted[1]) out[1] = op::sum(op::mul(g, xhat), row_dims, false);
  if (wanted[2]) out[2] = op::sum(g, row_dims, false);
  return out;
}

}  // namespace

std::vector<NDArray> batch_norm_backward(const NDArray& grad, const NDArray& x, const NDArray& weight,
                                         const NDArray& bias, const NDArray& mean, const NDArray& invstd,
                                         const NDArray& out, bool training, double eps, bool relu,
                                         const std::vector<bool>& wanted) {
  // The ReLU's mask as ops (recording, and the GPU's kernel, which has no
  // fused mask): zero where the output is not positive.
  const auto masked = [&] {
    const NDArray zero = full({}, 0.0, grad.dtype(), grad.device());
    return op::where(op::gt(out, full({}, 0.0, out.dtype(), out.device())), grad, zero);
  };
  if (is_recording() || x.numel() == 0) {
    return batch_norm_backward_ops(relu ? masked() : grad, x, weight, mean, invstd, training, eps, wanted);
  }
  // On the CPU the fused kernel masks by itself, from x and the scale and
  // shift, and reads the bias in the kernels' dtype for it.
  const bool cpu_mask = relu && x.device().is_cpu();
  const DType compute = x.dtype() == DType::kFloat64 ? DType::kFloat64 : DType::kFloat32;
  const NDArray b = !cpu_mask || !bias.defined() ? NDArray() : bias.dtype() == compute ? bias : bias.astype(compute);
  return fused_norm_backward(
      "batch_norm (backward)", relu && !cpu_mask ? masked() : grad, x, weight, mean, invstd, Shape{x.shape()[1]},
      wanted,
      [training, cpu_mask, b](bool cpu, std::vector<NDArray>& o, const NDArray& g, const NDArray& xc,
                              const NDArray& w, const NDArray& m, const NDArray& i) {
        if (cpu) return kernels::batch_norm_backward_cpu(o[0], o[1], o[2], g, xc, w, b, m, i, training, cpu_mask);
#if LOOM_WITH_CUDA
        kernels::batch_norm_backward_cuda(o[0], o[1], o[2], g, xc, w, m, i, training);
#else
        no_cuda("batch_norm (backward)", xc);
#endif
      });
}

std::vector<NDArray> layer_norm_backward(const NDArray& grad, const NDArray& x, const NDArray& weight,
                                         const NDArray& mean, const NDArray& invstd, std::int64_t axis, double eps,
                                         const std::vector<bool>& wanted) {
  if (is_recording() || x.numel() == 0) return layer_norm_backward_ops(grad, x, weight, axis, eps, wanted);
  const std::int64_t a = axis < 0 ? axis + x.ndim() : axis;
  const Shape params(x.shape().begin() + a, x.shape().end());
  return fused_norm_backward(
      "layer_norm (backward)", grad, x, weight, mean, invstd, params, wanted,
      [axis](bool cpu, std::vector<NDArray>& o, const NDArray& g, const NDArray& xc, const NDArray& w,
             const NDArray& m, const NDArray& i) {
        if (cpu) return kernels::layer_norm_backward_cpu(o[0], o[1], o[2], g, xc, w, m, i, axis);
#if LOOM_WITH_CUDA
        kernels::layer_norm_backward_cuda(o[0], o[1], o[2], g, xc, w, m, i, axis);
#else
        no_cuda("layer_norm (backward)", xc);
#endif
      });
}

namespace {

// layer_norm over each of `groups` groups of x's channels, then the
// per-channel affine map. Messages leave out the op's name: the generated
// wrapper puts group_norm's or instance_norm's in front.
NDArray grouped_norm(const NDArray& x, const NDArray& weight, const NDArray& bias, std::int64_t groups,
                     double eps) {
  const std::int64_t n = x.shape()[0], c = x.shape()[1];
  for (const auto& [name, p] : {std::pair<const char*, const NDArray*>{"weight", &weight}, {"bias", &bias}}) {
    LOOM_CHECK(!p->defined() || (p->ndim() == 1 && p->shape()[0] == c), name, " must be (channels,) = (", c,
               ",), got ", p->describe());
  }
  const std::int64_t rest = n * c == 0 ? 0 : shape_numel(x.shape()) / (n * groups);
  NDArray y = reshape(op::layer_norm(reshape(x, {n, groups, rest}), NDArray(), NDArray(), -1, eps), x.shape());
  if (weight.defined()) y = op::mul(y, per_channel(weight, x.ndim()));
  if (bias.defined()) y = op::add(y, per_channel(bias, x.ndim()));
  return y;
}

}  // namespace

NDArray group_norm_body(const NDArray& x, const NDArray& weight, const NDArray& bias, std::int64_t num_groups,
                        double eps) {
  const std::int64_t c = x.shape()[1];
  LOOM_CHECK(num_groups >= 1 && c % num_groups == 0, "the channels (", c, ") of x ", x.describe(),
             " must divide into num_groups (", num_groups, "), a positive divisor of them");
  return grouped_norm(x, weight, bias, num_groups, eps);
}

NDArray instance_norm_body(const NDArray& x, const NDArray& weight, const NDArray& bias, double eps) {
  // One value per (sample, channel) normalises to exactly 0: torch refuses
  // it ("Expected more than 1 spatial element"), and so does loom.
  std::int64_t spatial = 1;
  for (std::size_t d = 2; d < x.ndim(); ++d) spatial *= x.shape()[d];
  LOOM_CHECK(spatial != 1, "x ", x.describe(), " has one spatial element per channel; instance normalisation "
             "needs more (each channel would normalise to 0)");
  return grouped_norm(x, weight, bias, x.shape()[1], eps);
}

std::vector<NDArray> attention_backward(const NDArray& grad, const NDArray& q, const NDArray& k, const NDArray& v,
                                        const NDArray& out, const NDArray& lse, const NDArray& valid_length,
                                        bool causal, double scale, const std::vector<bool>& wanted) {
  const kernels::AttentionLayout a = kernels::attention_layout(q, k, v, valid_length, scale);
  const bool fused = !is_recording() && q.device().is_cpu() &&
                     (q.dtype() == DType::kFloat32 || q.dtype() == DType::kFloat64) && q.dtype() == grad.dtype();
#if LOOM_WITH_CUDA
  // the flash backward, at once on the GPU's stream
  if (!is_recording() && q.device().is_gpu() && q.dtype() == grad.dtype() &&
      kernels::attention_flash_cuda_supported(a, q.dtype(), q.device().id, true)) {
    std::vector<NDArray> g{NDArray::empty(q.shape(), q.dtype(), q.device()),
                           NDArray::empty(k.shape(), q.dtype(), q.device()),
                           NDArray::empty(v.shape(), q.dtype(), q.device())};
    if (should_run_kernels()) {
      kernels::attention_backward_cuda(g[0], g[1], g[2], grad, q, k, v, out, lse, valid_length, causal, scale);
    }
    return g;
  }
#endif
  if (fused) {
    std::vector<NDArray> g{NDArray::empty(q.shape(), q.dtype(), q.device()),
                           NDArray::empty(k.shape(), q.dtype(), q.device()),
                           NDArray::empty(v.shape(), q.dtype(), q.device())};
    std::vector<NDArray> reads{grad, q, k, v, out, lse};
    if (valid_length.defined()) reads.push_back(valid_length);
    launch("scaled_dot_product_attention (backward)", reads, g, [=]() mutable {
      kernels::attention_backward_cpu(g[0], g[1], g[2], grad, q, k, v, out, lse, valid_length, causal, scale);
    });
    return g;
  }
  // op by op: P recomputed from q and k, so these gradients have gradients
  const NDArray scale_array = full({}, a.scale, q.dtype(), q.device());
  NDArray s = op::mul(op::matmul(q, swap_last_dims(k)), scale_array);
  s = kernels::add_attention_masks(s, a, q.shape(), valid_length, causal);
  const NDArray p = op::softmax(s, -1);
  std::vector<NDArray> result(3);
  if (wanted[2]) result[2] = op::matmul(swap_last_dims(p), grad);
  if (wanted[0] || wanted[1]) {
    const NDArray dp = op::matmul(grad, swap_last_dims(v));
    const NDArray ds = op::mul(op::mul(p, op::sub(dp, op::sum(op::mul(dp, p), ReduceDims(std::vector<std::int64_t>{-1}),
                                                             true))),
                               scale_array);
    if (wanted[0]) result[0] = op::matmul(ds, k);
    if (wanted[1]) result[1] = op::matmul(swap_last_dims(ds), q);
  }
  return result;
}

namespace {

// A recurrent layer's CUDA backward, or (in builds without one, where
// fused_rnn_backward refuses GPU arrays first) its CPU backward again, so
// the choice below is one expression either way.
#if LOOM_WITH_CUDA && LOOM_WITH_CUBLAS
#define LOOM_CUDA_OR(name) kernels::name##_cuda
#else
#define LOOM_CUDA_OR(name) kernels::name##_cpu
#endif

// The fused backward of a recurrent layer: refuses recording (first order
// only), converts the defined inputs to float32 or float64, allocates the
// wanted gradients with `shapes`, runs `kernel(cpu, out, ins)` (on the
// engine for the CPU, at once on the GPU's stream) and converts the results
// back to x's dtype. GPUs need cuBLAS (runtime/kernels/cuda/rnn_cuda.cu).
template <typename Kernel>
std::vector<NDArray> fused_rnn_backward(const char* op, const char* what, const NDArray& x, std::vector<NDArray> ins,
                                        const std::vector<Shape>& shapes, const std::vector<bool>& make,
                                        Kernel kernel) {
  LOOM_CHECK_KIND(!is_recording(), ErrorKind::kNotImplemented, op, ": gradients of gradients are not supported "
                  "(its fused backward is first order, as cuDNN's RNN is); x ", x.describe());
#if !(LOOM_WITH_CUDA && LOOM_WITH_CUBLAS)
  LOOM_CHECK_KIND(x.device().is_cpu(), ErrorKind::kNotImplemented, op, " (backward): x ", x.describe(),
                  " is on a GPU in a build without CUDA and cuBLAS");
#endif
  const DType dtype = x.dtype();
  const DType compute = dtype == DType::kFloat64 ? DType::kFloat64 : DType::kFloat32;
  for (NDArray& a : ins) {
    if (a.defined() && a.dtype() != compute) a = a.astype(compute);
  }
  std::vector<NDArray> out(shapes.size()), reads, writes;
  for (std::size_t k = 0; k < shapes.size(); ++k) {
    if (make[k]) writes.push_back(out[k] = NDArray::empty(shapes[k], compute, x.device()));
  }
  for (const NDArray& a : ins) {
    if (a.defined()) reads.push_back(a);
  }
  if (x.device().is_cpu()) {
    launch(what, reads, writes, [=]() mutable { kernel(true, out, ins); });
  } else if (should_run_kernels()) {
    kernel(false, out, ins);
  }
  for (NDArray& r : out) {
    if (r.defined() && r.dtype() != dtype) r = r.astype(dtype);
  }
  return out;
}

}  // namespace

std::vector<NDArray> lstm_backward(const NDArray& gy, const NDArray& ghn, const NDArray& gcn, const NDArray& x,
                                   const NDArray& h0, const NDArray& c0, const NDArray& w_ih, const NDArray& w_hh,
                                   const NDArray& y, const NDArray& gates, const NDArray& cells,
                                   bool reverse, const std::vector<bool>& wanted) {
  const Shape states{x.shape()[1], w_hh.shape()[1]}, bias{w_hh.shape()[0]};
  std::vector<NDArray> g = fused_rnn_backward(
      "lstm_layer", "lstm_layer (backward)", x, {gy, ghn, gcn, x, h0, c0, w_ih, w_hh, y, gates, cells},
      {x.shape(), states, states, w_ih.shape(), w_hh.shape(), bias},
      {wanted[0], wanted[1] && h0.defined(), wanted[2] && c0.defined(), wanted[3], wanted[4], wanted[5] || wanted[6]},
      [reverse](bool cpu, std::vector<NDArray>& o, const std::vector<NDArray>& i) {
        (cpu ? kernels::lstm_backward_cpu : LOOM_CUDA_OR(lstm_backward))(
            o[0], o[1], o[2], o[3], o[4], o[5], i[0], i[1], i[2], i[3], i[4], i[5], i[6], i[7], i[8], i[9], i[10],
            reverse);
      });
  // b_ih and b_hh get the same gradient
  std::vector<NDArray> result{g[0], g[1], g[2], g[3], g[4], wanted[5] ? g[5] : NDArray(), NDArray()};
  if (wanted[6]) result[6] = wanted[5] ? op::copy(g[5]) : g[5];
  return result;
}

std::vector<NDArray> gru_backward(const NDArray& gy, const NDArray& ghn, const NDArray& x, const NDArray& h0,
                                  const NDArray& w_ih, const NDArray& w_hh, const NDArray& y, const NDArray& gates,
                                  bool reverse, const std::vector<bool>& wanted) {
  const Shape states{x.shape()[1], w_hh.shape()[1]}, bias{w_hh.shape()[0]};
  return fused_rnn_backward(
      "gru_layer", "gru_layer (backward)", x, {gy, ghn, x, h0, w_ih, w_hh, y, gates},
      {x.shape(), states, w_ih.shape(), w_hh.shape(), bias, bias},
      {wanted[0], wanted[1] && h0.defined(), wanted[2], wanted[3], wanted[4], wanted[5]},
      [reverse](bool cpu, std::vector<NDArray>& o, const std::vector<NDArray>& i) {
        (cpu ? kernels::gru_backward_cpu : LOOM_CUDA_OR(gru_backward))(
            o[0], o[1], o[2], o[3], o[4], o[5], i[0], i[1], i[2], i[3], i[4], i[5], i[6], i[7], reverse);
      });
}

std::vector<NDArray> rnn_backward(const NDArray& gy, const NDArray& ghn, const NDArray& x, const NDArray& h0,
                                  const NDArray& w_ih, const NDArray& w_hh, const NDArray& y, bool reverse, bool relu,
                                  const std::vector<bool>& wanted) {
  const Shape states{x.shape()[1], w_hh.shape()[1]}, bias{w_hh.shape()[0]};
  std::vector<NDArray> g = fused_rnn_backward(
      "rnn_layer", "rnn_layer (backward)", x, {gy, ghn, x, h0, w_ih, w_hh, y},
      {x.shape(), states, w_ih.shape(), w_hh.shape(), bias},
      {wanted[0], wanted[1] && h0.defined(), wanted[2], wanted[3], wanted[4] || wanted[5]},
      [reverse, relu](bool cpu, std::vector<NDArray>& o, const std::vector<NDArray>& i) {
        (cpu ? kernels::rnn_backward_cpu : LOOM_CUDA_OR(rnn_backward))(
            o[0], o[1], o[2], o[3], o[4], i[0], i[1], i[2], i[3], i[4], i[5], i[6], reverse, relu);
      });
  // b_ih and b_hh get the same gradient
  std::vector<NDArray> result{g[0], g[1], g[2], g[3], wanted[4] ? g[4] : NDArray(), NDArray()};
  if (wanted[5]) result[5] = wanted[4] ? op::copy(g[4]) : g[4];
  return result;
}


namespace {
ReduceDims spatial_of(const Shape& shape) {
  return ReduceDims(std::vector<std::int64_t>(shape.begin() + 2, shape.end()));
}
}  // namespace

NDArray adaptive_avg_pool_data_grad(const NDArray& grad, const Shape& x_shape) {
  return op::adaptive_avg_pool_grad(grad, spatial_of(x_shape));
}

NDArray adaptive_avg_pool_like(const NDArray& x, const Shape& like_shape) {
  return op::adaptive_avg_pool(x, spatial_of(like_shape));
}

NDArray upsample_nearest_data_grad(const NDArray& grad, const Shape& x_shape) {
  return op::upsample_nearest_grad(grad, spatial_of(x_shape));
}

NDArray upsample_nearest_like(const NDArray& x, const Shape& like_shape) {
  return op::upsample_nearest(x, spatial_of(like_shape));
}

NDArray upsample_bilinear_data_grad(const NDArray& grad, const Shape& x_shape, bool align_corners) {
  return op::upsample_bilinear_grad(grad, spatial_of(x_shape), align_corners);
}

NDArray upsample_bilinear_like(const NDArray& x, const Shape& like_shape, bool align_corners) {
  return op::upsample_bilinear(x, spatial_of(like_shape), align_corners);
}

NDArray softmax_cross_entropy_grad(const NDArray& grad_loss, const NDArray& grad_prob, const NDArray& prob,
                                   const NDArray& label, std::int64_t dim, std::int64_t ignore_index,
                                   double label_smoothing) {
  const std::int64_t d = dim < 0 ? dim + prob.ndim() : dim;
  const std::int64_t classes = prob.shape()[static_cast<std::size_t>(d)];
  // ignored lines: weight 0 and a harmless label 0 for the scatter
  const NDArray keep = op::ne(label, full({}, static_cast<double>(ignore_index), DType::kInt64, label.device()));
  const NDArray safe = op::where(keep, label, full({}, 0.0, DType::kInt64, label.device()));
  const NDArray g = op::expand_dims(op::mul(grad_loss, keep.astype(grad_loss.dtype())), d);
  auto scaled = [&](const NDArray& t, double c) { return op::mul(t, full({}, c, t.dtype(), t.device())); };
  NDArray result = op::sub(op::mul(prob, g), op::scatter_add(full(prob.shape(), 0.0, prob.dtype(), prob.device()),
                                                             op::expand_dims(safe, d),
                                                             scaled(g, 1.0 - label_smoothing), d));
  if (label_smoothing != 0.0 && classes > 0) result = op::sub(result, scaled(g, label_smoothing / double(classes)));
  if (grad_prob.defined()) {
    const ReduceDims along(std::vector<std::int64_t>{d});
    result = op::add(result, op::mul(prob, op::sub(grad_prob, op::sum(op::mul(grad_prob, prob), along, true))));
  }
  return result;
}

NDArray ctc_loss_grad(const NDArray& grad, const NDArray& log_probs, const NDArray& targets,
                      const NDArray& input_lengths, const NDArray& target_lengths, const NDArray& loss,
                      std::int64_t blank) {
  LOOM_CHECK_KIND(!is_recording(), ErrorKind::kNotImplemented, "ctc_loss: gradients of gradients are not supported "
                  "(its fused backward is first order); log_probs ", log_probs.describe());
  const NDArray g = grad.dtype() == log_probs.dtype() ? grad : grad.astype(log_probs.dtype());
  NDArray d = NDArray::empty(log_probs.shape(), log_probs.dtype(), log_probs.device());
  if (log_probs.device().is_cpu()) {
    launch("ctc_loss (backward)", std::vector<NDArray>{g, log_probs, targets, input_lengths, target_lengths, loss},
           std::vector<NDArray>{d}, [=]() mutable {
             kernels::ctc_loss_backward_cpu(d, g, log_probs, targets, input_lengths, target_lengths, loss, blank);
           });
  } else {
#if LOOM_WITH_CUDA
    if (should_run_kernels()) {
      kernels::ctc_loss_backward_cuda(d, g, log_probs, targets, input_lengths, target_lengths, loss, blank);
    }
#else
    no_cuda("ctc_loss (backward)", log_probs);
#endif
  }
  return d;
}

NDArray channel_sum(const NDArray& grad) {
  LOOM_CHECK(grad.ndim() >= 2, "channel_sum: expected (batch, channels, ...), got ", grad.describe());
  return op::sum(grad, all_but_channels(grad.ndim()), false);
}

}  // namespace loom::autograd
