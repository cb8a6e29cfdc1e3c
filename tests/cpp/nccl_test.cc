// NCCL collectives (microkernel/comm/nccl_comm.h) and the runtime's
// collectives over arrays on several GPUs (runtime/comm/device_collectives.h).
// They need a GPU; with one, every collective runs over a group of one,
// which still goes through NCCL's setup, launch and stream ordering. Builds
// without NCCL check the message that says what to install.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "loom/ops/add.h"
#include "loom/ops/mul.h"
#include "loom/ops/sum.h"
#include "microkernel/comm/nccl_comm.h"
#include "microkernel/storage/storage.h"
#include "runtime/comm/device_collectives.h"
#include "runtime/comm/rank_collectives.h"
#include "runtime/ndarray/ndarray.h"
#include "tests/cpp/error_text.h"

namespace loom {
namespace {

using testing::error_text;

bool nccl_and_gpu() { return comm::nccl_available() && storage::gpu_count() > 0; }

NDArray on_gpu(const std::vector<float>& values, int device = 0) {
  return NDArray::from_host(values.data(), static_cast<std::int64_t>(values.size()),
                            {static_cast<std::int64_t>(values.size())}, DType::kFloat32, Device::gpu(device));
}

std::vector<float> to_host(const NDArray& a) {
  std::vector<float> out(static_cast<std::size_t>(a.numel()));
  a.copy_to_host(out.data());
  return out;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(Nccl, ABuildWithoutNcclSaysWhatToInstall) {
  if (comm::nccl_available()) GTEST_SKIP() << "built with NCCL";
  EXPECT_TRUE(contains(error_text([] { comm::nccl_unique_id(); }), "built without NCCL"));
  EXPECT_EQ(comm::nccl_version(), 0);
}

TEST(Nccl, CollectivesOverOneGpuKeepTheValues) {
  if (!nccl_and_gpu()) GTEST_SKIP() << "needs NCCL and a GPU";
  EXPECT_GE(comm::nccl_version(), 20000);
  auto comms = comm::NcclComm::for_devices({0});
  ASSERT_EQ(comms.size(), 1u);
  comm::NcclComm& c = *comms[0];
  EXPECT_EQ(c.rank(), 0);
  EXPECT_EQ(c.size(), 1);
  const std::vector<float> values{1.5f, -2.0f, 3.25f, 4.0f};
  const NDArray x = on_gpu(values);
  for (comm::ReduceOp op : {comm::ReduceOp::kSum, comm::ReduceOp::kMax, comm::ReduceOp::kAvg}) {
    NDArray y = NDArray::empty({4}, DType::kFloat32, Device::gpu(0));
    c.all_reduce(x.raw_data(), y.raw_data(), 4, static_cast<int>(DType::kFloat32), op);
    EXPECT_EQ(to_host(y), values);
  }
  NDArray b = NDArray::empty({4}, DType::kFloat32, Device::gpu(0));
  c.broadcast(x.raw_data(), b.raw_data(), 4, static_cast<int>(DType::kFloat32), 0);
  EXPECT_EQ(to_host(b), values);
  NDArray g = NDArray::empty({4}, DType::kFloat32, Device::gpu(0));
  c.all_gather(x.raw_data(), g.raw_data(), 4, static_cast<int>(DType::kFloat32));
  EXPECT_EQ(to_host(g), values);
  NDArray s = NDArray::empty({4}, DType::kFloat32, Device::gpu(0));
  c.reduce_scatter(x.raw_data(), s.raw_data(), 4, static_cast<int>(DType::kFloat32));
  EXPECT_EQ(to_host(s), values);
}

TEST(Nccl, AProcessJoinsByUniqueId) {
  if (!nccl_and_gpu()) GTEST_SKIP() << "needs NCCL and a GPU";
  comm::NcclComm c(comm::nccl_unique_id(), 0, 1, 0);
  EXPECT_EQ(c.device(), 0);
  NDArray x = on_gpu({7.0f, 8.0f});
  c.all_reduce(x.raw_data(), x.raw_data(), 2, static_cast<int>(DType::kFloat32));  // in place
  EXPECT_EQ(to_host(x), (std::vector<float>{7.0f, 8.0f}));
}

TEST(Nccl, DeviceCollectivesSumOneArrayPerGpu) {
  if (!nccl_and_gpu()) GTEST_SKIP() << "needs NCCL and a GPU";
  const int n = storage::gpu_count();
  std::vector<NDArray> arrays;
  float total = 0;
  for (int d = 0; d < n; ++d) {
    arrays.push_back(on_gpu({float(d + 1), float(10 * (d + 1))}, d));
    total += float(d + 1);
  }
  const std::vector<NDArray> sums = all_reduce_across_devices(arrays);
  ASSERT_EQ(sums.size(), static_cast<std::size_t>(n));
  for (int d = 0; d < n; ++d) {
    EXPECT_EQ(sums[d].device(), Device::gpu(d));
    EXPECT_EQ(to_host(sums[d]), (std::vector<float>{total, 10 * total}));
    EXPECT_EQ(to_host(arrays[d]), (std::vector<float>{float(d + 1), float(10 * (d + 1))}));  // inputs unchanged
  }
  const std::vector<NDArray> copies = broadcast_across_devices(arrays, n - 1);
  for (int d = 0; d < n; ++d) EXPECT_EQ(to_host(copies[d]), (std::vector<float>{float(n), float(10 * n)}));
}

TEST(Nccl, DeviceAllGatherStacksAndReduceScatterSplits) {
  if (!nccl_and_gpu()) GTEST_SKIP() << "needs NCCL and a GPU";
  const int n = storage::gpu_count();
  std::vector<NDArray> parts, blocks;
  std::vector<float> stacked, block_sums(2 * static_cast<std::size_t>(n), 0.0f);
  for (int d = 0; d < n; ++d) {
    parts.push_back(on_gpu({float(d), float(d) + 0.5f}, d));
    stacked.insert(stacked.end(), {float(d), float(d) + 0.5f});
    std::vector<float> mine;  // (n, 2): block k is k * 100 + d, k * 100 + d + 1
    for (int k = 0; k < n; ++k) {
      mine.insert(mine.end(), {float(k * 100 + d), float(k * 100 + d + 1)});
      block_sums[2 * k] += float(k * 100 + d);
      block_sums[2 * k + 1] += float(k * 100 + d + 1);
    }
    blocks.push_back(NDArray::from_host(mine.data(), 2 * n, {n, 2}, DType::kFloat32, Device::gpu(d)));
  }
  const std::vector<NDArray> gathered = all_gather_across_devices(parts);
  const std::vector<NDArray> scattered = reduce_scatter_across_devices(blocks);
  for (int d = 0; d < n; ++d) {
    EXPECT_EQ(gathered[d].shape(), (Shape{n, 2}));
    EXPECT_EQ(to_host(gathered[d]), stacked);
    EXPECT_EQ(scattered[d].shape(), (Shape{2}));
    EXPECT_EQ(to_host(scattered[d]), (std::vector<float>{block_sums[2 * d], block_sums[2 * d + 1]}));
  }
  EXPECT_TRUE(contains(error_text([&] { reduce_scatter_across_devices({parts[0]}); }),
                       "must have shape (1, ...), one block per device"));
}

// The collectives run on the comm lane, a stream of their own: the kernel
// stream must still wait for them before it overwrites an input or reads a
// result. Three 512 MB collectives queued back to back keep the lane busy
// long enough for an unordered overwrite kernel, queued right after them,
// to land in the middle.
TEST(Nccl, TheCommLaneIsOrderedAgainstTheKernelStream) {
  if (!nccl_and_gpu()) GTEST_SKIP() << "needs NCCL and a GPU";
  const std::int64_t count = std::int64_t{1} << 27;
  std::vector<float> values(static_cast<std::size_t>(count));
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = float(i % 1000) + 1.0f;
  const std::vector<float> zero{0.0f};
  const NDArray zero_gpu = NDArray::from_host(zero.data(), 1, {1}, DType::kFloat32, Device::gpu(0));
  for (int round = 0; round < 2; ++round) {
    NDArray x = NDArray::from_host(values.data(), count, {count}, DType::kFloat32, Device::gpu(0));
    std::vector<std::vector<NDArray>> sums;
    for (int k = 0; k < 3; ++k) sums.push_back(all_reduce_across_devices({x}));
    op::mul_(x, zero_gpu);  // an in-place kernel on the input, queued at once
    const NDArray doubled = op::add(sums[2][0], sums[0][0]);  // a kernel reading results at once
    for (int k = 0; k < 3; ++k) EXPECT_EQ(to_host(sums[k][0]), values) << "round " << round << ", sum " << k;
    EXPECT_EQ(to_host(op::sum(x)), std::vector<float>{0.0f});
    std::vector<float> twice = values;
    for (float& v : twice) v *= 2;
    EXPECT_EQ(to_host(doubled), twice);
  }
}

// Results fed straight into the next collective (their fences are taken
// over by the lane), and dropped while the lane may still run.
TEST(Nccl, CollectiveResultsFeedTheNextCollective) {
  if (!nccl_and_gpu()) GTEST_SKIP() << "needs NCCL and a GPU";
  const std::vector<float> values{1.0f, -2.0f, 3.5f};
  std::vector<NDArray> chained = all_reduce_across_devices({on_gpu(values)});
  for (int k = 0; k < 4; ++k) chained = all_reduce_across_devices(chained);
  EXPECT_EQ(to_host(chained[0]), values);
}

// A job of one rank: the id is "shared" by leaving it as it is. The MPI
// channel and jobs of several GPUs need mpirun and more GPUs
// (tests/python/test_distributed.py).
TEST(Nccl, RankCollectivesSumOverTheJobOnTheCommLane) {
  if (!nccl_and_gpu()) GTEST_SKIP() << "needs NCCL and a GPU";
  int shared = 0;
  RankCollectives job(0, 1, [&](void*, std::size_t bytes) {
    EXPECT_EQ(bytes, sizeof(comm::NcclUniqueId));
    ++shared;
  });
  EXPECT_EQ(job.device(), -1);
  NDArray x = on_gpu({1.5f, -2.0f, 4.0f});
  NDArray sum = job.all_reduce(x);
  EXPECT_EQ(job.device(), 0);
  EXPECT_EQ(to_host(sum), (std::vector<float>{1.5f, -2.0f, 4.0f}));
  EXPECT_EQ(to_host(job.all_reduce(x, comm::ReduceOp::kMax)), to_host(x));
  EXPECT_EQ(shared, 1);  // one communicator for the job
  EXPECT_EQ(job.all_reduce(NDArray::empty({0}, DType::kFloat32, Device::gpu(0))).numel(), 0);
  if (storage::gpu_count() > 1) {  // another GPU of the process goes through the communicator's
    NDArray y = on_gpu({3.0f}, 1);
    NDArray other = job.all_reduce(y);
    EXPECT_EQ(other.device(), Device::gpu(1));
    EXPECT_EQ(to_host(other), std::vector<float>{3.0f});
  }
}

TEST(Nccl, RankCollectivesBroadcastGatherAndScatterOverAJobOfOne) {
  if (!nccl_and_gpu()) GTEST_SKIP() << "needs NCCL and a GPU";
  RankCollectives job(0, 1, [](void*, std::size_t) {});
  NDArray x = on_gpu({1.0f, 2.0f, 3.0f, 4.0f});
  EXPECT_EQ(to_host(job.broadcast(x, 0)), to_host(x));
  NDArray gathered = job.all_gather(x);
  EXPECT_EQ(gathered.shape(), (Shape{1, 4}));
  EXPECT_EQ(to_host(gathered), to_host(x));
  NDArray blocks = x.as_strided({1, 4}, {4, 1}, 0);
  NDArray mine = job.reduce_scatter(blocks, comm::ReduceOp::kMax);
  EXPECT_EQ(mine.shape(), (Shape{4}));
  EXPECT_EQ(to_host(mine), to_host(x));
  // fed straight into the next collective, on the comm lane
  EXPECT_EQ(to_host(job.all_reduce(job.broadcast(job.all_reduce(x)))), to_host(x));
}

TEST(Nccl, RankCollectivesRefuseHostArraysAndBadRanks) {
  RankCollectives job(0, 1, [](void*, std::size_t) {});
  const std::vector<float> one{1.0f};
  const NDArray host = NDArray::from_host(one.data(), 1, {1}, DType::kFloat32, Device::cpu());
  EXPECT_TRUE(contains(error_text([&] { job.all_reduce(host); }), "is on the host"));
  EXPECT_TRUE(contains(error_text([&] { job.all_gather(host); }), "all_gather across ranks"));
  EXPECT_TRUE(contains(error_text([&] { job.broadcast(host, 1); }), "root 1 is outside a job of 1"));
  const NDArray two = NDArray::empty({2, 3}, DType::kFloat32, Device::cpu());
  EXPECT_TRUE(contains(error_text([&] { job.reduce_scatter(two); }), "must have shape (1, ...), one block per rank"));
  EXPECT_TRUE(contains(error_text([] { RankCollectives(2, 2, [](void*, std::size_t) {}); }),
                       "rank 2 is outside a job of 2"));
  EXPECT_TRUE(contains(error_text([] { RankCollectives(0, 1, nullptr); }), "share NCCL's unique id"));
}

TEST(Nccl, ErrorsNameTheProblem) {
  if (!nccl_and_gpu()) GTEST_SKIP() << "needs NCCL and a GPU";
  EXPECT_TRUE(contains(error_text([] { comm::NcclComm::for_devices({0, 0}); }), "distinct GPUs"));
  const int missing = storage::gpu_count();
  EXPECT_TRUE(contains(error_text([&] { comm::NcclComm::for_devices({missing}); }), "does not exist"));
  auto comms = comm::NcclComm::for_devices({0});
  NDArray x = on_gpu({1.0f});
  EXPECT_TRUE(contains(error_text([&] { comms[0]->all_reduce(x.raw_data(), x.raw_data(), 1, 8); }),
                       "no type for dtype code 8"));
  EXPECT_TRUE(contains(error_text([&] { comms[0]->broadcast(x.raw_data(), x.raw_data(), 1, 0, 1); }),
                       "root 1 is outside a group of 1"));
  const std::vector<float> one{1.0f};
  const NDArray host = NDArray::from_host(one.data(), 1, {1}, DType::kFloat32, Device::cpu());
  EXPECT_TRUE(contains(error_text([&] { all_reduce_across_devices({host}); }), "is on the host"));
  EXPECT_TRUE(contains(error_text([&] { all_reduce_across_devices({x, on_gpu({1.0f, 2.0f})}); }),
                       "differs in shape or dtype"));
  EXPECT_TRUE(contains(error_text([&] { all_reduce_across_devices({x, on_gpu({2.0f})}); }), "two arrays are on gpu(0)"));
}

}  // namespace
}  // namespace loom
