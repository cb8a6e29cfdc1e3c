// A symbol lowered to a flat program: its nodes in topological order, each
// reading earlier slots by index. Executors and cached ops run it many times,
// so the per-run work is a loop over arrays, with no hashing or graph walk.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "runtime/graph/fuse_pointwise.h"
#include "runtime/graph/graph.h"
#include "runtime/graph/plan_memory.h"

namespace loom::graph {

// False when LOOM_GRAPH_PLAN=0 (for measuring what the plan saves).
bool graph_plan_enabled();

class GraphProgram {
 public:
  // The program's inputs are `variables` (each a variable node of `symbol`,
  // typically its arguments then its auxiliary states).
  GraphProgram(const Symbol& symbol, const std::vector<const Node*>& variables);

  // Runs every operator node (each an op call through the engine, recorded
  // for autograd when recording is on) and returns the symbol's outputs.
  // `training`, when set, overrides operators' `training` attribute.
  std::vector<NDArray> run(const std::vector<NDArray>& inputs, std::optional<bool> training) const;

  std::size_t num_inputs() const { return num_inputs_; }
  // Groups of pointwise nodes that run as one kernel when they can (fuse_pointwise.h).
  std::size_t num_fused_groups() const { return groups_.size(); }
  const std::vector<PointwiseGroup>& fused_groups() const { return groups_; }

  // Runs that autograd does not record (inference; the backward would need
  // the values a plan reuses) run on the memory plan (plan_memory.h): each
  // operator output the plan places is written, through its schema's
  // invoke_into, into one of a few buffers, over a dying input where the
  // plan says so; the plan is made once per input signature. A run takes
  // each buffer from the storage pool when it first writes it and gives it
  // back after its last reader; with static_alloc the buffers are kept
  // between runs (MXNet's static_alloc). LOOM_GRAPH_PLAN=0 turns this off.
  void set_static_alloc(bool keep);
  // The plan of the last planned run (zeros before one).
  MemoryPlan run_plan_stats() const;

 private:
  // Every value (input or node output) has one index into a flat array.
  struct Step {
    const Node* node;
    std::vector<int> inputs;  // value indices; -1: an absent optional
    int first_output;         // value index of the node's output 0
    bool has_training_attr;
    int group = -1;           // its pointwise group, or -1
  };
  // `into`: where the plan puts the outputs (one per output, undefined
  // where the op allocates; through the schema's invoke_into), or null.
  void run_step(const Step& step, std::vector<NDArray>& values, std::optional<bool> training,
                std::vector<NDArray>& args, const std::vector<NDArray>* into = nullptr) const;

  // A memory plan for one input signature (graph_program_plan.cc).
  struct RunPlan {
    std::vector<std::pair<Shape, DType>> inputs;  // the signature it was made for
    std::optional<bool> training;
    Device device;
    struct Placed {
      int buffer = -1;  // -1: the op allocates this output
      Shape shape;
      DType dtype = DType::kFloat32;
    };
    std::vector<std::vector<Placed>> placed;  // per step, per output; empty: nothing placed
    std::vector<std::vector<int>> buffers_done;  // per step: buffers no later step uses
    std::vector<std::int64_t> buffer_bytes;
    std::vector<std::shared_ptr<Storage>> kept;  // static_alloc: the buffers, between runs
    MemoryPlan stats;
    bool usable = false;  // false: the graph could not be planned (run it unplanned)
  };
  std::shared_ptr<RunPlan> make_plan(const std::vector<NDArray>& inputs, std::optional<bool> training) const;
  static bool plan_matches(const RunPlan& plan, const std::vector<NDArray>& inputs, std::optional<bool> training);
  // `plan` null: every op allocates its own outputs. `keep`: the buffers
  // are plan->kept (static_alloc; the caller holds plan_mutex_).
  std::vector<NDArray> run_planned(const std::vector<NDArray>& inputs, std::optional<bool> training,
                                   RunPlan* plan, bool keep) const;

  // The simplified graph the steps point into: the program owns it.
  Symbol symbol_;
  std::size_t num_inputs_;
  std::size_t num_values_;
  std::vector<Step> steps_;
  std::vector<int> heads_;  // value indices
  std::vector<PointwiseGroup> groups_;
  std::vector<const Node*> variables_;
  // Per step: the values whose last reader it is (a group's reads count at
  // its root), dropped after it so the pool can reuse their memory.
  std::vector<std::vector<int>> release_after_;

  bool static_alloc_ = false;
  mutable std::mutex plan_mutex_;  // guards plan_; held through a run on kept buffers
  mutable std::shared_ptr<RunPlan> plan_;
};

}  // namespace loom::graph
