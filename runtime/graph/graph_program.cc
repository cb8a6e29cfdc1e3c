#include "runtime/graph/graph_program.h"

#include <algorithm>
#include <unordered_map>

#include "microkernel/base/error.h"

namespace loom::graph {

GraphProgram::GraphProgram(const Symbol& symbol, const std::vector<const Node*>& variables)
    : num_inputs_(variables.size()), num_values_(variables.size()) {
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
}

std::vector<NDArray> GraphProgram::run(const std::vector<NDArray>& inputs, std::optional<bool> training) const {
  LOOM_CHECK(inputs.size() == num_inputs_, "graph: expects ", num_inputs_, " inputs, got ", inputs.size());
  std::vector<NDArray> values(num_values_);
  std::copy(inputs.begin(), inputs.end(), values.begin());
  std::vector<NDArray> args;
  for (const Step& step : steps_) {
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
  std::vector<NDArray> result;
  result.reserve(heads_.size());
  for (int v : heads_) result.push_back(values[v]);
  return result;
}

}  // namespace loom::graph
