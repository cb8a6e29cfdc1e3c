// matmul on the CPU: shape inference (NumPy's rules) and the kernel, one
// GEMM per matrix of the (broadcast) batch: OpenBLAS's when loom is built
// with it, else loom's own (gemm_portable.h). Declared by the generator
// in generated/kernels/matmul.h (opdefs/linalg/matmul.yaml).
//
// BLAS reads each operand in place when its last two dims are row-major or
// column-major with a leading dimension (a transposed view is just a
// transposed GEMM); other layouts are copied once. When b has no batch dims
// and a's batch rows are contiguous, the batch folds into one tall GEMM
// (the linear-layer case: (batch, seq, in) @ (in, out)).
#include <algorithm>
#include <cstring>

#include "generated/kernels/matmul.h"
#include "microkernel/base/error.h"
#include "runtime/kernels/cpu/cpu_gemm.h"

namespace loom::kernels {
namespace {

// An operand's last two dims as a matrix, 1-D vectors already made 2-D.
struct MatrixView {
  NDArray array;              // batch dims + (rows, cols)
  Shape batch;                // leading dims
  Strides batch_strides;
};

MatrixView as_matrices(const NDArray& x, bool is_left) {
  NDArray m = x;
  if (x.ndim() == 1) {  // a row vector on the left, a column on the right
    const std::int64_t k = x.shape()[0], s = x.strides()[0];
    m = is_left ? x.as_strided({1, k}, {k * s, s}, x.offset()) : x.as_strided({k, 1}, {s, s * k}, x.offset());
  }
  MatrixView v{m, Shape(m.shape().begin(), m.shape().end() - 2),
               Strides(m.strides().begin(), m.strides().end() - 2)};
  return v;
}

}  // namespace

namespace {

// How a GEMM reads one matrix: transposed or not, and its leading dimension.
struct BlasOperand {
  bool trans;
  std::int64_t ld;
};

// nullopt-like: ld == 0 means the layout needs a copy.
BlasOperand blas_layout(std::int64_t rows, std::int64_t cols, std::int64_t row_stride, std::int64_t col_stride) {
  if (col_stride == 1 && (rows == 1 || row_stride >= std::max<std::int64_t>(cols, 1))) {
    return {false, rows == 1 ? std::max<std::int64_t>(cols, 1) : row_stride};
  }
  if (row_stride == 1 && (cols == 1 || col_stride >= std::max<std::int64_t>(rows, 1))) {
    return {true, cols == 1 ? std::max<std::int64_t>(rows, 1) : col_stride};
  }
  return {false, 0};
}

template <typename T>
void matmul_typed(NDArray& out, const NDArray& a_in, const NDArray& b_in) {
  MatrixView a = as_matrices(a_in, true), b = as_matrices(b_in, false);
  const int ar = a.array.ndim(), br = b.array.ndim();
  const std::int64_t n = a.array.shape()[ar - 2], k = a.array.shape()[ar - 1], m = b.array.shape()[br - 1];
  T* c = out.data<T>();
  if (out.numel() == 0) return;
  if (k == 0) {  // an empty sum: zeros (BLAS wants k >= 1 for its leading dimensions)
    std::fill(c, c + out.numel(), T(0));
    return;
  }
  auto layout = [](const NDArray& x) {
    const int r = x.ndim();
    return blas_layout(x.shape()[r - 2], x.shape()[r - 1], x.strides()[r - 2], x.strides()[r - 1]);
  };
  BlasOperand la = layout(a.array), lb = layout(b.array);
  if (la.ld == 0) {
    a = as_matrices(a.array.contiguous(), true);
    la = layout(a.array);
  }
  if (lb.ld == 0) {
    b = as_matrices(b.array.contiguous(), false);
    lb = layout(b.array);
  }
  const T* pa = a.array.data<const T>();
  const T* pb = b.array.data<const T>();
  const Shape batch = broadcast_shapes("matmul", a.batch, b.batch);
  const std::int64_t batch_count = shape_numel(batch);
  // b shared by the whole batch and a's rows dense across it: one tall GEMM.
  if (b.batch.empty() && !la.trans && a.array.is_contiguous()) {
    gemm<T>(false, lb.trans, batch_count * n, m, k, pa, la.ld, pb, lb.ld, c, m);
    return;
  }
  const Strides a_bs = broadcast_strides(a.batch, a.batch_strides, batch);
  const Strides b_bs = broadcast_strides(b.batch, b.batch_strides, batch);
  // Small matrices: one GEMM per thread across the batch (OpenBLAS, built
  // for OpenMP, runs single-threaded inside a parallel region); large
  // ones: one after another, each GEMM using every thread.
  auto one = [&](std::int64_t i) {
    std::int64_t rest = i, a_off = 0, b_off = 0;
    for (int d = static_cast<int>(batch.size()) - 1; d >= 0; --d) {
      const std::int64_t idx = rest % batch[d];
      rest /= batch[d];
      a_off += idx * a_bs[d];
      b_off += idx * b_bs[d];
    }
    gemm<T>(la.trans, lb.trans, n, m, k, pa + a_off, la.ld, pb + b_off, lb.ld, c + i * n * m, m);
  };
  if (batch_count > 1 && n * m * k <= (std::int64_t{1} << 21)) {
    // Small matrices: one GEMM per thread across the batch (OpenBLAS built
    // for OpenMP runs single-threaded inside a parallel region).
#pragma omp parallel for schedule(static)
    for (std::int64_t i = 0; i < batch_count; ++i) one(i);
  } else {
    // Large ones one after another, each GEMM using every thread. (Not an
    // `omp parallel if(false)`: inside even an inactive region OpenBLAS
    // runs on one thread.)
    for (std::int64_t i = 0; i < batch_count; ++i) one(i);
  }
}

}  // namespace

void matmul_cpu(NDArray& out, const NDArray& a, const NDArray& b) {
  switch (out.dtype()) {
    case DType::kFloat32: return matmul_typed<float>(out, a, b);
    case DType::kFloat64: return matmul_typed<double>(out, a, b);
    default:
      LOOM_THROW(ErrorKind::kType, "matmul: no CPU kernel for dtype ", dtype_name(out.dtype()));
  }
}

}  // namespace loom::kernels
