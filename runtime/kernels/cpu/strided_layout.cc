#include "runtime/kernels/cpu/strided_layout.h"

namespace loom::kernels {

StridedLayout make_strided_layout(const Shape& shape, std::vector<Strides> strides) {
  StridedLayout layout;
  const std::size_t ops = strides.size();
  // Drop size-1 dims (their stride never matters), then merge dim i into its
  // outer neighbour when stride[outer] == stride[i] * shape[i] for all.
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = !layout.shape.empty();
    for (std::size_t k = 0; merge && k < ops; ++k) {
      merge = layout.strides[k].back() == strides[k][d] * shape[d];
    }
    if (merge) {
      layout.shape.back() *= shape[d];
      for (std::size_t k = 0; k < ops; ++k) layout.strides[k].back() = strides[k][d];
    } else {
      if (layout.strides.empty()) layout.strides.resize(ops);
      layout.shape.push_back(shape[d]);
      for (std::size_t k = 0; k < ops; ++k) layout.strides[k].push_back(strides[k][d]);
    }
  }
  if (layout.shape.empty()) {
    // Every dim had size 1 (or the array is 0-d): one element.
    layout.shape = {1};
    layout.strides.assign(ops, Strides{1});
  }
  if (layout.strides.empty()) layout.strides.assign(ops, Strides(layout.shape.size(), 1));
  layout.all_contiguous = layout.shape.size() == 1;
  for (std::size_t k = 0; layout.all_contiguous && k < ops; ++k) {
    layout.all_contiguous = layout.strides[k][0] == 1;
  }
  return layout;
}

}  // namespace loom::kernels
