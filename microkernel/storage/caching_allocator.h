// The stream-aware caching allocator for one GPU.
//
// Contract: alloc(bytes, stream) returns a block of at least `bytes` that may
// be used by work queued on `stream`; free(ptr) hands it back. A freed block
// is cached, not returned to the device, and is reused by a later alloc on
// the SAME stream: stream order guarantees the earlier work on it has run
// before anything queued after the reuse. A block also used on other streams
// (record_stream) is not reused until the work queued on those streams at the
// time of free() has finished. Zero-byte requests return a valid, unique,
// non-null pointer. Block addresses are whatever the device's raw_alloc gives
// (blocks are never split), so alignment is the device's (256 bytes on CUDA).
//
// Errors: when the device is out of memory, alloc frees the cache and retries
// once, then throws loom::Error(kRuntime) naming the device, the request, the
// bytes in use and cached, and the device's total. free() never throws: a
// pointer it does not own, or a double free, is reported on stderr and
// ignored.
//
// Threads: every member may be called from any thread; one mutex guards the
// allocator, and the DeviceMemoryApi is only called with it held.
//
// Knows nothing about CUDA: the device is reached through DeviceMemoryApi, so
// the logic is tested on the host with a fake device.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "microkernel/storage/stats.h"

namespace loom::storage {

// What the caching allocator needs from one device's runtime. Calls come
// from one thread at a time (the allocator's lock is held).
class DeviceMemoryApi {
 public:
  using Stream = void*;  // an opaque stream handle; nullptr is the default stream
  using Event = void*;
  virtual ~DeviceMemoryApi() = default;
  // nullptr when the device is out of memory; throws loom::Error for
  // anything else.
  virtual void* raw_alloc(std::size_t bytes) = 0;
  // Must be safe while work may still be queued on the block: the allocator's
  // destructor frees blocks whose events are pending (cudaFree synchronizes
  // the device first, so the CUDA implementation is).
  virtual void raw_free(void* ptr) = 0;
  virtual std::size_t total_memory() = 0;  // the device's total bytes, for error messages
  virtual Event record_event(Stream stream) = 0;  // marks "everything queued on stream so far"
  virtual bool event_done(Event event) = 0;       // has that work finished?
  virtual void destroy_event(Event event) = 0;
};

class CachingAllocator {
 public:
  using Stream = DeviceMemoryApi::Stream;

  // Requests below kLargeRequest are rounded up to a multiple of
  // kSmallGranularity, larger ones to a multiple of kLargeGranularity (see
  // round_size in the .cc for why).
  static constexpr std::size_t kSmallGranularity = 512;
  static constexpr std::size_t kLargeRequest = std::size_t{1} << 20;      // 1 MiB
  static constexpr std::size_t kLargeGranularity = std::size_t{2} << 20;  // 2 MiB

  // `device_name` (e.g. "gpu(0)") only appears in error messages.
  CachingAllocator(std::unique_ptr<DeviceMemoryApi> api, std::string device_name);
  // Returns every cached block with raw_free, including blocks still waiting
  // for events; blocks handed out and not freed are left alone.
  ~CachingAllocator();
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // A block of round_size(bytes) bytes for use on `stream`. Throws
  // loom::Error(kRuntime) when the device is out of memory even after the
  // cache was released, and whatever raw_alloc/event_done throw.
  void* alloc(std::size_t bytes, Stream stream);
  // Gives back a block from alloc(); its size and stream are remembered.
  // nullptr is ignored; an unknown pointer or a double free is reported on
  // stderr and ignored (free is noexcept so that destructors may call it).
  void free(void* ptr) noexcept;
  // Declares that work on `stream` also uses the live block `ptr`, so that
  // free() makes its reuse wait for that work. Throws loom::Error(kValue) if
  // ptr is not a live block of this allocator.
  void record_stream(void* ptr, Stream stream);
  // raw_frees every cached block whose pending events are done (e.g. to hand
  // memory to another library). Blocks still waiting stay cached.
  void release_cached();
  Stats stats() const;

  // The size a request of `bytes` occupies (and counts in Stats).
  static std::size_t round_size(std::size_t bytes);

 private:
  struct Block {
    std::size_t size = 0;
    Stream stream = nullptr;          // the stream it was allocated for
    bool live = false;                // handed out and not yet freed
    std::vector<Stream> used_on;      // other streams, from record_stream
    std::vector<DeviceMemoryApi::Event> pending;  // recorded at free on used_on
  };
  // The free pool, ordered so that lower_bound({stream, size, 0}) finds the
  // best fit on one stream. Pointers as integers: std::less on unrelated
  // pointers is total, but `<` inside a defaulted <=> would not be.
  struct PoolKey {
    std::uintptr_t stream;
    std::size_t size;
    std::uintptr_t ptr;
    auto operator<=>(const PoolKey&) const = default;
  };
  static PoolKey key_of(void* ptr, const Block& block);

  void* take_from_pool(std::size_t rounded, Stream stream);
  void* alloc_from_device(std::size_t bytes, std::size_t rounded, Stream stream);
  void free_locked(void* ptr);
  void poll_pending_events();
  void release_cached_locked();
  [[noreturn]] void throw_out_of_memory(std::size_t bytes);

  std::unique_ptr<DeviceMemoryApi> api_;
  const std::string device_name_;
  mutable std::mutex mutex_;
  std::unordered_map<void*, Block> blocks_;  // every block we own, live or cached
  std::set<PoolKey> pool_;                   // cached blocks ready for reuse
  std::vector<void*> waiting_;               // cached blocks with pending events
  Stats stats_;
};

}  // namespace loom::storage
