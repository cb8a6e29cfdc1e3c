// gru_layer's fused backward (runtime/autograd/nn_grad.cc calls it): the
// recurrence run backwards over the saved gates (r, z, n and the hidden
// candidate projection), then the input and weight gradients as single
// GEMMs over every step. Dense arrays in one floating dtype; gy, ghn, h0
// may be undefined (zeros). Outputs: dx, dh0, dw_ih, dw_hh, db_ih, db_hh.
#pragma once

#include "runtime/ndarray/ndarray.h"

namespace loom::kernels {

void gru_backward_cpu(NDArray& dx, NDArray& dh0, NDArray& dw_ih, NDArray& dw_hh, NDArray& db_ih, NDArray& db_hh,
                      const NDArray& gy, const NDArray& ghn, const NDArray& x, const NDArray& h0, const NDArray& w_ih,
                      const NDArray& w_hh, const NDArray& y, const NDArray& gates, bool reverse);
// The same on a GPU (runtime/kernels/cuda/rnn_cuda.cu; built with cuBLAS).
void gru_backward_cuda(NDArray& dx, NDArray& dh0, NDArray& dw_ih, NDArray& dw_hh, NDArray& db_ih, NDArray& db_hh,
                       const NDArray& gy, const NDArray& ghn, const NDArray& x, const NDArray& h0, const NDArray& w_ih,
                       const NDArray& w_hh, const NDArray& y, const NDArray& gates, bool reverse);

}  // namespace loom::kernels
