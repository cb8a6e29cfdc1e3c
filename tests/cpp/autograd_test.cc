// Autograd through the C++ API: recording, the backward pass, capture
// (autograd.grad), create_graph, freed graphs and version checks. Values are
// checked against closed forms; the graph's lifetime (no cycles: a dropped
// output frees its nodes) against weak pointers.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "loom/ops/add.h"
#include "loom/ops/exp.h"
#include "loom/ops/mul.h"
#include "loom/ops/sigmoid.h"
#include "loom/ops/sum.h"
#include "loom/ops/tanh.h"
#include "microkernel/base/error.h"
#include "runtime/autograd/backward.h"
#include "runtime/autograd/functions.h"
#include "runtime/autograd/grad_mode.h"
#include "runtime/autograd/record.h"

namespace loom::autograd {
namespace {

NDArray vec(std::vector<double> v) {
  return NDArray::from_host(v.data(), static_cast<std::int64_t>(v.size()),
                            {static_cast<std::int64_t>(v.size())}, DType::kFloat64);
}

std::vector<double> values(const NDArray& a) {
  std::vector<double> out(a.numel());
  a.astype(DType::kFloat64).copy_to_host(out.data());
  return out;
}

// Runs `body`, which must throw a loom::Error whose message contains `text`.
template <typename Body>
void expect_error_containing(Body&& body, const std::string& text) {
  try {
    body();
    FAIL() << "expected an error containing: " << text;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
  }
}

NDArray leaf(std::vector<double> v, GradReq req = GradReq::kWrite) {
  NDArray a = vec(std::move(v));
  attach_grad(a, req);
  return a;
}

TEST(Autograd, ProductRuleThroughBroadcastAndReduction) {
  NDArray x = leaf({1, 2, 3});
  NDArray w = leaf({2});
  NDArray y;
  {
    ModeScope record(true, true);
    y = op::sum(op::mul(op::exp(x), w));  // sum(exp(x) * w), w broadcast
  }
  backward({y}, {}, {});
  const auto gx = values(x.autograd_meta()->grad), gw = values(w.autograd_meta()->grad);
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(gx[i], 2 * std::exp(i + 1.0), 1e-12);
  EXPECT_EQ(w.autograd_meta()->grad.shape(), Shape{1});  // reduced back from (3,)
  EXPECT_NEAR(gw[0], std::exp(1.0) + std::exp(2.0) + std::exp(3.0), 1e-12);
}

TEST(Autograd, NothingRecordedWithoutRecording) {
  NDArray x = leaf({1});
  NDArray y = op::mul(x, x);
  EXPECT_FALSE(requires_grad(y));
  EXPECT_THROW(backward({y}, {}, {}), Error);
}

TEST(Autograd, CaptureReturnsGradientsWithoutTouchingLeaves) {
  NDArray x = leaf({3});
  NDArray y;
  {
    ModeScope record(true);
    y = op::mul(op::mul(x, x), x);
  }
  BackwardOptions options;
  options.inputs = {x};
  auto grads = backward({y}, {}, options);
  ASSERT_EQ(grads.size(), 1u);
  EXPECT_NEAR(values(grads[0])[0], 27.0, 1e-12);
  EXPECT_EQ(values(x.autograd_meta()->grad)[0], 0.0);
}

TEST(Autograd, CreateGraphGivesSecondDerivatives) {
  NDArray x = leaf({0.5});
  NDArray g;
  {
    ModeScope record(true);
    NDArray y = op::mul(op::mul(x, x), x);  // x^3
    BackwardOptions options;
    options.create_graph = true;
    options.retain_graph = true;
    options.inputs = {x};
    g = backward({y}, {}, options)[0];  // 3x^2, itself recorded
  }
  EXPECT_TRUE(requires_grad(g));
  backward({g}, {}, {});
  EXPECT_NEAR(values(x.autograd_meta()->grad)[0], 6 * 0.5, 1e-12);
}

TEST(Autograd, SecondBackwardThroughFreedGraphThrows) {
  NDArray x = leaf({1, 2});
  NDArray y;
  {
    ModeScope record(true);
    y = op::sum(op::tanh(x));
  }
  backward({y}, {}, {});
  expect_error_containing([&] { backward({y}, {}, {}); }, "retain_graph=True");
}

TEST(Autograd, ArrayModifiedAfterSavingIsReported) {
  NDArray x = leaf({1, 2});
  NDArray c = vec({3, 4});
  NDArray y;
  {
    ModeScope record(true);
    y = op::sum(op::mul(x, c));
  }
  op::add_out(c, c, c);
  expect_error_containing([&] { backward({y}, {}, {}); }, "modified in place");
}

TEST(Autograd, DroppingTheOutputFreesTheGraph) {
  NDArray x = leaf({1, 2});
  std::weak_ptr<Node> node;
  {
    ModeScope record(true);
    NDArray y = op::sigmoid(x);  // saves its own output: must not form a cycle
    node = y.autograd_meta()->grad_fn;
    EXPECT_FALSE(node.expired());
  }
  EXPECT_TRUE(node.expired());
}

TEST(Autograd, SumToReducesBroadcastDims) {
  NDArray g = full({2, 3, 4}, 1.0, DType::kFloat32, Device::cpu());
  NDArray r = sum_to(g, {3, 1});
  EXPECT_EQ(r.shape(), (Shape{3, 1}));
  for (double v : values(r)) EXPECT_EQ(v, 8.0);
  EXPECT_THROW(sum_to(g, {2, 4}), Error);
}

}  // namespace
}  // namespace loom::autograd
