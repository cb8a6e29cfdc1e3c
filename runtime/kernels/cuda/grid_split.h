// How many blocks share one item of a reduction (a channel, a column tile)
// when the items alone would leave the GPU idle: enough blocks in all for
// about eight per multiprocessor, each taking at least `min_work` of the
// item's `work` units, and at most `max_splits`. The partial results are
// combined afterwards (batch_norm_cuda.cu, layer_norm_cuda.cu).
#pragma once

#include <algorithm>
#include <cstdint>

#include "runtime/kernels/cuda/device_attributes.h"

namespace loom::kernels {

inline int grid_splits(std::int64_t items, std::int64_t work, std::int64_t min_work, std::int64_t max_splits,
                       int device) {
  const std::int64_t target = std::int64_t(cuda_device_sm_count(device)) * 8;
  const std::int64_t by_fill = std::max<std::int64_t>(1, target / std::max<std::int64_t>(1, items));
  const std::int64_t by_size = std::max<std::int64_t>(1, work / min_work);
  return static_cast<int>(std::min<std::int64_t>({by_fill, by_size, max_splits}));
}

}  // namespace loom::kernels
