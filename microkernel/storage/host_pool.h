// HostPool: a thread-safe pooled allocator for host memory.
// Private to microkernel/storage; reached through storage.h.
//
// Requests are rounded up to a size class (four classes per power of two, so
// at most 25% is wasted) and a freed block goes back to its class's free list
// instead of to the system: deep-learning programs free and allocate the same
// few sizes every iteration, and a reused block is already mapped and warm,
// where a fresh large malloc costs an mmap plus a page fault per 4 KiB.
// Classes are spread over 16 locks, so threads working on different sizes
// rarely meet; per-thread caches were left out on purpose: they would make
// release_cached() and fork() inexact for little gain on few cores.
//
// Blocks below 4 KiB are 64-byte aligned, larger ones page aligned.
// release_cached() returns every pooled block to the system; with pooling
// off (LOOM_STORAGE=naive) every call goes straight to the system, so
// AddressSanitizer sees each block's true extent.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "microkernel/storage/stats.h"

namespace loom::storage {

class HostPool {
 public:
  using SystemAlloc = void* (*)(std::size_t bytes, std::size_t alignment);  // null on failure
  using SystemFree = void (*)(void* ptr);

  // Pooled blocks beyond max_cached_bytes go back to the system at free().
  HostPool(std::string name, SystemAlloc system_alloc, SystemFree system_free, bool pooling,
           std::int64_t max_cached_bytes);

  // Throws loom::Error (naming the request, in-use and cached bytes) when
  // the system has no memory even after the pool was released.
  void* alloc(std::size_t bytes, std::size_t alignment);
  // `bytes` and `alignment` must be those given to alloc.
  void free(void* ptr, std::size_t bytes, std::size_t alignment) noexcept;
  void release_cached() noexcept;
  Stats stats() const;
  // What alloc(bytes) counts against in_use.
  std::size_t rounded_size(std::size_t bytes, std::size_t alignment) const;

  // Around fork(): hold every lock so the child never inherits one held.
  void lock_all();
  void unlock_all();

  static constexpr int kClasses = 4 * 48;                     // up to 2^56 bytes
  static constexpr std::size_t kMaxPooled = std::size_t{1} << 40;  // larger: unpooled

 private:
  // Classes share 16 locks (class i uses lock i % 16): neighbouring sizes
  // get different locks, and fork() has few locks to hold.
  static constexpr int kLocks = 16;
  std::mutex& lock_of(int index) { return locks_[index % kLocks]; }
  bool pooled(std::size_t bytes, std::size_t alignment) const {
    return pooling_ && alignment <= 4096 && bytes <= kMaxPooled;
  }
  static int class_of(std::size_t bytes);
  static std::size_t class_size(int index);
  static std::size_t class_alignment(std::size_t size) { return size < 4096 ? 64 : 4096; }
  void* system_alloc_or_throw(std::size_t bytes, std::size_t alignment, std::size_t requested);
  void count_alloc(std::size_t size);

  const std::string name_;
  const SystemAlloc system_alloc_;
  const SystemFree system_free_;
  const bool pooling_;
  const std::int64_t max_cached_;
  std::mutex locks_[kLocks];
  std::vector<void*> free_blocks_[kClasses];
  std::atomic<std::int64_t> in_use_{0}, peak_{0}, cached_{0}, alloc_count_{0}, system_allocs_{0};
};

}  // namespace loom::storage
