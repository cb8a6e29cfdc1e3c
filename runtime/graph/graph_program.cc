#include "runtime/graph/graph_program.h"

#include <algorithm>
#include <unordered_map>

#include "microkernel/base/error.h"
#include "runtime/graph/simplify.h"

namespace loom::graph {

GraphProgram::GraphProgram(const Symbol& given, const std::vector<const Node*>& variables)
    : symbol_(eliminate_common_subexpressions(given)),  // equal nodes run once (simplify.h)
      num_inputs_(variables.size()),
      num_values_(variables.size()) {
  // The variables stay the same nodes; copies of the others live in symbol_.
  const Symbol& symbol = symbol_;
  std::unordered_map<const Node*, int> first;  // value index of each node's output 0
  for (std::size_t k = 0; k < variables.size(); ++k) first.emplace(variables[k], static_cast<int>(k));
  for (const Node* n : symbol.topo_order()) {
    if (n->is_variable()) {
      LOOM_CHECK(first.count(n), "graph: variable '", n->name, "' has no bound input");
      continue;
    }
    Step step{n, {}, static_cast<int>(num_values_), n->attrs.count("training") > 0};
    for (const NodeEntry& in : n->inputs) {
      step.inputs.push_back(in.present() ? first.at(in.node.get()) + static_cast<int>(in.index) : -1);
    }
    first.emplace(n, step.first_output);
    num_values_ += n->num_outputs();
    steps_.push_back(std::move(step));
  }
  for (const NodeEntry& e : symbol.outputs()) heads_.push_back(first.at(e.node.get()) + static_cast<int>(e.index));
  if (pointwise_fusion_enabled()) {
    std::vector<const Node*> nodes;
    std::vector<std::vector<int>> inputs;
    std::vector<int> outputs, readers(num_values_, 0), group_of;
    for (const Step& step : steps_) {
      nodes.push_back(step.node);
      inputs.push_back(step.inputs);
      outputs.push_back(step.first_output);
      for (int v : step.inputs) {
        if (v >= 0) ++readers[v];
      }
    }
    for (int v : heads_) ++readers[v];
    groups_ = find_pointwise_groups(nodes, inputs, outputs, readers, group_of);
    for (std::size_t k = 0; k < steps_.size(); ++k) steps_[k].group = group_of[k];
  }
}

void GraphProgram::run_step(const Step& step, std::vector<NDArray>& values, std::optional<bool> training,
                            std::vector<NDArray>& args) const {
  args.clear();
  for (int v : step.inputs) args.push_back(v < 0 ? NDArray() : values[v]);
  const AttrMap* attrs = &step.node->attrs;
  AttrMap moded;
  if (step.has_training_attr && training && std::get<bool>(attrs->at("training")) != *training) {
    moded = *attrs;
    moded["training"] = *training;
    attrs = &moded;
  }
  std::vector<NDArray> outs;
  try {
    outs = invoke(*step.node->op, args, *attrs);
  } catch (const Error& e) {
    throw Error(e.kind(), "node '" + step.node->name + "' (" + step.node->op->name + "): " + e.what());
  }
  std::move(outs.begin(), outs.end(), values.begin() + step.first_output);
}

std::vector<NDArray> GraphProgram::run(const std::vector<NDArray>& inputs, std::optional<bool> training) const {
  LOOM_CHECK(inputs.size() == num_inputs_, "graph: expects ", num_inputs_, " inputs, got ", inputs.size());
  std::vector<NDArray> values(num_values_);
  std::copy(inputs.begin(), inputs.end(), values.begin());
  std::vector<NDArray> args;
  for (std::size_t k = 0; k < steps_.size(); ++k) {
    const Step& step = steps_[k];
    if (step.group < 0) {
      run_step(step, values, training, args);
      continue;
    }
    // A fused group runs at its root, the last of its members: every value
    // it reads from outside exists by then, and no one else reads the others.
    const PointwiseGroup& group = groups_[step.group];
    if (static_cast<std::size_t>(group.members.back()) != k) continue;
    NDArray fused = group.run(values);
    if (fused.defined()) {
      values[step.first_output] = std::move(fused);
      continue;
    }
    for (int m : group.members) run_step(steps_[m], values, training, args);
  }
  std::vector<NDArray> result;
  result.reserve(heads_.size());
  for (int v : heads_) result.push_back(values[v]);
  return result;
}

}  // namespace loom::graph
