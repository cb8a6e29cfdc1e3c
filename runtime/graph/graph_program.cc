#include "runtime/graph/graph_program.h"

#include <algorithm>
#include <unordered_map>

#include "microkernel/base/error.h"
#include "runtime/autograd/grad_mode.h"
#include "runtime/graph/simplify.h"
#include "runtime/graph/trace.h"
#include "runtime/ndarray/abstract_eval.h"

namespace loom::graph {

GraphProgram::GraphProgram(const Symbol& given, const std::vector<const Node*>& variables)
    : symbol_(eliminate_common_subexpressions(given)),  // equal nodes run once (simplify.h)
      num_inputs_(variables.size()),
      num_values_(variables.size()),
      variables_(variables) {
  // The variables stay the same nodes; copies of the others live in symbol_.
  const Symbol& symbol = symbol_;
  std::unordered_map<const Node*, int> first;  // value index of each node's output 0
  for (std::size_t k = 0; k < variables.size(); ++k) first.emplace(variables[k], static_cast<int>(k));
  for (const Node* n : symbol.topo_order()) {
    if (n->is_variable()) {
      LOOM_CHECK(first.count(n), "graph: variable '", n->name, "' has no bound input");
      continue;
    }
    // A traced training step keeps its nodes' modes (Symbol::keeps_traced_modes).
    Step step{n, {}, static_cast<int>(num_values_), n->attrs.count("training") > 0 && !given.keeps_traced_modes()};
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
  // Each value's last reader, where a group's members read at its root (the
  // step that runs them); a value no one reads goes right after its step.
  std::vector<int> last(num_values_, -1);
  for (std::size_t k = 0; k < steps_.size(); ++k) {
    const Step& step = steps_[k];
    const int at = step.group < 0 ? static_cast<int>(k) : groups_[step.group].members.back();
    for (int v : step.inputs) {
      if (v >= 0) last[v] = std::max(last[v], at);
    }
    for (std::uint32_t o = 0; o < step.node->num_outputs(); ++o) {
      last[step.first_output + o] = std::max(last[step.first_output + o], at);
    }
  }
  for (int v : heads_) last[v] = -1;  // the caller's
  release_after_.resize(steps_.size());
  for (std::size_t v = num_inputs_; v < num_values_; ++v) {
    if (last[v] >= 0) release_after_[last[v]].push_back(static_cast<int>(v));
  }
}

void GraphProgram::run_step(const Step& step, std::vector<NDArray>& values, std::optional<bool> training,
                            std::vector<NDArray>& args, const std::vector<NDArray>* into) const {
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
    if (into != nullptr) {
      outs = step.node->op->invoke_into(OpCall(*step.node->op, args, *attrs), *into);
    } else {
      outs = invoke(*step.node->op, args, *attrs);
    }
  } catch (const Error& e) {
    throw Error(e.kind(), "node '" + step.node->name + "' (" + step.node->op->name + "): " + e.what());
  }
  std::move(outs.begin(), outs.end(), values.begin() + step.first_output);
}

std::vector<NDArray> GraphProgram::run(const std::vector<NDArray>& inputs, std::optional<bool> training) const {
  LOOM_CHECK(inputs.size() == num_inputs_, "graph: expects ", num_inputs_, " inputs, got ", inputs.size());
  if (graph_plan_enabled() && !autograd::is_recording() && !abstract_eval() && !tracing()) {
    std::unique_lock<std::mutex> hold(plan_mutex_);
    if (!plan_ || !plan_matches(*plan_, inputs, training)) plan_ = make_plan(inputs, training);
    if (plan_->usable) {
      std::shared_ptr<RunPlan> plan = plan_;
      // Kept buffers are this program's: one run issues its ops at a time,
      // and the engine orders each run's writes after the last one's reads.
      const bool keep = static_alloc_;
      if (!keep) hold.unlock();
      return run_planned(inputs, training, plan.get(), keep);
    }
  }
  return run_planned(inputs, training, nullptr, false);
}

std::vector<NDArray> GraphProgram::run_planned(const std::vector<NDArray>& inputs, std::optional<bool> training,
                                               RunPlan* plan, bool keep) const {
  std::vector<NDArray> values(num_values_);
  std::copy(inputs.begin(), inputs.end(), values.begin());
  // The plan's buffers: kept ones (static_alloc), or taken from the pool
  // when a run first writes one and given back after the last step that
  // reads it (the engine frees it once that step has run), so the run's
  // peak follows the plan's, not the sum of all its buffers.
  std::vector<std::shared_ptr<Storage>> fresh;
  std::vector<std::shared_ptr<Storage>>& buffers = plan != nullptr && keep ? plan->kept : fresh;
  if (plan != nullptr) buffers.resize(plan->buffer_bytes.size());  // kept ones stay
  std::vector<NDArray> args, into;
  auto placed = [&](std::size_t k) -> const std::vector<NDArray>* {
    if (plan == nullptr || plan->placed[k].empty()) return nullptr;
    into.clear();
    for (const RunPlan::Placed& p : plan->placed[k]) {
      if (p.buffer < 0) {
        into.emplace_back();
        continue;
      }
      std::shared_ptr<Storage>& buffer = buffers[p.buffer];
      if (!buffer) buffer = std::make_shared<Storage>(static_cast<std::size_t>(plan->buffer_bytes[p.buffer]), plan->device);
      into.push_back(NDArray::on_storage(buffer, p.shape, contiguous_strides(p.shape), 0, p.dtype));
    }
    return &into;
  };
  for (std::size_t k = 0; k < steps_.size(); ++k) {
    const Step& step = steps_[k];
    if (step.group < 0) {
      run_step(step, values, training, args, placed(k));
    } else {
      // A fused group runs at its root, the last of its members: every value
      // it reads from outside exists by then, and no one else reads the others.
      const PointwiseGroup& group = groups_[step.group];
      if (static_cast<std::size_t>(group.members.back()) != k) continue;
      const std::vector<NDArray>* out = placed(k);
      NDArray fused = group.run(values, out == nullptr ? nullptr : &(*out)[0]);
      if (fused.defined()) {
        values[step.first_output] = std::move(fused);
      } else {
        for (int m : group.members) run_step(steps_[m], values, training, args, m == static_cast<int>(k) ? out : nullptr);
      }
    }
    for (int v : release_after_[k]) values[v] = NDArray();  // the pool may reuse it once its readers ran
    if (plan != nullptr && !keep) {
      for (int b : plan->buffers_done[k]) fresh[b].reset();
    }
  }
  std::vector<NDArray> result;
  result.reserve(heads_.size());
  for (int v : heads_) result.push_back(values[v]);
  return result;
}

}  // namespace loom::graph
