#include <gtest/gtest.h>

#include "microkernel/base/error.h"
#include "runtime/core/dtype.h"
#include "runtime/core/shape.h"
#include "runtime/kernels/cpu/strided_layout.h"

namespace loom {
namespace {

TEST(Shape, BroadcastFollowsNumpy) {
  EXPECT_EQ(broadcast_shapes("op", {2, 1, 3}, {4, 1}), (Shape{2, 4, 3}));
  EXPECT_EQ(broadcast_shapes("op", {}, {5}), (Shape{5}));
  EXPECT_EQ(broadcast_shapes("op", {0, 3}, {1, 3}), (Shape{0, 3}));
  EXPECT_THROW(broadcast_shapes("op", {2}, {3}), Error);
}

TEST(Shape, StrShowsTupleSpelling) {
  EXPECT_EQ(shape_str({}), "()");
  EXPECT_EQ(shape_str({4}), "(4,)");
  EXPECT_EQ(shape_str({2, 3}), "(2, 3)");
}

TEST(DType, PromotionIsCategoryThenWidth) {
  EXPECT_EQ(promote_types(DType::kInt64, DType::kFloat32), DType::kFloat32);  // NumPy: float64
  EXPECT_EQ(promote_types(DType::kInt32, DType::kFloat32), DType::kFloat32);
  EXPECT_EQ(promote_types(DType::kFloat32, DType::kFloat64), DType::kFloat64);
  EXPECT_EQ(promote_types(DType::kUInt8, DType::kInt8), DType::kInt32);  // NumPy: int16, absent here
  EXPECT_EQ(promote_types(DType::kUInt8, DType::kInt32), DType::kInt32);
  EXPECT_EQ(promote_types(DType::kBool, DType::kInt8), DType::kInt8);
  EXPECT_EQ(promote_types(DType::kInt64, DType::kInt32), DType::kInt64);
  EXPECT_THROW(dtype_from_name("float128"), Error);
}

TEST(StridedLayout, MergesDenseDimensions) {
  // A contiguous (2, 3, 4) array with a contiguous output: one flat dim.
  auto layout = kernels::make_strided_layout({2, 3, 4}, {{12, 4, 1}, {12, 4, 1}});
  EXPECT_TRUE(layout.all_contiguous);
  EXPECT_EQ(layout.shape, (Shape{24}));
}

TEST(StridedLayout, KeepsBroadcastDimensionSeparate) {
  // (2, 3) + (3,): the row operand has stride 0 across rows.
  auto layout = kernels::make_strided_layout({2, 3}, {{3, 1}, {3, 1}, {0, 1}});
  EXPECT_FALSE(layout.all_contiguous);
  EXPECT_EQ(layout.shape, (Shape{2, 3}));
}

}  // namespace
}  // namespace loom
