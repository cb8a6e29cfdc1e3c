// A GraphProgram's memory plan for one input signature: the problem of
// plan_memory.h built from the program's own steps (so the plan follows the
// order they run in, fused groups included), solved, and turned into the
// buffer each step writes its output into.
#include <cstdlib>
#include <cstring>
#include <map>
#include <unordered_map>

#include "microkernel/base/error.h"
#include "runtime/graph/graph_program.h"
#include "runtime/graph/infer.h"

namespace loom::graph {

bool graph_plan_enabled() {
  static const bool enabled = [] {
    const char* env = std::getenv("LOOM_GRAPH_PLAN");
    return env == nullptr || std::strcmp(env, "0") != 0;
  }();
  return enabled;
}

void GraphProgram::set_static_alloc(bool keep) {
  std::lock_guard<std::mutex> hold(plan_mutex_);
  static_alloc_ = keep;
  if (plan_) plan_->kept.clear();
}

MemoryPlan GraphProgram::run_plan_stats() const {
  std::lock_guard<std::mutex> hold(plan_mutex_);
  return plan_ && plan_->usable ? plan_->stats : MemoryPlan{};
}

bool GraphProgram::plan_matches(const RunPlan& plan, const std::vector<NDArray>& inputs,
                                std::optional<bool> training) {
  if (plan.training != training || plan.inputs.size() != inputs.size()) return false;
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    if (!inputs[k].defined() || inputs[k].device() != plan.device || inputs[k].shape() != plan.inputs[k].first ||
        inputs[k].dtype() != plan.inputs[k].second) {
      return false;
    }
  }
  return true;
}

std::shared_ptr<GraphProgram::RunPlan> GraphProgram::make_plan(const std::vector<NDArray>& inputs,
                                                              std::optional<bool> training) const {
  auto plan = std::make_shared<RunPlan>();
  plan->training = training;
  std::map<std::string, Shape> shapes;
  std::map<std::string, DType> dtypes;
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    const NDArray& a = inputs[k];
    plan->inputs.emplace_back(a.defined() ? a.shape() : Shape{}, a.defined() ? a.dtype() : DType::kFloat32);
    if (!a.defined()) return plan;
    if (k == 0) plan->device = a.device();
    // One device; variables named apart (a name given twice cannot carry two shapes).
    if (a.device() != plan->device || !shapes.emplace(variables_[k]->name, a.shape()).second) return plan;
    dtypes.emplace(variables_[k]->name, a.dtype());
  }
  if (inputs.empty()) return plan;
  InferResult inferred;
  try {
    inferred = infer(symbol_, shapes, dtypes);
  } catch (const Error&) {
    return plan;  // the run itself raises the op's error
  }

  // Values are the program's (inputs, then each step's outputs); storages
  // are the abstract arrays' (a view's value shares its base's).
  PlanProblem problem;
  problem.storage_of.assign(num_values_, -1);
  problem.whole.assign(num_values_, 0);
  std::unordered_map<const void*, int> storage_ids;
  auto note = [&](int v, const Node* n, std::uint32_t k, bool input, bool placeable) {
    auto it = inferred.arrays.find(n);
    if (it == inferred.arrays.end() || k >= it->second.size() || !it->second[k].defined()) return false;
    const Storage* st = it->second[k].storage().get();
    auto [id, fresh] = storage_ids.emplace(st, static_cast<int>(problem.storages.size()));
    if (fresh) {
      const auto bytes = static_cast<std::int64_t>(st->bytes());
      problem.storages.push_back({bytes, input, false, placeable && bytes > 0, v});
    }
    problem.storage_of[v] = id->second;
    problem.whole[v] = covers_storage(it->second[k]);
    return true;
  };
  for (std::size_t k = 0; k < num_inputs_; ++k) {
    if (!note(static_cast<int>(k), variables_[k], 0, true, false)) return plan;
  }
  problem.steps.resize(steps_.size());
  for (std::size_t k = 0; k < steps_.size(); ++k) {
    const Step& step = steps_[k];
    const OpSchema& op = *step.node->op;
    PlanProblem::Step& at = problem.steps[k];
    const bool root = step.group >= 0 && static_cast<std::size_t>(groups_[step.group].members.back()) == k;
    // A group's other members make nothing (their values stay in the tiles)
    // and its reads are the root's.
    if (step.group >= 0 && !root) continue;
    // An op whose training mode this run changes may make other shapes than
    // inference saw: it allocates its own outputs.
    const bool moded = step.has_training_attr && training &&
                       std::get<bool>(step.node->attrs.at("training")) != *training;
    const bool placeable = op.invoke_into != nullptr && !moded;
    for (std::uint32_t o = 0; o < step.node->num_outputs(); ++o) {
      if (!note(step.first_output + static_cast<int>(o), step.node, o, false, placeable)) return plan;
      at.makes.push_back(step.first_output + static_cast<int>(o));
    }
    if (root) {
      at.reads = groups_[step.group].external;
      at.inplace_candidates = at.reads;  // all pointwise: any input of the output's size
      continue;
    }
    for (int v : step.inputs) {
      if (v >= 0) at.reads.push_back(v);
    }
    for (int i : inplace_slots(op, step.inputs.size())) {
      if (step.inputs[i] >= 0) at.inplace_candidates.push_back(step.inputs[i]);
    }
  }
  for (int v : heads_) {
    if (problem.storage_of[v] >= 0) problem.storages[problem.storage_of[v]].output = true;
  }

  const PlanSolution solution = solve_memory_plan(problem);
  plan->stats = solution.stats;
  plan->buffer_bytes = solution.buffer_bytes;
  plan->placed.resize(steps_.size());
  plan->buffers_done.resize(steps_.size());
  for (std::size_t b = 0; b < solution.buffer_last_use.size(); ++b) {
    plan->buffers_done[solution.buffer_last_use[b]].push_back(static_cast<int>(b));
  }
  for (std::size_t k = 0; k < steps_.size(); ++k) {
    const Step& step = steps_[k];
    std::vector<RunPlan::Placed> outs(step.node->num_outputs());
    bool any = false;
    for (std::uint32_t o = 0; o < step.node->num_outputs(); ++o) {
      const int v = step.first_output + static_cast<int>(o);
      const int st = problem.storage_of[v];
      if (st < 0 || problem.storages[st].maker != v || solution.buffer_of[st] < 0) continue;
      const NDArray& value = inferred.arrays.at(step.node)[o];
      outs[o] = {solution.buffer_of[st], value.shape(), value.dtype()};
      any = true;
    }
    if (any) plan->placed[k] = std::move(outs);
  }
  plan->usable = true;
  return plan;
}

}  // namespace loom::graph
