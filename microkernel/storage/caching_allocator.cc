#include "microkernel/storage/caching_allocator.h"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <iterator>
#include <limits>
#include <utility>

#include "microkernel/base/error.h"
#include "microkernel/storage/human_bytes.h"

namespace loom::storage {
namespace {

// Above this, rounding (and the 2x reuse bound) could overflow; no device
// has that much memory, so such a request is simply out of memory.
constexpr std::size_t kMaxRequest = std::numeric_limits<std::size_t>::max() / 4;

std::size_t round_up(std::size_t bytes, std::size_t granularity) {
  return (bytes + granularity - 1) / granularity * granularity;
}

// "512 B", "1.50 GiB", "70.1 GiB": three significant digits, like nvidia-smi
// users read them.
void report(const char* what, const std::string& device_name, void* ptr, const char* detail) {
  std::fprintf(stderr, "loom: storage: %s(%p) on %s ignored: %s\n", what, ptr,
               device_name.c_str(), detail);
}

}  // namespace

CachingAllocator::CachingAllocator(std::unique_ptr<DeviceMemoryApi> api, std::string device_name)
    : api_(std::move(api)), device_name_(std::move(device_name)) {}

CachingAllocator::~CachingAllocator() {
  // Blocks still waiting for events are freed too: the allocator is going
  // away, so nobody could ever reuse them, and raw_free tolerates queued work
  // (its contract). Live blocks belong to their users; freeing them here
  // would turn a leak into a use-after-free.
  for (auto& [ptr, block] : blocks_) {
    if (block.live) continue;
    try {
      for (DeviceMemoryApi::Event event : block.pending) api_->destroy_event(event);
      api_->raw_free(ptr);
    } catch (const std::exception& e) {
      report("~CachingAllocator: raw_free", device_name_, ptr, e.what());
    }
  }
}

std::size_t CachingAllocator::round_size(std::size_t bytes) {
  // Rounding lets nearby sizes share a cached block (a pool keyed by exact
  // size would miss whenever a shape changes by a few elements). 512 B keeps
  // the waste of small requests (scalars, biases) small; from 1 MiB on, a
  // 2 MiB step (the driver's own large-page granularity) makes far fewer
  // distinct sizes, at a waste below 2 MiB per block. Zero bytes becomes one
  // minimum block, so each zero-byte alloc gets its own address.
  if (bytes < kLargeRequest) return std::max(kSmallGranularity, round_up(bytes, kSmallGranularity));
  return round_up(bytes, kLargeGranularity);
}

CachingAllocator::PoolKey CachingAllocator::key_of(void* ptr, const Block& block) {
  return {reinterpret_cast<std::uintptr_t>(block.stream), block.size,
          reinterpret_cast<std::uintptr_t>(ptr)};
}

void* CachingAllocator::alloc(std::size_t bytes, Stream stream) {
  std::lock_guard lock(mutex_);
  if (bytes > kMaxRequest) throw_out_of_memory(bytes);
  const std::size_t rounded = round_size(bytes);
  poll_pending_events();
  void* ptr = take_from_pool(rounded, stream);
  if (ptr == nullptr) ptr = alloc_from_device(bytes, rounded, stream);
  stats_.in_use += static_cast<std::int64_t>(blocks_.at(ptr).size);
  stats_.peak = std::max(stats_.peak, stats_.in_use);
  ++stats_.alloc_count;
  return ptr;
}

void* CachingAllocator::take_from_pool(std::size_t rounded, Stream stream) {
  // Only blocks of the same stream: work queued on it before the free runs
  // before anything queued after this alloc, so reuse needs no event. On
  // another stream it could overlap that work.
  //
  // Best fit, but at most max(2 * rounded, rounded + 2 MiB): the whole block
  // counts as in use while handed out, and a later request of the block's
  // real size would then go to the device, so the bound limits how much a
  // request can pin beyond its size. 2x caps that waste at half the block for
  // large requests; the +2 MiB floor (one large granule) lets small requests
  // take any nearby cached block rather than growing device memory for a few
  // hundred bytes. Blocks are never split: with no splitting there is no
  // coalescing either, which keeps the allocator small.
  const std::size_t limit = std::max(2 * rounded, rounded + kLargeGranularity);
  auto it = pool_.lower_bound({reinterpret_cast<std::uintptr_t>(stream), rounded, 0});
  if (it == pool_.end() || it->stream != reinterpret_cast<std::uintptr_t>(stream) ||
      it->size > limit) {
    return nullptr;
  }
  void* ptr = reinterpret_cast<void*>(it->ptr);
  pool_.erase(it);
  Block& block = blocks_.at(ptr);
  block.live = true;
  stats_.cached -= static_cast<std::int64_t>(block.size);
  return ptr;
}

void* CachingAllocator::alloc_from_device(std::size_t bytes, std::size_t rounded, Stream stream) {
  void* ptr = api_->raw_alloc(rounded);
  if (ptr == nullptr) {
    // The cache may hold what the device lacks: give it back and try once
    // more. Blocks waiting for other streams stay; freeing them could let the
    // device reuse memory that queued work still touches.
    release_cached_locked();
    ptr = api_->raw_alloc(rounded);
    if (ptr == nullptr) throw_out_of_memory(bytes);
  }
  try {
    Block block;
    block.size = rounded;
    block.stream = stream;
    block.live = true;
    blocks_.emplace(ptr, std::move(block));
  } catch (...) {
    api_->raw_free(ptr);
    throw;
  }
  ++stats_.system_allocs;
  return ptr;
}

void CachingAllocator::free(void* ptr) noexcept {
  if (ptr == nullptr) return;
  std::lock_guard lock(mutex_);
  try {
    free_locked(ptr);
    poll_pending_events();
  } catch (const std::exception& e) {
    report("free", device_name_, ptr, e.what());
  } catch (...) {
    report("free", device_name_, ptr, "unknown exception");
  }
}

void CachingAllocator::free_locked(void* ptr) {
  auto it = blocks_.find(ptr);
  if (it == blocks_.end() || !it->second.live) {
    // free is noexcept (it runs in destructors), so a bad pointer cannot
    // throw; crashing would lose the user's work over what may be a harmless
    // bookkeeping bug, so it is reported and ignored.
    report("free", device_name_, ptr,
           it == blocks_.end() ? "not a block of this allocator"
                               : "already freed (double free)");
    return;
  }
  Block& block = it->second;
  block.live = false;
  stats_.in_use -= static_cast<std::int64_t>(block.size);
  stats_.cached += static_cast<std::int64_t>(block.size);
  if (block.used_on.empty()) {
    pool_.insert(key_of(ptr, block));
    return;
  }
  // Work on the other streams may still read or write the block; an event on
  // each marks that work, and the block waits until all are done.
  try {
    block.pending.reserve(block.used_on.size());  // so only record_event can throw below
    waiting_.reserve(waiting_.size() + 1);
    for (Stream other : block.used_on) block.pending.push_back(api_->record_event(other));
    block.used_on.clear();
    waiting_.push_back(ptr);
  } catch (...) {
    // Without every event we cannot tell when the block is safe to reuse or
    // to raw_free, so it is retired: forgotten, neither reused nor freed.
    for (DeviceMemoryApi::Event event : block.pending) {
      try {
        api_->destroy_event(event);
      } catch (...) {
      }
    }
    stats_.cached -= static_cast<std::int64_t>(block.size);
    blocks_.erase(it);
    throw;
  }
}

void CachingAllocator::record_stream(void* ptr, Stream stream) {
  std::lock_guard lock(mutex_);
  auto it = blocks_.find(ptr);
  LOOM_CHECK(it != blocks_.end() && it->second.live, "storage: record_stream(", ptr, ") on ",
             device_name_, ": not a live block of this allocator");
  Block& block = it->second;
  // The allocating stream needs no event (stream order covers it), and one
  // event per stream is enough however often it is recorded.
  if (stream == block.stream ||
      std::find(block.used_on.begin(), block.used_on.end(), stream) != block.used_on.end()) {
    return;
  }
  block.used_on.push_back(stream);
}

void CachingAllocator::poll_pending_events() {
  // Polled lazily on alloc/free/release_cached rather than with callbacks:
  // the device gives none, and a few event queries are cheap next to the
  // device allocation a missed reuse would cost.
  for (std::size_t i = 0; i < waiting_.size();) {
    void* ptr = waiting_[i];
    Block& block = blocks_.at(ptr);
    bool done = std::all_of(block.pending.begin(), block.pending.end(),
                            [this](DeviceMemoryApi::Event e) { return api_->event_done(e); });
    if (!done) {
      ++i;
      continue;
    }
    // Pop before destroying, so a throwing destroy_event never leaves a
    // destroyed event behind to be destroyed again.
    while (!block.pending.empty()) {
      DeviceMemoryApi::Event event = block.pending.back();
      block.pending.pop_back();
      api_->destroy_event(event);
    }
    pool_.insert(key_of(ptr, block));
    waiting_[i] = waiting_.back();
    waiting_.pop_back();
  }
}

void CachingAllocator::release_cached() {
  std::lock_guard lock(mutex_);
  release_cached_locked();
}

void CachingAllocator::release_cached_locked() {
  poll_pending_events();
  while (!pool_.empty()) {
    auto it = pool_.begin();
    void* ptr = reinterpret_cast<void*>(it->ptr);
    stats_.cached -= static_cast<std::int64_t>(it->size);
    pool_.erase(it);
    blocks_.erase(ptr);
    // Forgotten before raw_free: if it throws, the block leaks rather than
    // being freed twice later.
    api_->raw_free(ptr);
  }
}

Stats CachingAllocator::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void CachingAllocator::throw_out_of_memory(std::size_t bytes) {
  // Whatever is still cached waits for work on other streams (the rest was
  // just released), so that is the remedy to name.
  const char* hint = stats_.cached > 0
                         ? "; free arrays, use a smaller batch, or synchronize the other streams "
                           "using cached blocks and call release_cached()"
                         : "; free arrays or use a smaller batch";
  LOOM_THROW(ErrorKind::kRuntime, "storage: out of memory on ", device_name_, " allocating ",
             human_bytes(std::uint64_t{bytes}), " (", bytes, " bytes): ",
             human_bytes(stats_.in_use), " in use by loom, ",
             human_bytes(stats_.cached), " cached, device total ",
             human_bytes(std::uint64_t{api_->total_memory()}), hint);
}

}  // namespace loom::storage
