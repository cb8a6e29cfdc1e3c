// lstm_layer's fused backward (runtime/autograd/nn_grad.cc calls it): the
// recurrence run backwards over the saved gate activations and cells, then
// the input and weight gradients as single GEMMs over every step. Arrays
// are dense in one floating dtype; gy, ghn, gcn, h0, c0 may be undefined
// (zeros). Outputs: dx, dh0, dc0, dw_ih, dw_hh, db (the bias gradient,
// the same for b_ih and b_hh).
#pragma once

#include "runtime/ndarray/ndarray.h"

namespace loom::kernels {

void lstm_backward_cpu(NDArray& dx, NDArray& dh0, NDArray& dc0, NDArray& dw_ih, NDArray& dw_hh, NDArray& db,
                       const NDArray& gy, const NDArray& ghn, const NDArray& gcn, const NDArray& x, const NDArray& h0,
                       const NDArray& c0, const NDArray& w_ih, const NDArray& w_hh, const NDArray& y,
                       const NDArray& gates, const NDArray& cells, bool reverse);
// The same on a GPU (runtime/kernels/cuda/rnn_cuda.cu; built with cuBLAS).
void lstm_backward_cuda(NDArray& dx, NDArray& dh0, NDArray& dc0, NDArray& dw_ih, NDArray& dw_hh, NDArray& db,
                        const NDArray& gy, const NDArray& ghn, const NDArray& gcn, const NDArray& x, const NDArray& h0,
                        const NDArray& c0, const NDArray& w_ih, const NDArray& w_hh, const NDArray& y,
                        const NDArray& gates, const NDArray& cells, bool reverse);

}  // namespace loom::kernels
