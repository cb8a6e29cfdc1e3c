// The GPU half of storage, private to microkernel/storage. Implemented by
// gpu_cuda.cc when loom is built with CUDA, and by gpu_none.cc otherwise, so
// the host code never needs #ifdefs.
#pragma once

#include <cstddef>
#include <memory>

#include "microkernel/storage/caching_allocator.h"
#include "microkernel/storage/device.h"

namespace loom::storage::gpu {

// The raw device memory and events the caching allocator builds on.
std::unique_ptr<DeviceMemoryApi> make_memory_api(int device_id);
// Page-locked host memory; nullptr when the system has none left.
void* alloc_pinned(std::size_t bytes);
void free_pinned(void* ptr);
int count() noexcept;
// One of dst/src (or both) is on a GPU; the other may be host memory.
void copy(void* dst, Device dst_device, const void* src, Device src_device,
          std::size_t bytes);


// Streams, for the engine's GPU workers. A stream is an opaque cudaStream_t.
// Each throws loom::Error naming the device and the CUDA error.
void set_device(int device_id);
void* create_stream(int device_id);
void destroy_stream(void* stream, int device_id) noexcept;
void sync_stream(void* stream, int device_id);
void sync_device(int device_id);  // every stream of the device

// Events, for ordering the kernel stream against side streams
// (stream_fence.h). nullptr names the device's default stream, where every
// loom kernel runs. Each switches to the device for the call and back.
void* record_event(void* stream, int device_id);  // "everything queued on stream so far"
void wait_event(void* stream, void* event, int device_id);  // stream waits for it; the host does not
void destroy_event(void* event, int device_id) noexcept;

}  // namespace loom::storage::gpu
