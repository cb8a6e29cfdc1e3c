#include "microkernel/storage/storage.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <sys/mman.h>
#include <unistd.h>

#include "microkernel/base/error.h"
#include "microkernel/storage/caching_allocator.h"
#include "microkernel/storage/gpu_backend.h"
#include "microkernel/storage/host_pool.h"

namespace loom::storage {
namespace {

bool pooling_from_environment() {
  const char* mode = std::getenv("LOOM_STORAGE");
  return mode == nullptr || std::strcmp(mode, "naive") != 0;
}

// Pooled host memory is capped at a quarter of RAM (8 GiB at most): beyond
// that, freed blocks go back to the system rather than starve other programs.
std::int64_t host_cache_limit() {
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  std::int64_t ram = pages > 0 && page > 0 ? std::int64_t{pages} * page : std::int64_t{8} << 30;
  return std::min<std::int64_t>(ram / 4, std::int64_t{8} << 30);
}

// Blocks of 4 MiB and more are 2 MiB aligned and marked for transparent huge
// pages (Linux's default THP mode, "madvise", backs only marked memory):
// one TLB entry per 2 MiB instead of 512, and one fault per 2 MiB on first
// touch. Streaming ops over large arrays are TLB-bound otherwise.
constexpr std::size_t kHugePage = std::size_t{2} << 20;
constexpr std::size_t kHugeFrom = std::size_t{4} << 20;

void* aligned_system_alloc(std::size_t bytes, std::size_t alignment) {
  if (bytes >= kHugeFrom) alignment = std::max(alignment, kHugePage);
  bytes = (bytes + alignment - 1) / alignment * alignment;  // aligned_alloc's rule
  void* p = std::aligned_alloc(alignment, bytes);
#if defined(MADV_HUGEPAGE)
  if (p != nullptr && bytes >= kHugeFrom) madvise(p, bytes, MADV_HUGEPAGE);  // advice only: errors are harmless
#endif
  return p;
}
void system_free(void* ptr) { std::free(ptr); }

// Leaked singletons: blocks may be freed by engine ops or Python objects
// during exit, after static destructors would have run.
HostPool& host_pool() {
  static HostPool* pool =
      new HostPool("cpu(0)", aligned_system_alloc, system_free, pooling_from_environment(),
                   host_cache_limit());
  return *pool;
}

HostPool& pinned_pool() {
  static HostPool* pool = [] {
    bool pin = gpu::count() > 0;  // page-locking needs a driver and a device
    return new HostPool("pinned host memory",
                        pin ? [](std::size_t bytes, std::size_t) { return gpu::alloc_pinned(bytes); }
                            : aligned_system_alloc,
                        pin ? gpu::free_pinned : system_free, pooling_from_environment(),
                        host_cache_limit());
  }();
  return *pool;
}

constexpr int kMaxGpus = 64;
std::mutex g_gpu_lock;
std::atomic<CachingAllocator*> g_gpu_allocators[kMaxGpus] = {};

CachingAllocator* existing_gpu_allocator(int device_id) {
  if (device_id < 0 || device_id >= kMaxGpus) return nullptr;
  return g_gpu_allocators[device_id].load(std::memory_order_acquire);
}

CachingAllocator& gpu_allocator(int device_id) {
  if (CachingAllocator* allocator = existing_gpu_allocator(device_id)) return *allocator;
  std::lock_guard<std::mutex> hold(g_gpu_lock);
  int visible = gpu::count();
  if (visible == 0) gpu::make_memory_api(device_id);  // throws the precise reason
  LOOM_CHECK(device_id >= 0 && device_id < visible && device_id < kMaxGpus,
             "storage: cannot use gpu(", device_id, "): ", visible,
             " GPU(s) visible to this process");
  if (CachingAllocator* allocator = existing_gpu_allocator(device_id)) return *allocator;
  auto* allocator =
      new CachingAllocator(gpu::make_memory_api(device_id), Device::gpu(device_id).str());
  g_gpu_allocators[device_id].store(allocator, std::memory_order_release);
  return *allocator;
}

}  // namespace

void* alloc(std::size_t bytes, Device device, std::size_t alignment, void* stream) {
  if (device.is_cpu()) return host_pool().alloc(bytes, alignment);
  LOOM_CHECK(alignment <= 256, "storage: ", device.str(), " blocks are 256-byte aligned; ",
             alignment, " was requested");
  return gpu_allocator(device.id).alloc(bytes, stream);
}

void free(void* ptr, std::size_t bytes, Device device, std::size_t alignment) noexcept {
  if (ptr == nullptr) return;
  if (device.is_cpu()) {
    host_pool().free(ptr, bytes, alignment);
  } else if (CachingAllocator* allocator = existing_gpu_allocator(device.id)) {
    allocator->free(ptr);
  }
}

void record_stream(void* ptr, Device device, void* stream) {
  if (device.is_cpu()) return;
  gpu_allocator(device.id).record_stream(ptr, stream);
}

void* alloc_pinned(std::size_t bytes) { return pinned_pool().alloc(bytes, kAlignment); }
void free_pinned(void* ptr, std::size_t bytes) noexcept { pinned_pool().free(ptr, bytes, kAlignment); }

Stats stats(Device device) {
  if (device.is_cpu()) return host_pool().stats();
  CachingAllocator* allocator = existing_gpu_allocator(device.id);
  return allocator ? allocator->stats() : Stats{};
}

Stats pinned_stats() { return pinned_pool().stats(); }

std::size_t rounded_size(std::size_t bytes, Device device, std::size_t alignment) {
  if (device.is_cpu()) return host_pool().rounded_size(bytes, alignment);
  return CachingAllocator::round_size(bytes);
}

void release_cached() noexcept {
  host_pool().release_cached();
  pinned_pool().release_cached();
  for (int id = 0; id < kMaxGpus; ++id) {
    if (CachingAllocator* allocator = existing_gpu_allocator(id)) {
      try {
        allocator->release_cached();
      } catch (...) {  // a device error while freeing: keep the rest going
      }
    }
  }
}

bool pooling_enabled() {
  static bool pooling = pooling_from_environment();
  return pooling;
}

int gpu_count() noexcept { return gpu::count(); }

void synchronize(Device device) {
  if (device.is_cpu()) return;
  gpu::sync_device(device.id);
}

void copy(void* dst, Device dst_device, const void* src, Device src_device,
          std::size_t bytes) {
  if (bytes == 0) return;
  if (dst_device.is_cpu() && src_device.is_cpu()) {
    std::memcpy(dst, src, bytes);
  } else {
    gpu::copy(dst, dst_device, src, src_device, bytes);
  }
}

void fork_prepare() {
  g_gpu_lock.lock();
  host_pool().lock_all();
  pinned_pool().lock_all();
}

void fork_parent() {
  pinned_pool().unlock_all();
  host_pool().unlock_all();
  g_gpu_lock.unlock();
}

void fork_child() {
  // CUDA does not survive fork(); a child must not touch the parent's GPU
  // allocators (their blocks belong to the parent's context).
  pinned_pool().unlock_all();
  host_pool().unlock_all();
  g_gpu_lock.unlock();
}

}  // namespace loom::storage
