// Operators on the engine (runtime/dispatch/launch.h): large kernels are
// pushed and run on the CPU stream worker while the caller goes on; later ops
// and host reads are ordered after them; a kernel's error fails its outputs.
// Run under ThreadSanitizer too (check-tsan): every hand-off between the
// caller and the worker is a place where a missing happens-before would show.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "loom/ops/add.h"
#include "loom/ops/concat.h"
#include "loom/ops/exp.h"
#include "loom/ops/mul.h"
#include "loom/ops/neg.h"
#include "loom/ops/sum.h"
#include "loom/ops/take.h"
#include "microkernel/base/error.h"
#include "microkernel/engine/engine.h"
#include "microkernel/storage/storage.h"
#include "runtime/dispatch/launch.h"
#include "runtime/ndarray/ndarray.h"

namespace loom {
namespace {

constexpr std::int64_t kBig = 1 << 20;  // read plus written: above the in-place limit the fixture sets

// By default a kernel with nothing pending runs on the calling thread at
// any size; these tests queue the large ones, as LOOM_INLINE_WORK=1048575
// would (a lower limit, such as the CI's 0, is kept).
class AsyncOps : public ::testing::Test {
 protected:
  void SetUp() override { previous_ = set_inline_work_limit(std::min(inline_work_limit(), kBig - 1)); }
  void TearDown() override {
    engine::Engine::get().wait_all();
    set_inline_work_limit(previous_);
  }

 private:
  std::int64_t previous_ = 0;
};

NDArray ramp(std::int64_t n, float scale = 1.0f) {
  std::vector<float> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) v[i] = scale * static_cast<float>(i % 1000) / 1000.0f;
  return NDArray::from_host(v.data(), n, Shape{n}, DType::kFloat32);
}

std::vector<float> host(const NDArray& a) {
  std::vector<float> out(static_cast<std::size_t>(a.numel()));
  a.copy_to_host(out.data());  // waits for the pending writers
  return out;
}

bool threaded() { return std::string(engine::Engine::get().kind()) == "threaded"; }

TEST_F(AsyncOps, LargeKernelsAreQueuedAndReadsWaitForThem) {
  ASSERT_GT(2 * kBig, inline_work_limit());
  NDArray x = ramp(kBig);
  NDArray y = x;
  for (int i = 0; i < 20; ++i) y = op::add(op::mul(y, y), x);  // each step depends on the last
  if (threaded()) {
    EXPECT_GT(engine::Engine::get().pending(), 0);  // returned before the kernels ran
  }
  const std::vector<float> got = host(y);
  const std::vector<float> in = host(x);
  for (std::int64_t i = 0; i < kBig; i += 997) {
    float want = in[i];
    for (int k = 0; k < 20; ++k) want = want * want + in[i];
    ASSERT_FLOAT_EQ(got[i], want) << "element " << i;
  }
}

TEST_F(AsyncOps, InPlaceWriteWaitsForEarlierReaders) {
  NDArray x = ramp(kBig);
  NDArray before = op::exp(x);   // reads x
  NDArray total = op::sum(x);    // reads x
  op::add_(x, op::exp(x));       // overwrites x: after both readers
  const std::vector<float> e = host(before), t = host(total), now = host(x);
  const std::vector<float> original = host(ramp(kBig));
  double want_total = 0;
  for (std::int64_t i = 0; i < kBig; ++i) want_total += original[i];
  EXPECT_NEAR(t[0], want_total, 1e-4 * want_total);
  for (std::int64_t i = 0; i < kBig; i += 991) {
    ASSERT_FLOAT_EQ(e[i], std::exp(original[i]));
    ASSERT_FLOAT_EQ(now[i], original[i] + std::exp(original[i]));
  }
}

TEST_F(AsyncOps, KernelsThatCallOpsRunThemInsideTheirOwnOp) {
  // concat copies each part with the copy op from inside its kernel.
  NDArray a = ramp(kBig), b = ramp(kBig, 2.0f);
  NDArray joined = op::concat({op::exp(a), op::neg(b)}, 0);
  const std::vector<float> got = host(joined), ha = host(a), hb = host(b);
  ASSERT_EQ(got.size(), 2u * kBig);
  for (std::int64_t i = 0; i < kBig; i += 503) {
    ASSERT_FLOAT_EQ(got[i], std::exp(ha[i]));
    ASSERT_FLOAT_EQ(got[kBig + i], -hb[i]);
  }
}

TEST_F(AsyncOps, AKernelErrorFailsItsOutputAndWhatDependsOnIt) {
  NDArray x = ramp(kBig);
  std::vector<std::int64_t> idx(static_cast<std::size_t>(kBig), 0);
  idx.back() = kBig + 3;
  NDArray bad = op::take(x, NDArray::from_host(idx.data(), kBig, Shape{kBig}, DType::kInt64));
  NDArray later = op::add(bad, x);
  for (const NDArray* a : {&bad, &later}) {
    try {
      a->wait_to_read();
      FAIL() << "the out-of-range index was not reported";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kIndex);
      EXPECT_NE(std::string(e.what()).find("take: index " + std::to_string(kBig + 3) + " is out of range"),
                std::string::npos)
          << e.what();
    }
  }
  EXPECT_NO_THROW(engine::Engine::get().wait_all());  // both waits reported it
  EXPECT_NO_THROW(host(op::exp(x)));                  // x itself is fine
}

TEST_F(AsyncOps, DroppedResultsOfPendingOpsAreFreedAfterTheyRun) {
  engine::Engine::get().wait_all();
  const auto before = storage::stats(Device::cpu()).in_use;
  {
    NDArray x = ramp(kBig);
    for (int i = 0; i < 16; ++i) op::exp(op::mul(x, x));  // results dropped while pending
  }
  engine::Engine::get().wait_all();
  EXPECT_EQ(storage::stats(Device::cpu()).in_use, before);
}

}  // namespace
}  // namespace loom
