// An op with several outputs (topk: values and int64 indices) through the
// generated C++ API: a struct of named arrays, autograd through the
// differentiable output only. And an op whose output is a list (split):
// a vector of views, one graph node with as many outputs as it says.
#include <gtest/gtest.h>

#include <vector>

#include "loom/ops/mul.h"
#include "loom/ops/split.h"
#include "loom/ops/sum.h"
#include "loom/ops/topk.h"
#include "microkernel/base/error.h"
#include "runtime/autograd/backward.h"
#include "runtime/autograd/grad_mode.h"
#include "runtime/autograd/node.h"
#include "runtime/autograd/record.h"
#include "runtime/graph/graph.h"
#include "runtime/graph/infer.h"
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

TEST(ListOutput, SplitReturnsViewsOfTheInput) {
  const std::vector<double> v{0, 1, 2, 3, 4, 5};
  NDArray x = NDArray::from_host(v.data(), 6, {2, 3}, DType::kFloat64);
  const std::vector<NDArray> columns = op::split(x, 3, 1, /*squeeze_axis=*/true);
  ASSERT_EQ(columns.size(), 3u);
  EXPECT_EQ(columns[2].shape(), (Shape{2}));
  EXPECT_EQ(values_of<double>(columns[2]), (std::vector<double>{2, 5}));
  EXPECT_EQ(columns[1].storage(), x.storage());  // a view: no copy
  EXPECT_EQ(columns[1].offset(), x.offset() + 1);
}

TEST(ListOutput, GradientJoinsThePartsWithZerosForUnusedOnes) {
  const std::vector<double> v{1, 2, 3, 4};
  NDArray x = NDArray::from_host(v.data(), 4, {4}, DType::kFloat64);
  autograd::attach_grad(x, autograd::GradReq::kWrite);
  NDArray loss;
  {
    autograd::ModeScope record(true, true);
    const std::vector<NDArray> halves = op::split(x, 2, 0);
    loss = op::sum(op::mul(halves[1], halves[1]));
  }
  autograd::backward({loss}, {}, {});
  EXPECT_EQ(values_of<double>(x.autograd_meta()->grad), (std::vector<double>{0, 0, 6, 8}));
}

TEST(ListOutput, GraphNodeHasOneOutputPerPart) {
  const graph::Symbol x = graph::Symbol::variable("x");
  const graph::Symbol parts = graph::Symbol::apply("split", {x}, {{"num_outputs", std::int64_t{4}},
                                                                  {"axis", std::int64_t{0}}}, "sp");
  ASSERT_EQ(parts.num_outputs(), 4u);
  EXPECT_EQ(parts.list_outputs(), (std::vector<std::string>{"sp_out0", "sp_out1", "sp_out2", "sp_out3"}));
  const graph::InferResult r = graph::infer(parts, {{"x", Shape{8, 3}}}, {});
  ASSERT_EQ(r.outputs.size(), 4u);
  EXPECT_EQ(*r.outputs[3].shape, (Shape{2, 3}));
  EXPECT_THROW(graph::Symbol::apply("split", {x}, {{"num_outputs", std::int64_t{0}}}, "none"), Error);
}

}  // namespace
}  // namespace loom
