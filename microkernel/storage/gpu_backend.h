// The GPU half of storage, private to microkernel/storage. Implemented by
// gpu_cuda.cc when loom is built with CUDA, and by gpu_none.cc otherwise, so
// the host code never needs #ifdefs.
#pragma once

#include <cstddef>

#include "microkernel/storage/device.h"

namespace loom::storage::gpu {

void* alloc(std::size_t bytes, int device_id);
void free(void* ptr, int device_id) noexcept;
int count() noexcept;
// One of dst/src (or both) is on a GPU; the other may be host memory.
void copy(void* dst, Device dst_device, const void* src, Device src_device,
          std::size_t bytes);

}  // namespace loom::storage::gpu
