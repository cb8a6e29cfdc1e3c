// An op with several outputs (topk: values and int64 indices) through the
// generated C++ API: a struct of named arrays, autograd through the
// differentiable output only.
#include <gtest/gtest.h>

#include <vector>

#include "loom/ops/mul.h"
#include "loom/ops/sum.h"
#include "loom/ops/topk.h"
#include "runtime/autograd/backward.h"
#include "runtime/autograd/grad_mode.h"
#include "runtime/autograd/node.h"
#include "runtime/autograd/record.h"
#include "runtime/ndarray/ndarray.h"
#include "tests/cpp/test_arrays.h"

namespace loom {
namespace {

using test::values_of;

TEST(MultiOutput, TopkReturnsNamedArrays) {
  const std::vector<double> v{4, 9, 1, 9, 0, 7};
  const NDArray x = NDArray::from_host(v.data(), 6, {2, 3}, DType::kFloat64);
  auto [values, indices] = op::topk(x, 2);
  EXPECT_EQ(values.shape(), (Shape{2, 2}));
  EXPECT_EQ(indices.dtype(), DType::kInt64);
  EXPECT_EQ(values_of<double>(values), (std::vector<double>{9, 4, 9, 7}));
  EXPECT_EQ(values_of<std::int64_t>(indices), (std::vector<std::int64_t>{1, 0, 0, 2}));
}

TEST(MultiOutput, GradientReachesTheSelectedPositions) {
  const std::vector<double> v{4, 9, 1, 9, 0, 7};
  NDArray x = NDArray::from_host(v.data(), 6, {2, 3}, DType::kFloat64);
  autograd::attach_grad(x, autograd::GradReq::kWrite);
  NDArray loss;
  {
    autograd::ModeScope record(true, true);
    const op::TopkResult top = op::topk(x, 1, 1, /*largest=*/false);
    EXPECT_FALSE(autograd::requires_grad(top.indices));
    loss = op::sum(op::mul(top.values, top.values));
  }
  autograd::backward({loss}, {}, {});
  // the smallest per row: 1 (at 2) and 0 (at 1); d(v^2) = 2v
  EXPECT_EQ(values_of<double>(x.autograd_meta()->grad), (std::vector<double>{0, 0, 2, 0, 0, 0}));
}

}  // namespace
}  // namespace loom
