// The graph layer through the C++ API: schemas, symbols, JSON, abstract
// shape inference and the executor, checked against the ops called directly.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "loom/ops/exp.h"
#include "loom/ops/linear.h"
#include "loom/ops/mul.h"
#include "loom/ops/relu.h"
#include "microkernel/base/error.h"
#include "runtime/graph/executor.h"
#include "runtime/graph/graph.h"
#include "runtime/graph/graph_json.h"
#include "runtime/graph/infer.h"
#include "runtime/graph/graph_program.h"
#include "runtime/graph/trace.h"
#include "runtime/ndarray/abstract_eval.h"

namespace loom::graph {
namespace {

NDArray ramp(const Shape& shape, double scale) {
  std::vector<float> v(static_cast<std::size_t>(shape_numel(shape)));
  for (std::size_t k = 0; k < v.size(); ++k) v[k] = static_cast<float>(scale * (static_cast<double>(k) - 3.0));
  return NDArray::from_host(v.data(), static_cast<std::int64_t>(v.size()), shape, DType::kFloat32);
}

std::vector<float> values(const NDArray& a) {
  std::vector<float> out(static_cast<std::size_t>(a.numel()));
  a.copy_to_host(out.data());
  return out;
}

Symbol mlp() {
  Symbol x = Symbol::variable("x");
  Symbol w = Symbol::variable("w");
  Symbol fc = Symbol::apply("linear", {x, w, std::nullopt}, {}, "fc");
  return Symbol::apply("relu", {fc}, {}, "act");
}

TEST(GraphSchema, EveryOperatorHasOneWithDefaults) {
  const OpSchema* conv = find_schema("convolution");
  ASSERT_NE(conv, nullptr);
  EXPECT_EQ(conv->num_array_slots(), 3);
  const AttrMap attrs = complete_attrs(*conv, {{"stride", AttrValue(std::int64_t{2})}});
  EXPECT_EQ(std::get<std::vector<std::int64_t>>(attrs.at("stride")), std::vector<std::int64_t>{2});
  EXPECT_EQ(std::get<std::int64_t>(attrs.at("groups")), 1);
  EXPECT_TRUE(find_schema("batch_norm")->find_arg("running_mean")->mutated);
  EXPECT_EQ(find_schema("concat")->num_array_slots(), -1);
  EXPECT_THROW(complete_attrs(*conv, {{"groups", AttrValue(0.5)}}), Error);
  EXPECT_THROW(schema_or_throw("no_such_op"), Error);
}

TEST(GraphSymbol, StructureAndJsonRoundTrip) {
  const Symbol net = mlp();
  EXPECT_EQ(net.list_arguments(), (std::vector<std::string>{"x", "w"}));
  EXPECT_EQ(net.list_outputs(), (std::vector<std::string>{"act_output"}));
  EXPECT_EQ(net.internals().num_outputs(), 4u);
  const std::string text = to_json(net);
  const Symbol back = from_json(text);
  EXPECT_EQ(to_json(back), text);
  const Symbol composed = net.compose({{"x", Symbol::variable("data")}});
  EXPECT_EQ(composed.list_arguments(), (std::vector<std::string>{"data", "w"}));
  EXPECT_EQ(net.list_arguments()[0], "x");
}

TEST(GraphInfer, AbstractEvaluationAllocatesNothingAndIsPartial) {
  const Symbol net = mlp();
  const InferResult full = infer(net, {{"x", {4, 5}}, {"w", {3, 5}}}, {});
  ASSERT_TRUE(full.complete);
  EXPECT_EQ(*full.outputs[0].shape, (Shape{4, 3}));
  EXPECT_EQ(*full.outputs[0].dtype, DType::kFloat32);
  const InferResult partial = infer(net, {{"x", {4, 5}}}, {});
  EXPECT_FALSE(partial.complete);
  EXPECT_FALSE(partial.outputs[0].shape.has_value());
  try {
    infer(net, {{"x", {4, 5}}, {"w", {3, 6}}}, {});
    FAIL() << "a mismatched weight must not infer";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("node 'fc' (linear)"), std::string::npos) << e.what();
  }
  // Reading an abstract array's values is refused, never a null dereference.
  AbstractEvalScope abstract;
  const NDArray a = NDArray::empty({2, 2}, DType::kFloat32);
  EXPECT_TRUE(a.storage()->is_abstract());
  EXPECT_THROW(a.raw_data(), Error);
}

TEST(GraphExecutor, ForwardAndBackwardMatchTheOpsCalledDirectly) {
  const Symbol net = mlp();
  const NDArray x = ramp({4, 5}, 0.25), w = ramp({3, 5}, -0.5);
  const NDArray gw = NDArray::empty({3, 5}, DType::kFloat32);
  Binding b;
  b.args = {x, w};
  b.arg_grads = {NDArray(), gw};
  b.grad_reqs = {autograd::GradReq::kNull, autograd::GradReq::kWrite};
  Executor ex(net, b);
  const std::vector<NDArray> outs = ex.forward(true);
  EXPECT_EQ(values(outs[0]), values(op::relu(op::linear(x, w))));
  ex.backward({});
  // d/dw sum(relu(x w^T)) = mask^T x
  const std::vector<float> y = values(op::linear(x, w)), xs = values(x), g = values(gw);
  for (int o = 0; o < 3; ++o) {
    for (int i = 0; i < 5; ++i) {
      float expect = 0.0F;
      for (int n = 0; n < 4; ++n) expect += y[n * 3 + o] > 0 ? xs[n * 5 + i] : 0.0F;
      EXPECT_FLOAT_EQ(g[o * 5 + i], expect) << o << "," << i;
    }
  }
  EXPECT_THROW(ex.backward({}), Error);  // one backward per recorded forward
}

TEST(GraphTrace, RecordsOutermostCallsAndRefusesMutation) {
  const NDArray w = ramp({3, 5}, 0.5);
  Symbol traced;
  {
    Tracer tracer("test");
    const NDArray x = NDArray::empty({4, 5}, DType::kFloat32);  // abstract: no memory, no kernels
    EXPECT_TRUE(x.storage()->is_abstract());
    tracer.add_variable("x", x);
    tracer.add_variable("w", w);
    const NDArray y = op::relu(op::linear(x, w));
    NDArray z = y;
    EXPECT_THROW(op::relu_(z), Error);  // in place: no graph form
    traced = tracer.finish({y});
    EXPECT_TRUE(tracer.constants().empty());
  }
  EXPECT_FALSE(tracing());
  EXPECT_EQ(traced.list_arguments(), (std::vector<std::string>{"x", "w"}));
  const auto order = traced.topo_order();
  ASSERT_EQ(order.size(), 4u);
  EXPECT_EQ(order[2]->op->name, "linear");
  EXPECT_EQ(order[3]->op->name, "relu");
  // Outside a trace the same calls record nothing and run for real.
  const NDArray x = ramp({4, 5}, 0.25);
  Binding b;
  b.args = {x, w};
  Executor ex(traced, b);
  EXPECT_EQ(values(ex.forward(false)[0]), values(op::relu(op::linear(x, w))));
}

TEST(GraphProgramTest, OwnsTheSimplifiedGraphItRuns) {
  // exp(x) * exp(x): CSE merges the two exps, so the program runs a copy of
  // the mul node, which must outlive the symbol it was made from.
  std::unique_ptr<GraphProgram> program;
  const NDArray x = ramp({3, 4}, 0.1);
  std::vector<const Node*> vars;
  {
    Symbol v = Symbol::variable("x");
    Symbol e1 = Symbol::apply("exp", {v}, {}, "");
    Symbol e2 = Symbol::apply("exp", {v}, {}, "");
    Symbol prod = Symbol::apply("mul", {e1, e2}, {}, "");
    program = std::make_unique<GraphProgram>(prod, std::vector<const Node*>{v.outputs()[0].node.get()});
  }
  for (int k = 0; k < 3; ++k) {
    const std::vector<NDArray> out = program->run({x}, std::nullopt);
    EXPECT_EQ(values(out[0]), values(op::mul(op::exp(x), op::exp(x))));
  }
}

}  // namespace
}  // namespace loom::graph
