// Storage: raw memory for one device, pooled.
//
// Contract: alloc(bytes, device, alignment) returns memory aligned to
// `alignment` (a power of two; the default kAlignment suits any SIMD load
// loom emits) or throws loom::Error naming the request, the bytes in use and
// cached, and (on a GPU) the device's total; free() takes the same bytes,
// device and alignment back. Zero-byte requests return a valid, unique,
// non-null pointer. Every call is thread-safe.
//
// Host memory comes from a size-class pool (host_pool.h); GPU memory from a
// per-device, stream-aware caching allocator (caching_allocator.h): a block
// is reused at once on the stream it was allocated for, and on another
// stream only once record_stream()'s work is done. Pinned host memory, for
// fast and asynchronous device copies, has its own pool. release_cached()
// gives every pooled block back. LOOM_STORAGE=naive turns pooling off so
// AddressSanitizer sees each block's true extent.
//
// GPU requests throw kNotImplemented when loom was built without CUDA, and a
// clear error when no such device exists.
#pragma once

#include <cstddef>
#include <cstdint>

#include "microkernel/storage/device.h"
#include "microkernel/storage/stats.h"

namespace loom::storage {

inline constexpr std::size_t kAlignment = 64;

// `stream` (a cudaStream_t) only matters on a GPU: the stream the block will
// be used on first; nullptr is the default stream.
void* alloc(std::size_t bytes, Device device, std::size_t alignment = kAlignment,
            void* stream = nullptr);
void free(void* ptr, std::size_t bytes, Device device, std::size_t alignment = kAlignment) noexcept;
// The GPU block `ptr` is also used on `stream`; free() then keeps it out of
// the pool until that stream's work queued so far has finished.
void record_stream(void* ptr, Device device, void* stream);

// Page-locked host memory (plain host memory when no GPU is present).
void* alloc_pinned(std::size_t bytes);
void free_pinned(void* ptr, std::size_t bytes) noexcept;

// Per device: cpu(0) is all host memory (pinned excluded); gpu(i) each GPU.
Stats stats(Device device);
Stats pinned_stats();
// What alloc(bytes) on `device` counts in Stats::in_use.
std::size_t rounded_size(std::size_t bytes, Device device, std::size_t alignment = kAlignment);
// Returns every pooled block, on every device, to the system.
void release_cached() noexcept;
// False with LOOM_STORAGE=naive.
bool pooling_enabled();

// Number of GPUs usable now (0 without CUDA, a driver or a device).
int gpu_count() noexcept;

// Waits until the work queued on every stream of `device` has finished:
// the kernel stream (every kernel loom launches), the comm lane's
// collectives and the engine's GPU workers. Raises a failed kernel's error
// there. A no-op for the CPU.
void synchronize(Device device);

// Copies `bytes` between two allocations, on any pair of devices. Synchronous.
void copy(void* dst, Device dst_device, const void* src, Device src_device,
          std::size_t bytes);

// Called by the engine's pthread_atfork handlers: hold every allocator lock
// across fork() so the child never inherits one held by a vanished thread.
void fork_prepare();
void fork_parent();
void fork_child();

}  // namespace loom::storage
