// The host pool and the storage front door: exact statistics, reuse,
// alignment, release_cached, out-of-memory errors, and a multi-threaded
// stress that detects overlapping blocks. Expectations that depend on
// pooling check storage::pooling_enabled() (LOOM_STORAGE=naive turns it off
// for the AddressSanitizer run).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "microkernel/base/error.h"
#include "microkernel/storage/host_pool.h"
#include "microkernel/storage/storage.h"

namespace loom::storage {
namespace {

void* sys_alloc(std::size_t bytes, std::size_t alignment) {
  return std::aligned_alloc(alignment, (bytes + alignment - 1) / alignment * alignment);
}

TEST(HostPool, SizeClassesWasteAtMostAQuarter) {
  HostPool pool("test", sys_alloc, std::free, true, 1 << 30);
  EXPECT_EQ(pool.rounded_size(0, 64), 64u);
  EXPECT_EQ(pool.rounded_size(1, 64), 64u);
  EXPECT_EQ(pool.rounded_size(65, 64), 128u);
  EXPECT_EQ(pool.rounded_size(257, 64), 320u);
  EXPECT_EQ(pool.rounded_size(1000, 64), 1024u);
  EXPECT_EQ(pool.rounded_size(1025, 64), 1280u);
  for (std::size_t bytes = 1; bytes < (std::size_t{1} << 34); bytes = bytes * 3 / 2 + 1) {
    std::size_t size = pool.rounded_size(bytes, 64);
    ASSERT_GE(size, bytes);
    ASSERT_LE(size, std::max<std::size_t>(64, bytes + bytes / 4 + 64)) << bytes;
  }
}

TEST(HostPool, StatsAreExactAndFreedBlocksAreReused) {
  HostPool pool("test", sys_alloc, std::free, true, 1 << 30);
  void* a = pool.alloc(1000, 64);
  void* b = pool.alloc(5000, 64);
  Stats s = pool.stats();
  EXPECT_EQ(s.in_use, 1024 + 5120);
  EXPECT_EQ(s.peak, 1024 + 5120);
  EXPECT_EQ(s.alloc_count, 2);
  EXPECT_EQ(s.system_allocs, 2);
  pool.free(a, 1000, 64);
  s = pool.stats();
  EXPECT_EQ(s.in_use, 5120);
  EXPECT_EQ(s.cached, 1024);
  void* again = pool.alloc(1010, 64);  // same class: the cached block comes back
  EXPECT_EQ(again, a);
  s = pool.stats();
  EXPECT_EQ(s.system_allocs, 2);
  EXPECT_EQ(s.cached, 0);
  EXPECT_EQ(s.peak, 1024 + 5120);
  pool.free(again, 1010, 64);
  pool.free(b, 5000, 64);
  EXPECT_EQ(pool.stats().in_use, 0);
  EXPECT_EQ(pool.stats().cached, 1024 + 5120);
  pool.release_cached();
  EXPECT_EQ(pool.stats().cached, 0);
}

TEST(HostPool, HonoursAlignmentAndTheCacheLimit) {
  HostPool pool("test", sys_alloc, std::free, true, /*max_cached=*/8192);
  for (std::size_t alignment : {64, 128, 4096, 16384}) {
    void* p = pool.alloc(100, alignment);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % alignment, 0u) << alignment;
    pool.free(p, 100, alignment);
  }
  void* big = pool.alloc(20000, 64);
  pool.free(big, 20000, 64);
  EXPECT_LE(pool.stats().cached, 8192);  // over the limit: back to the system
  EXPECT_THROW(pool.alloc(100, 48), Error);
  pool.release_cached();
}

TEST(HostPool, OutOfMemoryReleasesTheCacheThenRaisesAClearError) {
  static int failures_left;
  auto flaky = [](std::size_t bytes, std::size_t alignment) -> void* {
    if (failures_left > 0) {
      --failures_left;
      return nullptr;
    }
    return sys_alloc(bytes, alignment);
  };
  HostPool pool("cpu(0)", flaky, std::free, true, 1 << 30);
  pool.free(pool.alloc(64, 64), 64, 64);
  failures_left = 1;  // the first try fails, the retry after releasing works
  void* p = pool.alloc(4096, 64);
  EXPECT_NE(p, nullptr);
  EXPECT_EQ(pool.stats().cached, 0);
  pool.free(pool.alloc(64, 64), 64, 64);
  failures_left = 2;
  pool.free(pool.alloc(64, 64), 64, 64);  // a pool hit: the system is not asked
  EXPECT_EQ(failures_left, 2);
  try {
    pool.alloc(std::size_t{3} << 30, 64);
    FAIL() << "expected an out-of-memory error";
  } catch (const Error& e) {
    std::string message = e.what();
    EXPECT_NE(message.find("out of memory on cpu(0)"), std::string::npos) << message;
    EXPECT_NE(message.find("3.00 GiB"), std::string::npos) << message;
    EXPECT_NE(message.find("in use"), std::string::npos) << message;
  }
  pool.free(p, 4096, 64);
  pool.release_cached();
}

TEST(Storage, HugeHostRequestIsAnErrorNotACrash) {
  try {
    alloc(std::size_t{1} << 50, Device::cpu());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("out of memory"), std::string::npos) << e.what();
  }
}

