// The caching allocator against a fake device: host memory for blocks, and
// events that the test completes by hand, stream by stream.
#include "microkernel/storage/caching_allocator.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>
#include <vector>

#include "microkernel/base/error.h"

namespace loom {
namespace {

using storage::CachingAllocator;
using storage::DeviceMemoryApi;
using Stream = DeviceMemoryApi::Stream;

constexpr std::size_t kMiB = std::size_t{1} << 20;

Stream stream(int id) { return reinterpret_cast<Stream>(static_cast<std::uintptr_t>(id) * 16); }

// The device: outlives the allocator so tests can inspect it after the
// allocator's destructor ran. Events carry a per-stream sequence number; an
// event is done once the test completes its stream up to that number.
struct FakeDevice {
  struct FakeEvent {
    Stream stream;
    std::uint64_t seq;
  };

  explicit FakeDevice(std::size_t capacity) : capacity(capacity) {}
  ~FakeDevice() {
    for (auto& [ptr, bytes] : live) std::free(ptr);  // blocks the test never freed
  }

  // Everything recorded on `s` so far has finished.
  void complete(Stream s) {
    std::lock_guard lock(mutex);
    completed[s] = recorded[s];
  }
  void complete_all() {
    std::lock_guard lock(mutex);
    completed = recorded;
  }

  std::mutex mutex;
  const std::size_t capacity;
  std::size_t live_bytes = 0;
  std::unordered_map<void*, std::size_t> live;
  std::int64_t raw_allocs = 0;  // successful ones
  std::int64_t failed_allocs = 0;
  std::int64_t raw_frees = 0;
  std::int64_t live_events = 0;
  std::map<Stream, std::uint64_t> recorded, completed;
};

class FakeDeviceApi : public DeviceMemoryApi {
 public:
  explicit FakeDeviceApi(FakeDevice& device) : device_(device) {}

  void* raw_alloc(std::size_t bytes) override {
    std::lock_guard lock(device_.mutex);
    if (device_.live_bytes + bytes > device_.capacity) {
      ++device_.failed_allocs;
      return nullptr;
    }
    void* ptr = std::malloc(bytes);
    if (ptr == nullptr) return nullptr;
    device_.live.emplace(ptr, bytes);
    device_.live_bytes += bytes;
    ++device_.raw_allocs;
    return ptr;
  }
  void raw_free(void* ptr) override {
    std::lock_guard lock(device_.mutex);
    auto it = device_.live.find(ptr);
    if (it == device_.live.end()) {
      ADD_FAILURE() << "raw_free of a pointer the device did not allocate";
      return;
    }
    device_.live_bytes -= it->second;
    device_.live.erase(it);
    ++device_.raw_frees;
    std::free(ptr);
  }
  std::size_t total_memory() override { return device_.capacity; }
  Event record_event(Stream s) override {
    std::lock_guard lock(device_.mutex);
    ++device_.live_events;
    return new FakeDevice::FakeEvent{s, ++device_.recorded[s]};
  }
  bool event_done(Event event) override {
    std::lock_guard lock(device_.mutex);
    auto* fake = static_cast<FakeDevice::FakeEvent*>(event);
    return device_.completed[fake->stream] >= fake->seq;
  }
  void destroy_event(Event event) override {
    std::lock_guard lock(device_.mutex);
    --device_.live_events;
    delete static_cast<FakeDevice::FakeEvent*>(event);
  }

