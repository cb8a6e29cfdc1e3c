// NDArray, storage and the generated C++ operator API, checked against
// values computed by hand.
#include <gtest/gtest.h>

#include <vector>

#include "loom/ops.h"
#include "microkernel/base/error.h"
#include "microkernel/storage/storage.h"
#include "runtime/dispatch/op_registry.h"
#include "runtime/ndarray/ndarray.h"

namespace loom {
namespace {

NDArray floats(const std::vector<float>& v, const Shape& shape) {
  return NDArray::from_host(v.data(), static_cast<std::int64_t>(v.size()), shape, DType::kFloat32);
}

template <typename T>
std::vector<T> values(const NDArray& a) {
  std::vector<T> out(static_cast<std::size_t>(a.numel()));
  a.copy_to_host(out.data());
  return out;
}

TEST(Op, ReluZeroesNegatives) {
  NDArray y = op::relu(floats({-1.f, 2.f, 0.f, -0.5f}, {2, 2}));
  EXPECT_EQ(y.shape(), (Shape{2, 2}));
  EXPECT_EQ(values<float>(y), (std::vector<float>{0.f, 2.f, 0.f, 0.f}));
}

TEST(Op, AddBroadcastsRowAcrossMatrix) {
  NDArray y = op::add(floats({0, 1, 2, 3, 4, 5}, {2, 3}), floats({10, 20, 30}, {3}));
  EXPECT_EQ(y.shape(), (Shape{2, 3}));
  EXPECT_EQ(values<float>(y), (std::vector<float>{10, 21, 32, 13, 24, 35}));
}

TEST(Op, MulBroadcastsColumnAgainstRow) {
  NDArray y = op::mul(floats({1, 2}, {2, 1}), floats({1, 10, 100}, {1, 3}));
  EXPECT_EQ(y.shape(), (Shape{2, 3}));
  EXPECT_EQ(values<float>(y), (std::vector<float>{1, 10, 100, 2, 20, 200}));
}

TEST(Op, MulPromotesInt32WithFloat32ToFloat32) {
  std::vector<std::int32_t> ints = {1, 2, 3};
  NDArray i = NDArray::from_host(ints.data(), 3, {3}, DType::kInt32);
  NDArray y = op::mul(i, floats({0.5f, 0.5f, 0.5f}, {3}));
  EXPECT_EQ(y.dtype(), DType::kFloat32);
  EXPECT_EQ(values<float>(y), (std::vector<float>{0.5f, 1.f, 1.5f}));
}

TEST(Op, AddOfIncompatibleShapesNamesOpAndShapes) {
  try {
    op::add(floats({1, 2, 3, 4, 5, 6}, {2, 3}), floats({1, 2, 3, 4}, {4}));
    FAIL() << "expected loom::Error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kValue);
    EXPECT_STREQ(e.what(), "add: cannot broadcast shapes (2, 3) and (4,) (dim 1: 3 vs 4)");
  }
}

TEST(Op, OutVariantWritesIntoGivenArray) {
  NDArray out = NDArray::empty({3}, DType::kFloat32);
  NDArray& r = op::relu_out(out, floats({-2, 0, 3}, {3}));
  EXPECT_EQ(&r, &out);
  EXPECT_EQ(values<float>(out), (std::vector<float>{0, 0, 3}));
}

TEST(Op, OutVariantRejectsWrongShape) {
  NDArray out = NDArray::empty({4}, DType::kFloat32);
  EXPECT_THROW(op::relu_out(out, floats({-2, 0, 3}, {3})), Error);
}

TEST(Op, ReluRejectsUnsupportedDtypeWithTypeError) {
  std::vector<std::uint8_t> v = {1, 2};
  NDArray u = NDArray::from_host(v.data(), 2, {2}, DType::kUInt8);
  try {
    op::relu(u);
    FAIL() << "expected loom::Error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kType);
    EXPECT_NE(std::string(e.what()).find("relu: no kernel for dtype uint8"), std::string::npos);
  }
}

TEST(Op, ZeroSizeInputGivesZeroSizeOutput) {
  NDArray y = op::relu(NDArray::empty({0, 3}, DType::kFloat32));
  EXPECT_EQ(y.shape(), (Shape{0, 3}));
}

TEST(Op, ZeroDimensionalInputsWork) {
  NDArray y = op::add(floats({2}, {}), floats({3}, {}));
  EXPECT_EQ(y.ndim(), 0);
  EXPECT_EQ(values<float>(y), (std::vector<float>{5}));
}

TEST(Op, LargeInputUsesParallelPathCorrectly) {
  const int n = 1 << 20;
  std::vector<float> v(n);
  for (int i = 0; i < n; ++i) v[i] = static_cast<float>(i % 7) - 3.f;
  std::vector<float> got = values<float>(op::relu(floats(v, {n})));
  for (int i = 0; i < n; ++i) ASSERT_EQ(got[i], v[i] > 0 ? v[i] : 0.f) << "at " << i;
}

TEST(Registry, ListsGeneratedOperators) {
  ASSERT_NE(find_op("relu"), nullptr);
  EXPECT_EQ(find_op("relu")->source, "opdefs/elementwise/relu.yaml:1");
  EXPECT_EQ(find_op("add")->args, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(find_op("no_such_op"), nullptr);
}

TEST(Storage, TracksBytesInUse) {
  const auto before = storage::stats(Device::cpu()).in_use;
  {
    NDArray a = NDArray::empty({1000}, DType::kFloat64);
    EXPECT_GE(storage::stats(Device::cpu()).in_use - before, 8000);
  }
  EXPECT_EQ(storage::stats(Device::cpu()).in_use, before);
}

TEST(Storage, GpuRequestWithoutGpuIsAnError) {
  if (storage::gpu_count() > 0) GTEST_SKIP() << "a GPU is present";
  EXPECT_THROW(NDArray::empty({4}, DType::kFloat32, Device::gpu(0)), Error);
}

}  // namespace
}  // namespace loom

namespace loom {
namespace {

NDArray iota(std::int64_t n, const Shape& shape) {
  std::vector<float> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = static_cast<float>(i);
  return NDArray::from_host(v.data(), n, shape, DType::kFloat32);
}

TEST(View, TransposeSharesStorageAndReadsColumnMajor) {
  NDArray a = iota(6, {2, 3});
  NDArray t = a.transpose();
  EXPECT_EQ(t.shape(), (Shape{3, 2}));
  EXPECT_FALSE(t.is_contiguous());
  EXPECT_EQ(t.storage(), a.storage());
  std::vector<float> got(6);
  t.copy_to_host(got.data());
  EXPECT_EQ(got, (std::vector<float>{0, 3, 1, 4, 2, 5}));
}

TEST(View, OpsReadStridedAndBroadcastOperands) {
  // relu over a strided view, add of a transposed view and a row.
  NDArray a = iota(12, {3, 4});
  NDArray every_other = a.as_strided({3, 2}, {4, 2}, 1);  // columns 1 and 3
  std::vector<float> got(6);
  op::add(every_other, iota(2, {2})).copy_to_host(got.data());
  EXPECT_EQ(got, (std::vector<float>{1, 4, 5, 8, 9, 12}));
  std::vector<float> got_t(12);
  op::mul(a.transpose(), iota(3, {3})).copy_to_host(got_t.data());
  // (4, 3): element [i][j] = a[j][i] * j
  EXPECT_EQ(got_t, (std::vector<float>{0, 4, 16, 0, 5, 18, 0, 6, 20, 0, 7, 22}));
}

TEST(View, AsStridedOutsideStorageIsAnIndexError) {
  NDArray a = iota(6, {6});
  try {
    a.as_strided({4}, {2}, 0);  // reaches element 6 of 6
    FAIL() << "expected loom::Error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIndex);
  }
  EXPECT_NO_THROW(a.as_strided({3}, {-2}, 5));  // backwards: 5, 3, 1
  EXPECT_NO_THROW(a.as_strided({0, 9}, {100, 100}, 0));
}

}  // namespace
}  // namespace loom
