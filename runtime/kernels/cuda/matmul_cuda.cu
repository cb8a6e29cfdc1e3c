// matmul on the GPU: cuBLAS strided-batched GEMM. Declared by the generator
// in generated/kernels/matmul.h (opdefs/linalg/matmul.yaml).
//
// Operands are made dense (batch, rows, cols) first — an operand without
// batch dims is shared by the whole batch with stride 0, one with broadcast
// batch dims is expanded — and cuBLAS's column-major view is used as is:
// a row-major C = A B is the column-major C^T = B^T A^T. Runs on the
// device's default stream, like the generated pointwise kernels.
#include <cuda_runtime.h>

#include <string>

#include "generated/kernels/matmul.h"
#include "loom/ops/copy.h"
#include "microkernel/base/error.h"
#include "runtime/autograd/functions.h"

#if LOOM_WITH_CUBLAS
#include <cublas_v2.h>

#include "runtime/kernels/cuda/gemm_rows.h"
#include "runtime/kernels/cuda/pointwise_cuda.cuh"

namespace loom::kernels {
namespace {

// `x` (batch dims + rows, cols) as dense matrices for the `batch` shape;
// `stride` is 0 when x has no batch dims (one matrix shared by all).
NDArray dense_batch(const NDArray& x, const Shape& batch, std::int64_t* stride) {
  const int r = x.ndim();
  const std::int64_t rows = x.shape()[r - 2], cols = x.shape()[r - 1];
  if (r == 2) {
    *stride = 0;
    return x.is_contiguous() ? x : op::copy(x);
  }
  Shape full = batch;
  full.push_back(rows);
  full.push_back(cols);
  *stride = rows * cols;
  const NDArray expanded = autograd::broadcast_to(x, full);
  return expanded.is_contiguous() ? expanded : op::copy(expanded);
}

}  // namespace

void matmul_cuda(NDArray& out, const NDArray& a_in, const NDArray& b_in) {
  const NDArray a = a_in.ndim() == 1 ? autograd::reshape(a_in, {1, a_in.shape()[0]}) : a_in;
  const NDArray b = b_in.ndim() == 1 ? autograd::reshape(b_in, {b_in.shape()[0], 1}) : b_in;
  const std::int64_t n = a.shape()[a.ndim() - 2], k = a.shape()[a.ndim() - 1], m = b.shape()[b.ndim() - 1];
  const Shape batch = broadcast_shapes("matmul", Shape(a.shape().begin(), a.shape().end() - 2),
                                       Shape(b.shape().begin(), b.shape().end() - 2));
  const std::int64_t count = shape_numel(batch);
  if (out.numel() == 0) return;
  cuda_select_device("matmul", out.device().id);  // the handle and the memset act on the current device
  if (k == 0) {
    cudaMemset(out.raw_data(), 0, out.nbytes());
    return;
  }
  std::int64_t sa = 0, sb = 0;
  const NDArray da = dense_batch(a, batch, &sa), db = dense_batch(b, batch, &sb);
  cublasHandle_t h = cublas_handle(out.device().id);
  const int im = static_cast<int>(m), in = static_cast<int>(n), ik = static_cast<int>(k);
  if (out.dtype() == DType::kFloat32) {
    const float one = 1.0f, zero = 0.0f;
    check_cublas(cublasSgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_N, im, in, ik, &one, db.data<const float>(), im,
                                           sb, da.data<const float>(), ik, sa, &zero, out.data<float>(), im,
                                           n * m, static_cast<int>(count)),
                 "matmul", "cublasSgemmStridedBatched");
  } else if (out.dtype() == DType::kFloat64) {
    const double one = 1.0, zero = 0.0;
    check_cublas(cublasDgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_N, im, in, ik, &one, db.data<const double>(), im,
                                           sb, da.data<const double>(), ik, sa, &zero, out.data<double>(), im,
                                           n * m, static_cast<int>(count)),
                 "matmul", "cublasDgemmStridedBatched");
  } else {
    LOOM_THROW(ErrorKind::kType, "matmul: no CUDA kernel for dtype ", dtype_name(out.dtype()));
  }
}

}  // namespace loom::kernels
#endif  // LOOM_WITH_CUBLAS