TEST(Storage, ZeroByteBlocksAreUniqueAndNonNull) {
  void* a = alloc(0, Device::cpu());
  void* b = alloc(0, Device::cpu());
  EXPECT_NE(a, nullptr);
  EXPECT_NE(a, b);
  free(a, 0, Device::cpu());
  free(b, 0, Device::cpu());
}

TEST(Storage, StatsTrackEveryDeviceAndReleaseCachedEmptiesThePools) {
  Stats before = stats(Device::cpu());
  void* p = alloc(123456, Device::cpu());
  EXPECT_EQ(stats(Device::cpu()).in_use - before.in_use,
            static_cast<std::int64_t>(rounded_size(123456, Device::cpu())));
  EXPECT_EQ(stats(Device::cpu()).alloc_count, before.alloc_count + 1);
  free(p, 123456, Device::cpu());
  EXPECT_EQ(stats(Device::cpu()).in_use, before.in_use);
  if (pooling_enabled()) {
    EXPECT_GT(stats(Device::cpu()).cached, 0);
  }
  release_cached();
  EXPECT_EQ(stats(Device::cpu()).cached, 0);

  void* pinned = alloc_pinned(4096);
  EXPECT_GE(pinned_stats().in_use, 4096);
  std::memset(pinned, 1, 4096);
  free_pinned(pinned, 4096);
  release_cached();
  EXPECT_EQ(pinned_stats().cached, 0);
}

TEST(Storage, ConcurrentAllocFreeNeverOverlaps) {
  // Each thread fills its blocks with its own byte and checks them before
  // freeing: two live blocks sharing memory would show a foreign byte.
  std::vector<std::thread> threads;
  std::atomic<int> corrupted{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([t, &corrupted] {
      std::mt19937 rng(t);
      std::uniform_int_distribution<std::size_t> size(0, 70000);
      std::vector<std::pair<unsigned char*, std::size_t>> live;
      for (int i = 0; i < 20000; ++i) {
        if (live.size() < 8 && (rng() % 2 == 0 || live.empty())) {
          std::size_t bytes = size(rng) >> (rng() % 8);
          auto* p = static_cast<unsigned char*>(alloc(bytes, Device::cpu()));
          std::memset(p, t + 1, bytes);
          live.push_back({p, bytes});
        } else {
          auto [p, bytes] = live.back();
          live.pop_back();
          for (std::size_t k = 0; k < bytes; k += 61)
            if (p[k] != t + 1) ++corrupted;
          free(p, bytes, Device::cpu());
        }
      }
      for (auto [p, bytes] : live) free(p, bytes, Device::cpu());
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(corrupted.load(), 0);
}

TEST(Storage, GpuAllocatorSkipsWithoutAGpu) {
  if (gpu_count() == 0) GTEST_SKIP() << "no GPU on this machine";
  Device gpu = Device::gpu(0);
  Stats before = stats(gpu);
  void* p = alloc(1 << 20, gpu);
  EXPECT_EQ(stats(gpu).in_use - before.in_use, static_cast<std::int64_t>(rounded_size(1 << 20, gpu)));
  free(p, 1 << 20, gpu);
  void* again = alloc(1 << 20, gpu);
  EXPECT_EQ(again, p);  // cached and reused on the same (default) stream
  free(again, 1 << 20, gpu);
  release_cached();
  EXPECT_EQ(stats(gpu).cached, 0);
  try {
    alloc(std::size_t{1} << 48, gpu);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("device total"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace loom::storage

namespace loom::storage {
namespace {

TEST(Storage, LargeHostBlocksSitOnHugePageBoundaries) {
  // Blocks of 4 MiB and more are 2 MiB aligned (and madvised for transparent
  // huge pages), so a huge page can back them from their first byte.
  void* p = alloc(std::size_t{8} << 20, Device::cpu());
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % (std::uintptr_t{2} << 20), 0u);
  static_cast<char*>(p)[(std::size_t{8} << 20) - 1] = 1;  // the whole block is usable
  free(p, std::size_t{8} << 20, Device::cpu());
}

}  // namespace
}  // namespace loom::storage
