// Storage: raw memory for one device.
//
// Contract: alloc(bytes, device) returns memory aligned to kAlignment (enough
// for any SIMD load loom emits) or throws loom::Error naming the request;
// free(ptr, bytes, device) gives it back. Zero-byte requests return a valid,
// unique, non-null pointer so zero-size arrays need no special case. Both are
// thread-safe. GPU requests throw kNotImplemented when loom was built without
// CUDA, and a clear error when no such device exists.
//
// This is the first, unpooled allocator: every call goes to the system. The
// microkernel issue replaces the insides with pooled host memory and a
// stream-aware CUDA caching allocator; this interface stays.
#pragma once

#include <cstddef>
#include <cstdint>

#include "microkernel/storage/device.h"

namespace loom::storage {

inline constexpr std::size_t kAlignment = 64;

void* alloc(std::size_t bytes, Device device);
void free(void* ptr, std::size_t bytes, Device device) noexcept;

// Bytes handed out and not yet freed, per device type, and the peak of that.
struct Stats {
  std::int64_t in_use = 0;
  std::int64_t peak = 0;
};
Stats stats(DeviceType type);

// Number of GPUs usable now (0 without CUDA, a driver or a device).
int gpu_count() noexcept;

// Copies `bytes` between two allocations, on any pair of devices. Synchronous.
void copy(void* dst, Device dst_device, const void* src, Device src_device,
          std::size_t bytes);

}  // namespace loom::storage
