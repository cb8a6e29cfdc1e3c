// Temporary device memory for a kernel's partial results (per-block sums
// that a second kernel combines), from the device's caching pool. Kernels
// on the default stream run in order, so freeing it as soon as the
// launches that use it are queued is safe: a later allocation that reuses
// the block is written by a kernel queued after them.
#pragma once

#include <cstddef>

#include "microkernel/storage/storage.h"

namespace loom::kernels {

class DeviceScratch {
 public:
  DeviceScratch(std::size_t bytes, Device device) : bytes_(bytes), device_(device) {
    if (bytes_ > 0) ptr_ = storage::alloc(bytes_, device_);
  }
  ~DeviceScratch() {
    if (ptr_ != nullptr) storage::free(ptr_, bytes_, device_);
  }
  DeviceScratch(const DeviceScratch&) = delete;
  DeviceScratch& operator=(const DeviceScratch&) = delete;

  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }

 private:
  void* ptr_ = nullptr;
  std::size_t bytes_;
  Device device_;
};

}  // namespace loom::kernels
