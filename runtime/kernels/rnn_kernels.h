// rnn_layer's fused backward (runtime/autograd/nn_grad.cc calls it): the
// recurrence run backwards from y (the activation's derivative is a
// function of its output), then input and weight gradients as single
// GEMMs. Outputs: dx, dh0, dw_ih, dw_hh, db (the same for b_ih and b_hh).
#pragma once

#include "runtime/ndarray/ndarray.h"

namespace loom::kernels {

void rnn_backward_cpu(NDArray& dx, NDArray& dh0, NDArray& dw_ih, NDArray& dw_hh, NDArray& db, const NDArray& gy,
                      const NDArray& ghn, const NDArray& x, const NDArray& h0, const NDArray& w_ih,
                      const NDArray& w_hh, const NDArray& y, bool reverse, bool relu);
// The same on a GPU (runtime/kernels/cuda/rnn_cuda.cu; built with cuBLAS).
void rnn_backward_cuda(NDArray& dx, NDArray& dh0, NDArray& dw_ih, NDArray& dw_hh, NDArray& db, const NDArray& gy,
                       const NDArray& ghn, const NDArray& x, const NDArray& h0, const NDArray& w_ih,
                       const NDArray& w_hh, const NDArray& y, bool reverse, bool relu);

}  // namespace loom::kernels