 private:
  FakeDevice& device_;
};

std::unique_ptr<DeviceMemoryApi> api_for(FakeDevice& device) {
  return std::make_unique<FakeDeviceApi>(device);
}

TEST(CachingAllocator, RoundsSmallRequestsTo512BytesAndLargeOnesTo2MiB) {
  EXPECT_EQ(CachingAllocator::round_size(0), 512u);
  EXPECT_EQ(CachingAllocator::round_size(1), 512u);
  EXPECT_EQ(CachingAllocator::round_size(512), 512u);
  EXPECT_EQ(CachingAllocator::round_size(513), 1024u);
  EXPECT_EQ(CachingAllocator::round_size(kMiB - 1), kMiB);
  EXPECT_EQ(CachingAllocator::round_size(kMiB), 2 * kMiB);
  EXPECT_EQ(CachingAllocator::round_size(2 * kMiB + 1), 4 * kMiB);
}

TEST(CachingAllocator, FreedBlockIsReusedOnTheSameStream) {
  FakeDevice device(64 * kMiB);
  CachingAllocator allocator(api_for(device), "gpu(0)");
  void* first = allocator.alloc(1000, stream(1));
  allocator.free(first);
  void* second = allocator.alloc(900, stream(1));  // same 1024-byte class
  EXPECT_EQ(second, first);
  EXPECT_EQ(allocator.stats().system_allocs, 1);
  EXPECT_EQ(allocator.stats().alloc_count, 2);
  EXPECT_EQ(device.raw_allocs, 1);
  EXPECT_EQ(device.live_events, 0);  // same-stream reuse needs no event
  allocator.free(second);
}

TEST(CachingAllocator, FreedBlockIsNotReusedAcrossStreams) {
  FakeDevice device(64 * kMiB);
  CachingAllocator allocator(api_for(device), "gpu(0)");
  void* on_one = allocator.alloc(1000, stream(1));
  allocator.free(on_one);
  void* on_two = allocator.alloc(1000, stream(2));
  void* on_default = allocator.alloc(1000, nullptr);
  EXPECT_NE(on_two, on_one);
  EXPECT_NE(on_default, on_one);
  EXPECT_EQ(allocator.stats().system_allocs, 3);
  EXPECT_EQ(allocator.stats().cached, 1024);  // on_one still waits for stream 1
  EXPECT_EQ(allocator.alloc(1000, stream(1)), on_one);
}

TEST(CachingAllocator, RecordStreamKeepsBlockOutOfPoolUntilEventIsDone) {
  FakeDevice device(64 * kMiB);
  CachingAllocator allocator(api_for(device), "gpu(0)");
  void* shared = allocator.alloc(4096, stream(1));
  allocator.record_stream(shared, stream(2));
  allocator.free(shared);
  EXPECT_EQ(device.recorded[stream(2)], 1u);  // one event, on the other stream only
  EXPECT_EQ(device.recorded[stream(1)], 0u);
  EXPECT_EQ(allocator.stats().cached, 4096);

  void* while_pending = allocator.alloc(4096, stream(1));
  EXPECT_NE(while_pending, shared);
  EXPECT_EQ(allocator.stats().system_allocs, 2);
  EXPECT_EQ(device.raw_frees, 0);

  device.complete(stream(2));
  void* after = allocator.alloc(4096, stream(1));
  EXPECT_EQ(after, shared);
  EXPECT_EQ(allocator.stats().system_allocs, 2);
  EXPECT_EQ(device.live_events, 0);  // destroyed once done
  allocator.free(while_pending);
  allocator.free(after);
}

TEST(CachingAllocator, RecordStreamOnOwnStreamNeedsNoEvent) {
  FakeDevice device(64 * kMiB);
  CachingAllocator allocator(api_for(device), "gpu(0)");
  void* block = allocator.alloc(100, stream(1));
  allocator.record_stream(block, stream(1));
  allocator.free(block);
  EXPECT_EQ(device.recorded[stream(1)], 0u);
  EXPECT_EQ(allocator.alloc(100, stream(1)), block);
}

TEST(CachingAllocator, RecordStreamOfUnknownPointerThrows) {
  FakeDevice device(64 * kMiB);
  CachingAllocator allocator(api_for(device), "gpu(0)");
  int not_a_block = 0;
  EXPECT_THROW(allocator.record_stream(&not_a_block, stream(2)), Error);
  void* freed = allocator.alloc(100, stream(1));
  allocator.free(freed);
  EXPECT_THROW(allocator.record_stream(freed, stream(2)), Error);
}

TEST(CachingAllocator, ReuseIsBestFitWithinTwiceOrTwoMiBMoreThanTheRequest) {
  FakeDevice device(256 * kMiB);
  CachingAllocator allocator(api_for(device), "gpu(0)");
  void* big = allocator.alloc(8 * kMiB, stream(1));
  void* medium = allocator.alloc(6 * kMiB, stream(1));
  allocator.free(big);
  allocator.free(medium);
  // 2 MiB: limit max(4, 2 + 2) = 4 MiB, so neither cached block.
  void* two = allocator.alloc(2 * kMiB, stream(1));
  EXPECT_NE(two, big);
  EXPECT_NE(two, medium);
  EXPECT_EQ(allocator.stats().system_allocs, 3);
  // 5 MiB rounds to 6 MiB: the best fit is the 6 MiB block, not the 8 MiB one.
  EXPECT_EQ(allocator.alloc(5 * kMiB, stream(1)), medium);
  // 4 MiB: limit 8 MiB, so the 8 MiB block is fine.
  EXPECT_EQ(allocator.alloc(4 * kMiB, stream(1)), big);
  EXPECT_EQ(allocator.stats().system_allocs, 3);

  // Small requests may take a block up to 2 MiB larger.
  void* small_block = allocator.alloc(64 * 1024, stream(1));
  allocator.free(small_block);
  EXPECT_EQ(allocator.alloc(100, stream(1)), small_block);
  EXPECT_EQ(allocator.stats().in_use, 2 * kMiB + 6 * kMiB + 8 * kMiB + 64 * 1024);
}

TEST(CachingAllocator, StatsAreExactThroughASequence) {
  FakeDevice device(256 * kMiB);
  CachingAllocator allocator(api_for(device), "gpu(0)");
  void* a = allocator.alloc(100, stream(1));      // 512
  void* b = allocator.alloc(3 * kMiB, stream(1));  // 4 MiB
  void* c = allocator.alloc(0, stream(2));        // 512
  auto stats = allocator.stats();
  EXPECT_EQ(stats.in_use, 1024 + 4 * kMiB);
  EXPECT_EQ(stats.peak, 1024 + 4 * kMiB);
  EXPECT_EQ(stats.cached, 0);
  EXPECT_EQ(stats.alloc_count, 3);
  EXPECT_EQ(stats.system_allocs, 3);

  allocator.free(b);
  stats = allocator.stats();
  EXPECT_EQ(stats.in_use, 1024);
  EXPECT_EQ(stats.peak, 1024 + 4 * kMiB);
  EXPECT_EQ(stats.cached, 4 * kMiB);

  void* d = allocator.alloc(static_cast<std::size_t>(3.5 * kMiB), stream(1));  // reuses b
  EXPECT_EQ(d, b);
  allocator.record_stream(a, stream(3));
  allocator.free(a);  // waits for stream 3, still counted as cached
  stats = allocator.stats();
  EXPECT_EQ(stats.in_use, 512 + 4 * kMiB);
  EXPECT_EQ(stats.peak, 1024 + 4 * kMiB);
  EXPECT_EQ(stats.cached, 512);
  EXPECT_EQ(stats.alloc_count, 4);
  EXPECT_EQ(stats.system_allocs, 3);

  allocator.free(c);
  allocator.free(d);
  device.complete(stream(3));
  allocator.release_cached();
  stats = allocator.stats();
  EXPECT_EQ(stats.in_use, 0);
  EXPECT_EQ(stats.cached, 0);
  EXPECT_EQ(stats.peak, 1024 + 4 * kMiB);
  EXPECT_EQ(device.live_bytes, 0u);
  EXPECT_EQ(device.raw_frees, 3);
}

TEST(CachingAllocator, ReleaseCachedReturnsReadyBlocksAndKeepsWaitingOnes) {
  FakeDevice device(256 * kMiB);
  CachingAllocator allocator(api_for(device), "gpu(0)");
  void* ready = allocator.alloc(4 * kMiB, stream(1));
  void* waiting = allocator.alloc(2 * kMiB, stream(1));
  void* live = allocator.alloc(1000, stream(1));
  allocator.record_stream(waiting, stream(2));
  allocator.free(ready);
  allocator.free(waiting);
  EXPECT_EQ(device.live_bytes, 6 * kMiB + 1024);

  allocator.release_cached();
  EXPECT_EQ(device.live_bytes, 2 * kMiB + 1024);
  EXPECT_EQ(device.raw_frees, 1);
  EXPECT_EQ(allocator.stats().cached, 2 * kMiB);
  EXPECT_EQ(allocator.stats().in_use, 1024);

  device.complete(stream(2));
  allocator.release_cached();
  EXPECT_EQ(device.live_bytes, 1024u);
  EXPECT_EQ(allocator.stats().cached, 0);
  EXPECT_EQ(device.live_events, 0);
  allocator.free(live);
}

TEST(CachingAllocator, OutOfMemoryReleasesTheCacheAndRetries) {
  FakeDevice device(10 * kMiB);
  CachingAllocator allocator(api_for(device), "gpu(0)");
  void* cached = allocator.alloc(4 * kMiB, stream(1));
  void* waiting = allocator.alloc(2 * kMiB, stream(1));
  allocator.record_stream(waiting, stream(2));
  allocator.free(cached);
  allocator.free(waiting);

  // 6 MiB on another stream: 6 + 6 > 10 fails, releasing the 4 MiB block
  // makes room; the block waiting for stream 2 must survive.
  void* big = allocator.alloc(6 * kMiB, stream(3));
  EXPECT_NE(big, nullptr);
  EXPECT_EQ(device.failed_allocs, 1);
  EXPECT_EQ(device.raw_frees, 1);
  EXPECT_EQ(device.live.count(waiting), 1u);
  EXPECT_EQ(device.live_bytes, 8 * kMiB);
  auto stats = allocator.stats();
  EXPECT_EQ(stats.cached, 2 * kMiB);
  EXPECT_EQ(stats.in_use, 6 * kMiB);
  EXPECT_EQ(stats.system_allocs, 3);
  allocator.free(big);
}

TEST(CachingAllocator, OutOfMemoryAfterRetryThrowsErrorNamingDeviceAndSizes) {
  FakeDevice device(8 * kMiB);
  CachingAllocator allocator(api_for(device), "gpu(3)");
  void* live = allocator.alloc(4 * kMiB, stream(1));
  void* waiting = allocator.alloc(2 * kMiB, stream(1));
  allocator.record_stream(waiting, stream(2));
  allocator.free(waiting);

  const std::size_t request = 3 * kMiB + 12345;
  try {
    allocator.alloc(request, stream(1));
    FAIL() << "expected an out-of-memory error";
  } catch (const Error& e) {
    std::string message = e.what();
    EXPECT_EQ(e.kind(), ErrorKind::kRuntime);
    EXPECT_NE(message.find("out of memory on gpu(3)"), std::string::npos) << message;
    EXPECT_NE(message.find("(3158073 bytes)"), std::string::npos) << message;
    EXPECT_NE(message.find("3.01 MiB"), std::string::npos) << message;
    EXPECT_NE(message.find("4.00 MiB in use"), std::string::npos) << message;
    EXPECT_NE(message.find("2.00 MiB cached"), std::string::npos) << message;
    EXPECT_NE(message.find("device total 8.00 MiB"), std::string::npos) << message;
    EXPECT_NE(message.find("smaller batch"), std::string::npos) << message;
    EXPECT_NE(message.find("release_cached"), std::string::npos) << message;
  }
  EXPECT_EQ(device.failed_allocs, 2);  // one retry, not more
  auto stats = allocator.stats();
  EXPECT_EQ(stats.alloc_count, 2);  // the failed call is not counted
  EXPECT_EQ(stats.in_use, 4 * kMiB);

  // Still usable: once stream 2 is done the retry finds the room.
  device.complete(stream(2));
  void* fits = allocator.alloc(request, stream(1));
  EXPECT_NE(fits, nullptr);
  allocator.free(fits);
  allocator.free(live);
}

TEST(CachingAllocator, OutOfMemoryWithEmptyCacheSaysSo) {
  FakeDevice device(2 * kMiB);
  CachingAllocator allocator(api_for(device), "gpu(0)");
  try {
    allocator.alloc(std::size_t{3} << 30, nullptr);
    FAIL() << "expected an out-of-memory error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "storage: out of memory on gpu(0) allocating 3.00 GiB (3221225472 bytes): 0 B in "
              "use by loom, 0 B cached, device total 2.00 MiB; free arrays or use a smaller "
              "batch");
  }
  EXPECT_THROW(allocator.alloc(~std::size_t{0}, nullptr), Error);  // no overflow in rounding
}

TEST(CachingAllocator, ZeroByteAllocationsAreUniqueAndNonNull) {
  FakeDevice device(64 * kMiB);
  CachingAllocator allocator(api_for(device), "gpu(0)");
  std::set<void*> seen;
  for (int i = 0; i < 100; ++i) {
    void* ptr = allocator.alloc(0, stream(1));
    ASSERT_NE(ptr, nullptr);
    EXPECT_TRUE(seen.insert(ptr).second);
  }
  EXPECT_EQ(allocator.stats().in_use, 100 * 512);
  for (void* ptr : seen) allocator.free(ptr);
}

TEST(CachingAllocator, FreeOfUnknownOrFreedPointerIsReportedAndIgnored) {
  FakeDevice device(64 * kMiB);
  CachingAllocator allocator(api_for(device), "gpu(0)");
  void* block = allocator.alloc(100, stream(1));
  int not_a_block = 0;

  testing::internal::CaptureStderr();
  allocator.free(&not_a_block);
  allocator.free(nullptr);  // silently, like std::free
  allocator.free(block);
  allocator.free(block);
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("not a block of this allocator"), std::string::npos) << err;
  EXPECT_NE(err.find("double free"), std::string::npos) << err;

