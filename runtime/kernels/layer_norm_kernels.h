// layer_norm's fused first-order backward (runtime/autograd/nn_grad.cc
// calls it when not recording), and how layer_norm splits x into rows.
// Arrays are dense, in one floating dtype; undefined outputs are skipped.
#pragma once

#include "runtime/kernels/pointwise_math.h"  // LOOM_HD
#include "runtime/ndarray/ndarray.h"

namespace loom::kernels {

// x as (rows, cols): cols is the product of the dims from axis on.
struct RowSplit {
  std::int64_t rows, cols;
};
RowSplit row_split(const Shape& shape, std::int64_t axis);

void layer_norm_backward_cpu(NDArray& dx, NDArray& dweight, NDArray& dbias, const NDArray& grad, const NDArray& x,
                             const NDArray& weight, const NDArray& mean, const NDArray& invstd, std::int64_t axis);
#if LOOM_WITH_CUDA
void layer_norm_backward_cuda(NDArray& dx, NDArray& dweight, NDArray& dbias, const NDArray& grad, const NDArray& x,
                              const NDArray& weight, const NDArray& mean, const NDArray& invstd, std::int64_t axis);
#endif

}  // namespace loom::kernels
