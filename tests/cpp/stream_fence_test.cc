// Storage fences (runtime/ndarray/ndarray.h, Storage::add_fence): side-stream
// work attached to an allocation is handed to the kernel stream exactly once,
// by the first raw pointer taken or by the allocation's end. The ordering is
// checked with a fence that counts, on host arrays, so it runs everywhere;
// the CUDA events behind real fences run in nccl_test.cc on a GPU.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "microkernel/base/error.h"
#include "microkernel/storage/stream_fence.h"
#include "runtime/ndarray/ndarray.h"
#include "tests/cpp/error_text.h"

namespace loom {
namespace {

// Each fence stands for its own side stream unless given one.
struct CountingFence final : storage::StreamFence {
  CountingFence(std::vector<int>* log, int id, const void* stream = nullptr)
      : log(log), id(id), on(stream ? stream : this) {}
  void order_kernel_stream() override {
    if (fail) LOOM_THROW(ErrorKind::kRuntime, "device refused the wait");
    log->push_back(id);
  }
  const void* stream() const override { return on; }
  std::vector<int>* log;
  int id;
  const void* on;
  bool fail = false;
};

NDArray host_array() {
  const std::vector<float> values{1.0f, 2.0f, 3.0f};
  return NDArray::from_host(values.data(), 3, {3}, DType::kFloat32, Device::cpu());
}

TEST(StreamFence, TheFirstPointerTakenOrdersTheKernelStreamOnce) {
  std::vector<int> log;
  NDArray a = host_array();
  a.storage()->add_fence(std::make_shared<CountingFence>(&log, 1));
  EXPECT_TRUE(log.empty());  // adding a fence waits for nothing
  const float* p = a.data<float>();
  EXPECT_EQ(log, std::vector<int>{1});
  EXPECT_EQ(p[2], 3.0f);
  a.raw_data();
  EXPECT_EQ(log, std::vector<int>{1});  // handed over already
}

TEST(StreamFence, ViewsOfTheStorageShareItsFence) {
  std::vector<int> log;
  NDArray a = host_array();
  NDArray tail = a.as_strided({2}, {1}, 1);
  a.storage()->add_fence(std::make_shared<CountingFence>(&log, 7));
  EXPECT_EQ(tail.data<float>()[0], 2.0f);
  a.raw_data();
  EXPECT_EQ(log, std::vector<int>{7});
}

TEST(StreamFence, ALaterFenceOfTheSameStreamCoversThePendingOne) {
  std::vector<int> log;
  int lane = 0;
  NDArray a = host_array();
  a.storage()->add_fence(std::make_shared<CountingFence>(&log, 1, &lane));
  a.storage()->add_fence(std::make_shared<CountingFence>(&log, 2, &lane));
  EXPECT_TRUE(log.empty());  // the stream runs in order: waiting for 2 waits for 1
  a.raw_data();
  EXPECT_EQ(log, std::vector<int>{2});
}

TEST(StreamFence, AFenceOfAnotherStreamOrdersThePendingOneAtOnce) {
  std::vector<int> log;
  NDArray a = host_array();
  a.storage()->add_fence(std::make_shared<CountingFence>(&log, 1));
  a.storage()->add_fence(std::make_shared<CountingFence>(&log, 2));
  EXPECT_EQ(log, std::vector<int>{1});
  a.raw_data();
  EXPECT_EQ(log, (std::vector<int>{1, 2}));
}

TEST(StreamFence, OneFenceOnSeveralStoragesIsOrderedForEach) {
  std::vector<int> log;
  NDArray a = host_array(), b = host_array();
  auto fence = std::make_shared<CountingFence>(&log, 3);
  a.storage()->add_fence(fence);
  b.storage()->add_fence(fence);
  a.raw_data();
  b.raw_data();
  EXPECT_EQ(log, (std::vector<int>{3, 3}));
}

TEST(StreamFence, DroppingMemoryOwnedElsewhereOrdersItsFence) {
  // Its owner may hand it out again at once; loom's allocator instead waits
  // through record_stream, so dropping loom's own memory queues nothing.
  std::vector<int> log;
  std::vector<float> outside{1.0f, 2.0f};
  bool released = false;
  {
    auto memory = std::make_shared<Storage>(outside.data(), sizeof(float) * 2, Device::cpu(),
                                            [&] { released = true; });
    EXPECT_TRUE(memory->shared_outside());
    memory->add_fence(std::make_shared<CountingFence>(&log, 5));
  }
  EXPECT_TRUE(released);
  EXPECT_EQ(log, std::vector<int>{5});
  {
    NDArray own = host_array();
    EXPECT_FALSE(own.storage()->shared_outside());
    own.storage()->add_fence(std::make_shared<CountingFence>(&log, 6));
  }
  EXPECT_EQ(log, std::vector<int>{5});
}

TEST(StreamFence, ExportedMemoryCountsAsSharedOutside) {
  NDArray a = host_array();
  EXPECT_FALSE(a.storage()->shared_outside());
  a.storage()->mark_exported();
  EXPECT_TRUE(a.as_strided({1}, {1}, 2).storage()->shared_outside());
}

TEST(StreamFence, ARefusedWaitRaisesAndStaysPending) {
  std::vector<int> log;
  NDArray a = host_array();
  auto fence = std::make_shared<CountingFence>(&log, 9);
  fence->fail = true;
  a.storage()->add_fence(fence);
  EXPECT_NE(testing::error_text([&] { a.raw_data(); }).find("device refused the wait"), std::string::npos);
  fence->fail = false;
  a.raw_data();  // the pointer is only handed out once the wait is queued
  EXPECT_EQ(log, std::vector<int>{9});
}

TEST(StreamFence, SideStreamsNeedAGpu) {
  EXPECT_NE(testing::error_text([] { storage::create_side_stream(Device::cpu()); }).find("needs a GPU, got cpu(0)"),
            std::string::npos);
  EXPECT_NE(testing::error_text([] { storage::fence_after(nullptr, Device::cpu()); }).find("needs a GPU"),
            std::string::npos);
}

}  // namespace
}  // namespace loom
