// A symbol lowered to a flat program: its nodes in topological order, each
// reading earlier slots by index. Executors and cached ops run it many times,
// so the per-run work is a loop over arrays, with no hashing or graph walk.
#pragma once

#include <optional>
#include <vector>

#include "runtime/graph/fuse_pointwise.h"
#include "runtime/graph/graph.h"

namespace loom::graph {

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

 private:
  // Every value (input or node output) has one index into a flat array.
  struct Step {
    const Node* node;
    std::vector<int> inputs;  // value indices; -1: an absent optional
    int first_output;         // value index of the node's output 0
    bool has_training_attr;
    int group = -1;           // its pointwise group, or -1
  };
  void run_step(const Step& step, std::vector<NDArray>& values, std::optional<bool> training,
                std::vector<NDArray>& args) const;

  // The simplified graph the steps point into: the program owns it.
  Symbol symbol_;
  std::size_t num_inputs_;
  std::size_t num_values_;
  std::vector<Step> steps_;
  std::vector<int> heads_;  // value indices
  std::vector<PointwiseGroup> groups_;
};

}  // namespace loom::graph
