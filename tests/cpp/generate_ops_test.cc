// kernel.generate ops through the C++ API (loom::op): creation against
// hand-computed values, and random ops replayed from the C++ stream
// (runtime/random/generator.h) however the draws are split into calls.
#include <gtest/gtest.h>

#include <vector>

#include "loom/ops/arange.h"
#include "loom/ops/eye.h"
#include "loom/ops/full.h"
#include "loom/ops/random_normal.h"
#include "loom/ops/random_randint.h"
#include "microkernel/base/error.h"
#include "runtime/random/generator.h"

namespace loom {
namespace {

template <typename T>
std::vector<T> host(const NDArray& a) {
  std::vector<T> out(static_cast<std::size_t>(a.numel()));
  a.copy_to_host(out.data());  // waits for the kernel
  return out;
}

ReduceDims dims(std::vector<std::int64_t> d) { return ReduceDims(std::move(d)); }

TEST(GenerateOps, CreationMatchesItsDefinition) {
  const NDArray e = op::eye(3, 4, 1, DType::kInt32);
  EXPECT_EQ(e.shape(), (Shape{3, 4}));
  EXPECT_EQ(host<std::int32_t>(e), (std::vector<std::int32_t>{0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1}));
  const NDArray r = op::arange(5.0, -1.0, -1.5, DType::kFloat64);
  EXPECT_EQ(host<double>(r), (std::vector<double>{5.0, 3.5, 2.0, 0.5}));
  const NDArray f = op::full(dims({2, 0}), 3.0, DType::kFloat32);
  EXPECT_EQ(f.shape(), (Shape{2, 0}));
  EXPECT_THROW(op::arange(0.0, 1.0, 0.0), Error);           // the YAML's check: step != 0
  EXPECT_THROW(op::full(std::nullopt, 1.0), Error);          // a shape is required
}

TEST(GenerateOps, RandomDrawsReplayFromTheSeedAcrossCalls) {
  random::seed(2024);
  const std::vector<double> whole = host<double>(op::random_normal(0.0, 1.0, dims({1000}), DType::kFloat64));
  random::seed(2024);
  std::vector<double> parts = host<double>(op::random_normal(0.0, 1.0, dims({400}), DType::kFloat64));
  const std::vector<double> rest = host<double>(op::random_normal(0.0, 1.0, dims({600}), DType::kFloat64));
  parts.insert(parts.end(), rest.begin(), rest.end());
  EXPECT_EQ(whole, parts);
  EXPECT_EQ(random::state().offset, 1000u);

  const std::vector<std::int64_t> ints = host<std::int64_t>(op::random_randint(-2, 3, dims({5000}), DType::kInt64));
  std::vector<int> seen(5, 0);
  for (std::int64_t v : ints) {
    ASSERT_GE(v, -2);
    ASSERT_LT(v, 3);
    ++seen[static_cast<std::size_t>(v + 2)];
  }
  for (int count : seen) EXPECT_GT(count, 800);  // 1000 expected per value
}

}  // namespace
}  // namespace loom
