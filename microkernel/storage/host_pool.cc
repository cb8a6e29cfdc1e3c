#include "microkernel/storage/host_pool.h"

#include <bit>
#include <cstdio>

#include "microkernel/base/error.h"
#include "microkernel/storage/human_bytes.h"

namespace loom::storage {

HostPool::HostPool(std::string name, SystemAlloc system_alloc, SystemFree system_free, bool pooling,
                   std::int64_t max_cached_bytes)
    : name_(std::move(name)),
      system_alloc_(system_alloc),
      system_free_(system_free),
      pooling_(pooling),
      max_cached_(max_cached_bytes) {}

// Classes: 64-byte steps up to 256 bytes, then four per power of two
// (256, 320, 384, 448, 512, 640, ...), so rounding wastes at most 25%.
int HostPool::class_of(std::size_t bytes) {
  if (bytes <= 256) return bytes <= 64 ? 0 : static_cast<int>((bytes - 1) / 64);
  int power = std::bit_width(bytes - 1) - 1;  // 2^power < bytes <= 2^(power+1)
  std::size_t step = std::size_t{1} << (power - 2);
  int quarter = static_cast<int>((bytes - 1 - (std::size_t{1} << power)) / step);
  return 4 + (power - 8) * 4 + quarter;
}

std::size_t HostPool::class_size(int index) {
  if (index < 4) return static_cast<std::size_t>(index + 1) * 64;
  int power = 8 + (index - 4) / 4;
  int quarter = (index - 4) % 4;
  std::size_t step = std::size_t{1} << (power - 2);
  return (std::size_t{1} << power) + static_cast<std::size_t>(quarter + 1) * step;
}

std::size_t HostPool::rounded_size(std::size_t bytes, std::size_t alignment) const {
  // Classes below 4 KiB are only 64-byte aligned; a stricter request is
  // served from the page-aligned classes.
  if (alignment > 64) bytes = std::max<std::size_t>(bytes, 4096);
  if (!pooled(bytes, alignment)) return std::max<std::size_t>(64, (bytes + 63) / 64 * 64);
  return class_size(class_of(bytes));
}

void HostPool::count_alloc(std::size_t size) {
  std::int64_t now = in_use_.fetch_add(static_cast<std::int64_t>(size)) + static_cast<std::int64_t>(size);
  std::int64_t old_peak = peak_.load();
  while (now > old_peak && !peak_.compare_exchange_weak(old_peak, now)) {
  }
  alloc_count_.fetch_add(1, std::memory_order_relaxed);
}

void* HostPool::system_alloc_or_throw(std::size_t size, std::size_t alignment, std::size_t requested) {
  void* block = system_alloc_(size, alignment);
  if (block == nullptr && cached_.load() > 0) {
    release_cached();  // the pool may hold what the system lacks
    block = system_alloc_(size, alignment);
  }
  LOOM_CHECK_KIND(block != nullptr, ErrorKind::kRuntime, "storage: out of memory on ", name_,
                  " allocating ", human_bytes(requested), " (", requested, " bytes): ",
                  human_bytes(in_use_.load()), " in use by loom, ", human_bytes(cached_.load()),
                  " cached; free arrays or use a smaller batch");
  system_allocs_.fetch_add(1, std::memory_order_relaxed);
  return block;
}

void* HostPool::alloc(std::size_t bytes, std::size_t alignment) {
  LOOM_CHECK(alignment != 0 && (alignment & (alignment - 1)) == 0, "storage: alignment ", alignment,
             " is not a power of two");
  std::size_t size = rounded_size(bytes, alignment);
  if (!pooled(bytes, alignment)) {
    void* block = system_alloc_or_throw(size, std::max<std::size_t>(alignment, 64), bytes);
    count_alloc(size);
    return block;
  }
  int index = class_of(size);
  void* block = nullptr;
  {
    std::lock_guard<std::mutex> hold(lock_of(index));
    std::vector<void*>& free_blocks = free_blocks_[index];
    if (!free_blocks.empty()) {
      block = free_blocks.back();
      free_blocks.pop_back();
    }
  }
  if (block != nullptr) {
    cached_.fetch_sub(static_cast<std::int64_t>(size));
  } else {
    block = system_alloc_or_throw(size, class_alignment(size), bytes);
  }
  count_alloc(size);
  return block;
}

void HostPool::free(void* ptr, std::size_t bytes, std::size_t alignment) noexcept {
  if (ptr == nullptr) return;
  std::size_t size = rounded_size(bytes, alignment);
  in_use_.fetch_sub(static_cast<std::int64_t>(size));
  if (!pooled(bytes, alignment) ||
      cached_.load(std::memory_order_relaxed) + static_cast<std::int64_t>(size) > max_cached_) {
    system_free_(ptr);
    return;
  }
  int index = class_of(size);
  cached_.fetch_add(static_cast<std::int64_t>(size));
  try {
    std::lock_guard<std::mutex> hold(lock_of(index));
    free_blocks_[index].push_back(ptr);
  } catch (...) {  // the list could not grow: give the block back instead
    cached_.fetch_sub(static_cast<std::int64_t>(size));
    system_free_(ptr);
  }
}

void HostPool::release_cached() noexcept {
  for (int index = 0; index < kClasses; ++index) {
    std::vector<void*> blocks;
    {
      std::lock_guard<std::mutex> hold(lock_of(index));
      blocks.swap(free_blocks_[index]);
    }
    for (void* block : blocks) system_free_(block);
    cached_.fetch_sub(static_cast<std::int64_t>(blocks.size() * class_size(index)));
  }
}

Stats HostPool::stats() const {
  return {in_use_.load(), peak_.load(), cached_.load(), alloc_count_.load(), system_allocs_.load()};
}

void HostPool::lock_all() {
  for (std::mutex& lock : locks_) lock.lock();
}

void HostPool::unlock_all() {
  for (std::mutex& lock : locks_) lock.unlock();
}

}  // namespace loom::storage
