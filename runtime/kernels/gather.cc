// gather and scatter_add (opdefs/indexing/gather.yaml), PyTorch's
// semantics along one dim: for every position p of `index`,
//   gather:      out[p]                       = x[p with p[dim] = index[p]]
//   scatter_add: out[p with p[dim] = index[p]] += src[p]    (out starts as x)
// index has x's rank and is no larger than x (src) in the other dims. Each
// index value is checked before anything is written; a negative one counts
// from the end, as in take.
#include <cstring>

#include "generated/kernels/gather.h"
#include "generated/kernels/scatter_add.h"
#include "microkernel/base/error.h"
#include "runtime/core/dtype_visit.h"
#include "runtime/kernels/gather_layout.h"
#include "runtime/kernels/indexing.h"

namespace loom::kernels {

GatherLayout gather_layout(const char* op, const NDArray& x, const NDArray& index, std::int64_t dim,
                           const NDArray* src) {
  LOOM_CHECK(index.ndim() == x.ndim(), op, ": index has ", index.ndim(), " dims but x has ", x.ndim(),
             " (shapes ", shape_str(index.shape()), " and ", shape_str(x.shape()), ")");
  GatherLayout g;
  g.dim = wrap_axis(op, dim, x.shape());
  g.rank = static_cast<int>(x.ndim());
  LOOM_CHECK_KIND(g.rank <= kGatherMaxDims, ErrorKind::kNotImplemented, op, ": more than ", kGatherMaxDims,
                  " dims");
  const Strides xs = contiguous_strides(x.shape());
  for (int d = 0; d < g.rank; ++d) {
    LOOM_CHECK(d == g.dim || index.shape()[d] <= x.shape()[d], op, ": index of shape ", shape_str(index.shape()),
               " is larger than x of shape ", shape_str(x.shape()), " in dim ", d);
    if (src != nullptr) {
      LOOM_CHECK(index.shape()[d] <= src->shape()[d], op, ": index of shape ", shape_str(index.shape()),
                 " is larger than src of shape ", shape_str(src->shape()), " in dim ", d);
    }
    g.index_shape[d] = index.shape()[d];
    g.x_strides[d] = xs[d];
    g.src_strides[d] = src != nullptr ? contiguous_strides(src->shape())[d] : 0;
  }
  g.axis = x.shape()[g.dim];
  g.count = index.numel();
  return g;
}

Shape infer_gather(const NDArray& x, const NDArray& index, std::int64_t dim) {
  gather_layout("gather", x, index, dim, nullptr);
  return index.shape();
}

void gather_cpu(NDArray& out, const NDArray& x, const NDArray& index, std::int64_t dim) {
  const GatherLayout g = gather_layout("gather", x, index, dim, nullptr);
  const NDArray xc = x.contiguous(), ic = index.contiguous();
  const std::int64_t* idx = ic.data<const std::int64_t>();
  for (std::int64_t i = 0; i < g.count; ++i) {
    if (idx[i] < -g.axis || idx[i] >= g.axis) throw_bad_index("gather", idx[i], g.dim, g.axis);
  }
  visit_dtype(x.dtype(), "gather", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* from = xc.data<const T>();
    T* to = out.data<T>();
#pragma omp parallel for schedule(static) if (g.count > 65536)
    for (std::int64_t i = 0; i < g.count; ++i) to[i] = from[g.source(i, idx[i]).x];
  });
}

Shape infer_scatter_add(const NDArray& x, const NDArray& index, const NDArray& src, std::int64_t dim) {
  gather_layout("scatter_add", x, index, dim, &src);
  return x.shape();
}

void scatter_add_cpu(NDArray& out, const NDArray& x, const NDArray& index, const NDArray& src, std::int64_t dim) {
  const GatherLayout g = gather_layout("scatter_add", x, index, dim, &src);
  const NDArray xc = x.contiguous(), ic = index.contiguous(), sc = src.contiguous();
  const std::int64_t* idx = ic.data<const std::int64_t>();
  for (std::int64_t i = 0; i < g.count; ++i) {
    if (idx[i] < -g.axis || idx[i] >= g.axis) throw_bad_index("scatter_add", idx[i], g.dim, g.axis);
  }
  visit_dtype(x.dtype(), "scatter_add", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* to = out.data<T>();
    // out may be x itself (scatter_add_, or a graph plan writing over an x
    // that dies here): then there is nothing to copy.
    if (to != xc.data<const T>()) std::memcpy(to, xc.data<const T>(), static_cast<std::size_t>(x.numel()) * sizeof(T));
    const T* add = sc.data<const T>();
    // Sequential: repeated targets then add in index order, deterministically.
    for (std::int64_t i = 0; i < g.count; ++i) {
      const GatherOffsets o = g.source(i, idx[i]);
      to[o.x] = static_cast<T>(to[o.x] + add[o.src]);
    }
  });
}

}  // namespace loom::kernels
