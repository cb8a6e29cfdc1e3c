// How GPU indexing kernels (take, index_add, one_hot, gather, scatter_add)
// report a bad index: the first one seen is recorded in a two-word device
// buffer and read back after the kernel, so the host raises the same
// IndexError as the CPU kernels.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "microkernel/base/error.h"
#include "microkernel/storage/storage.h"

namespace loom::kernels {

// Inside a kernel: whether v indexes a dim of `size` ([-size, size) when
// negative indices count from the end, else [0, size)); the first bad value
// is recorded in `flag`. `out` gets the index in [0, size).
__device__ inline bool resolve_index(std::int64_t v, std::int64_t size, bool negative_wraps, long long* flag,
                                     std::int64_t& out) {
  const std::int64_t low = negative_wraps ? -size : 0;
  if (v < low || v >= size) {
    if (atomicCAS(reinterpret_cast<unsigned long long*>(flag), 0ULL, 1ULL) == 0ULL) flag[1] = v;
    return false;
  }
  out = v < 0 ? v + size : v;
  return true;
}

// The device buffer: flag[0] is 0, or 1 once a bad index was seen; flag[1] is that index.
class DeviceIndexFlag {
 public:
  explicit DeviceIndexFlag(Device device) : device_(device) {
    flag = static_cast<long long*>(storage::alloc(kBytes, device_));
    cudaMemsetAsync(flag, 0, kBytes);
  }
  ~DeviceIndexFlag() { storage::free(flag, kBytes, device_); }
  DeviceIndexFlag(const DeviceIndexFlag&) = delete;
  DeviceIndexFlag& operator=(const DeviceIndexFlag&) = delete;

  // Waits for the kernels queued before; true with the bad index in `value`
  // if one was recorded. A failed launch or copy is an error naming `op`.
  bool bad(const char* op, std::int64_t& value) const {
    long long host[2] = {0, 0};
    cudaError_t err = cudaGetLastError();
    if (err == cudaSuccess) err = cudaMemcpy(host, flag, kBytes, cudaMemcpyDeviceToHost);
    LOOM_CHECK_KIND(err == cudaSuccess, ErrorKind::kRuntime, op, ": ", cudaGetErrorString(err));
    value = host[1];
    return host[0] != 0;
  }

  long long* flag = nullptr;

 private:
  static constexpr std::size_t kBytes = 2 * sizeof(long long);
  Device device_;
};

}  // namespace loom::kernels
