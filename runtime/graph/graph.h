// The symbolic graph: nodes that name an operator (or a variable), their
// attributes and the node outputs they read.
//
// A Symbol is a list of node outputs (NodeEntry); the nodes it reaches form
// its graph. Nodes are shared between symbols and never changed after they
// are made, so composing, grouping and taking internals are cheap and a
// symbol stays valid while anything holds it. Operators come from the
// schema table (op_schema.h); a variable is a node without one.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/core/dtype.h"
#include "runtime/core/shape.h"
#include "runtime/graph/attr_value.h"
#include "runtime/graph/op_schema.h"

namespace loom::graph {

struct Node;

struct NodeEntry {
  std::shared_ptr<const Node> node;  // nullptr: an absent optional input
  std::uint32_t index = 0;

  bool present() const { return node != nullptr; }
};

struct Node {
  const OpSchema* op = nullptr;  // nullptr: a variable
  std::string name;
  AttrMap attrs;                  // complete (complete_attrs); empty for a variable
  std::vector<NodeEntry> inputs;  // one per array slot of op (any number for a list op)
  // A variable's declared shape and dtype, when known.
  std::optional<Shape> shape;
  std::optional<DType> dtype;

  bool is_variable() const { return op == nullptr; }
  std::uint32_t num_outputs() const { return op == nullptr ? 1 : static_cast<std::uint32_t>(op->num_outputs(attrs)); }
  // "fc1_output" for a single-output op, "topk0_indices" for one of several
  // ("split0_out2" for one of a list), the name for a variable.
  std::string output_name(std::uint32_t index) const;
};

class Symbol {
 public:
  Symbol() = default;
  explicit Symbol(std::vector<NodeEntry> outputs) : outputs_(std::move(outputs)) {}

  static Symbol variable(const std::string& name, std::optional<Shape> shape = std::nullopt,
                         std::optional<DType> dtype = std::nullopt);
  // A node of `op` on `inputs` (one single-output symbol per array slot, or
  // nullopt for an absent optional; any number for a list op). Checks the
  // attributes and the inputs against the schema.
  static Symbol apply(const std::string& op, const std::vector<std::optional<Symbol>>& inputs,
                      const AttrMap& attrs, const std::string& name);
  static Symbol group(const std::vector<Symbol>& symbols);

  const std::vector<NodeEntry>& outputs() const { return outputs_; }
  std::size_t num_outputs() const { return outputs_.size(); }
  Symbol operator[](std::size_t index) const;
  // The one output's entry; throws naming `what` when there are several.
  const NodeEntry& single(const std::string& what) const;

  // Every node the outputs reach, inputs before the nodes that read them
  // (depth-first, in input order: deterministic).
  std::vector<const Node*> topo_order() const;
  std::vector<std::shared_ptr<const Node>> topo_nodes() const;
  // Variables read as ordinary inputs, in topological order (MXNet's
  // list_arguments), and those an operator changes in place (auxiliary
  // states: batch_norm's running statistics).
  std::vector<std::string> list_arguments() const;
  std::vector<std::string> list_auxiliary_states() const;
  std::vector<std::string> list_outputs() const;
  std::vector<const Node*> arguments() const;
  std::vector<const Node*> auxiliary_states() const;
  // Every output of every node, in topological order.
  Symbol internals() const;
  // A copy in which each variable named in `replacements` is that symbol's
  // (single) output instead. Unknown names raise an error listing the arguments.
  Symbol compose(const std::map<std::string, Symbol>& replacements) const;

  // A graph whose nodes keep the `training` modes they were traced in,
  // whatever mode a run asks for: a training step traced with its gradient
  // (trace_gradient). An executor flips batch_norm to the run's mode for
  // MXNet-style graphs, but the traced gradient nodes recompute batch
  // statistics, so a flipped forward would disagree with them. Saved in
  // the JSON as "modes": "traced"; derived symbols (compose, internals)
  // start without it.
  bool keeps_traced_modes() const { return keeps_traced_modes_; }
  Symbol with_traced_modes() const {
    Symbol copy = *this;
    copy.keeps_traced_modes_ = true;
    return copy;
  }

 private:
  std::vector<NodeEntry> outputs_;
  bool keeps_traced_modes_ = false;
};

// A fresh name for a node of `op` when the user gave none: relu0, relu1, ...
// (a process-wide counter per op, as MXNet's NameManager).
std::string auto_name(const std::string& op);

}  // namespace loom::graph
