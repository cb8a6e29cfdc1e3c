// Optional array arguments (`Tensor?` in an opdef): an undefined NDArray
// means "not given" all the way from the generated C++ API (a default
// argument) through the dispatch helpers to autograd's bookkeeping.
#include <gtest/gtest.h>

#include <vector>

#include "loom/ops/linear.h"
#include "microkernel/base/error.h"
#include "runtime/autograd/node.h"
#include "runtime/dispatch/impl_call.h"
#include "runtime/ndarray/ndarray.h"
#include "tests/cpp/test_arrays.h"

namespace loom {
namespace {

using test::floats;
std::vector<float> values(const NDArray& a) { return test::values_of<float>(a); }

TEST(OptionalInput, LinearBiasDefaultsToNone) {
  const NDArray x = floats({1, 2, 3, 4}, {2, 2});
  const NDArray w = floats({1, 0, 1, 1}, {2, 2});  // rows (1, 0) and (1, 1)
  EXPECT_EQ(values(op::linear(x, w)), (std::vector<float>{1, 3, 3, 7}));
  EXPECT_EQ(values(op::linear(x, w, floats({10, 20}, {2}))), (std::vector<float>{11, 23, 13, 27}));
  // the bias check runs only for a given bias
  EXPECT_THROW(op::linear(x, w, floats({1, 2, 3}, {3})), Error);
}

TEST(OptionalInput, PrepareImplPassesAnAbsentInputThrough) {
  const NDArray x = floats({1, 2}, {2});
  const NDArray absent;
  ImplCall call = prepare_impl("probe", {{"x", &x}, {"b", &absent, false, true}}, DType::kFloat64);
  ASSERT_EQ(call.inputs.size(), 2u);
  EXPECT_EQ(call.inputs[0].dtype(), DType::kFloat64);
  EXPECT_FALSE(call.inputs[1].defined());
  call.allocate("probe", Shape{2}, DType::kFloat64, nullptr);  // ignores the absent input
  EXPECT_EQ(call.out.device(), x.device());

  // given, it is converted like any input
  const NDArray b = floats({3, 4}, {2});
  ImplCall given = prepare_impl("probe", {{"x", &x}, {"b", &b, false, true}}, DType::kFloat64);
  EXPECT_EQ(given.inputs[1].dtype(), DType::kFloat64);

  // a required input must be defined, and the error names it
  try {
    prepare_impl("probe", {{"x", &x}, {"y", &absent}}, DType::kFloat32);
    FAIL() << "an undefined required input was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("probe: argument 'y' is an undefined NDArray"), std::string::npos);
  }
}

TEST(OptionalInput, AutogradMetadataOfAnAbsentInput) {
  const autograd::TensorMeta meta = autograd::TensorMeta::of(NDArray());
  EXPECT_FALSE(meta.given);
  EXPECT_TRUE(autograd::TensorMeta::of(floats({1}, {1})).given);
  EXPECT_EQ(promote_if_given(DType::kFloat32, NDArray()), DType::kFloat32);
  EXPECT_EQ(promote_if_given(DType::kFloat32, NDArray::empty({1}, DType::kFloat64)), DType::kFloat64);
}

}  // namespace
}  // namespace loom