  auto stats = allocator.stats();
  EXPECT_EQ(stats.in_use, 0);
  EXPECT_EQ(stats.cached, 512);  // counted once
  EXPECT_EQ(allocator.alloc(100, stream(1)), block);
  EXPECT_EQ(allocator.alloc(100, stream(1)) == block, false);  // handed out once
}

TEST(CachingAllocator, DestructorReturnsCachedBlocksButNotLiveOnes) {
  FakeDevice device(64 * kMiB);
  void* live = nullptr;
  {
    CachingAllocator allocator(api_for(device), "gpu(0)");
    live = allocator.alloc(1000, stream(1));
    allocator.free(allocator.alloc(3 * kMiB, stream(1)));
    void* waiting = allocator.alloc(2000, stream(1));
    allocator.record_stream(waiting, stream(2));
    allocator.free(waiting);
    EXPECT_EQ(device.live_events, 1);
  }
  EXPECT_EQ(device.raw_frees, 2);
  EXPECT_EQ(device.live_bytes, 1024u);
  EXPECT_EQ(device.live.count(live), 1u);
  EXPECT_EQ(device.live_events, 0);
}

// Eight threads allocate and free random sizes on three streams, some blocks
// also used on another stream. Each fills its block with its own byte and
// checks it before freeing: two live blocks that overlap would corrupt one
// another (and ASan/TSan would flag the shared bytes).
TEST(CachingAllocator, ConcurrentAllocFreeNeverHandsOutOverlappingBlocks) {
  FakeDevice device(512 * kMiB);
  CachingAllocator allocator(api_for(device), "gpu(0)");
  constexpr int kThreads = 8;
  constexpr int kIterations = 1500;
  const Stream streams[] = {nullptr, stream(1), stream(2)};
  std::atomic<std::int64_t> allocs{0};
  std::atomic<std::int64_t> corrupted{0};

  auto work = [&](int thread) {
    struct Live {
      unsigned char* ptr;
      std::size_t bytes;
      unsigned char fill;
    };
    std::mt19937 rng(thread + 1);
    std::vector<Live> live;
    auto release = [&](std::size_t index) {
      Live block = live[index];
      bool intact = block.bytes == 0 ||
                    (block.ptr[0] == block.fill &&
                     std::memcmp(block.ptr, block.ptr + 1, block.bytes - 1) == 0);
      if (!intact) ++corrupted;
      allocator.free(block.ptr);
      live[index] = live.back();
      live.pop_back();
    };
    for (int i = 0; i < kIterations; ++i) {
      if (live.size() < 4 && (live.empty() || rng() % 2 == 0)) {
        std::size_t bytes = rng() % 16 == 0 ? rng() % (3 * kMiB) : rng() % 16384;
        Stream on = streams[rng() % 3];
        auto* ptr = static_cast<unsigned char*>(allocator.alloc(bytes, on));
        ++allocs;
        unsigned char fill = static_cast<unsigned char>(thread * 32 + i) | 1;
        std::memset(ptr, fill, bytes);
        if (rng() % 4 == 0) allocator.record_stream(ptr, streams[rng() % 3]);
        live.push_back({ptr, bytes, fill});
      } else {
        release(rng() % live.size());
      }
      if (i % 64 == 0) device.complete_all();
    }
    while (!live.empty()) release(live.size() - 1);
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(work, t);
  for (auto& t : threads) t.join();

  EXPECT_EQ(corrupted.load(), 0);
  auto stats = allocator.stats();
  EXPECT_EQ(stats.in_use, 0);
  EXPECT_EQ(stats.alloc_count, allocs.load());
  EXPECT_EQ(stats.system_allocs, device.raw_allocs);
  EXPECT_LT(stats.system_allocs, stats.alloc_count / 4);  // the cache did its job
  EXPECT_EQ(static_cast<std::size_t>(stats.cached), device.live_bytes);
  device.complete_all();
  allocator.release_cached();
  EXPECT_EQ(allocator.stats().cached, 0);
  EXPECT_EQ(device.live_bytes, 0u);
  EXPECT_EQ(device.live_events, 0);
}

}  // namespace
}  // namespace loom
