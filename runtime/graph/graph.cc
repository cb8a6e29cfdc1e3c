#include "runtime/graph/graph.h"

#include <atomic>
#include <mutex>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "microkernel/base/error.h"
#include "runtime/graph/join_names.h"

namespace loom::graph {
std::string Node::output_name(std::uint32_t index) const {
  if (is_variable()) return name;
  if (op->has_output_list()) return op->num_outputs(attrs) == 1 ? name + "_output" : name + "_" + op->output_label(index);
  const std::vector<int> visible = op->visible_outputs(attrs);
  if (visible.size() == 1 && visible[0] == static_cast<int>(index)) return name + "_output";
  return name + "_" + op->output_label(index);
}

Symbol Symbol::variable(const std::string& name, std::optional<Shape> shape, std::optional<DType> dtype) {
  LOOM_CHECK(!name.empty(), "sym.var: a variable needs a name");
  auto node = std::make_shared<Node>();
  node->name = name;
  node->shape = std::move(shape);
  node->dtype = dtype;
  return Symbol({NodeEntry{std::move(node), 0}});
}

Symbol Symbol::apply(const std::string& op_name, const std::vector<std::optional<Symbol>>& inputs,
                     const AttrMap& attrs, const std::string& name) {
  const OpSchema& op = schema_or_throw(op_name);
  const int slots = op.num_array_slots();
  LOOM_CHECK(slots < 0 || static_cast<int>(inputs.size()) == slots, op.name, ": expects ", slots,
             " array inputs, got ", inputs.size());
  auto node = std::make_shared<Node>();
  node->op = &op;
  node->name = name.empty() ? auto_name(op.name) : name;
  node->attrs = complete_attrs(op, attrs);
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    const ArgSchema& arg = op.slot_arg(k);
    if (!inputs[k]) {
      LOOM_CHECK_KIND(arg.kind == ArgKind::kOptionalTensor, ErrorKind::kType, op.name, " (node '", node->name,
                      "'): argument '", arg.name, "' is required");
      node->inputs.push_back(NodeEntry{});
      continue;
    }
    node->inputs.push_back(inputs[k]->single(op.name + " (node '" + node->name + "') argument '" + arg.name + "'"));
  }
  std::vector<NodeEntry> outs;
  for (int i : op.visible_outputs(node->attrs)) outs.push_back(NodeEntry{node, static_cast<std::uint32_t>(i)});
  return Symbol(std::move(outs));
}

Symbol Symbol::group(const std::vector<Symbol>& symbols) {
  std::vector<NodeEntry> outs;
  for (const Symbol& s : symbols) outs.insert(outs.end(), s.outputs_.begin(), s.outputs_.end());
  return Symbol(std::move(outs));
}

Symbol Symbol::operator[](std::size_t index) const {
  LOOM_CHECK_KIND(index < outputs_.size(), ErrorKind::kIndex, "symbol output ", index, " out of range (it has ",
                  outputs_.size(), " outputs: ", join_names(list_outputs()), ")");
  return Symbol({outputs_[index]});
}

const NodeEntry& Symbol::single(const std::string& what) const {
  LOOM_CHECK(outputs_.size() == 1, what, ": expects a symbol with one output, got ", outputs_.size(), " (",
             join_names(list_outputs()), "); pick one with sym[i]");
  return outputs_[0];
}

namespace {

// A node that reads no operator's output (a constant fill, a view of a
// variable): it can run any time before its reader.
bool is_source(const Node& n) {
  for (const NodeEntry& in : n.inputs) {
    if (in.present() && !in.node->is_variable()) return false;
  }
  return true;
}

// The order in which DFS visits a node's inputs: sources last, so they land
// right before the node that reads them instead of early on, where their
// buffers would stay alive meanwhile (the zeros a max-pool backward
// scatters into would otherwise live through the whole backward pass).
std::vector<std::size_t> visit_order(const Node& n) {
  std::vector<std::size_t> order, sources;
  for (std::size_t k = 0; k < n.inputs.size(); ++k) {
    const NodeEntry& in = n.inputs[k];
    if (!in.present()) continue;
    (!in.node->is_variable() && is_source(*in.node) ? sources : order).push_back(k);
  }
  order.insert(order.end(), sources.begin(), sources.end());
  return order;
}

}  // namespace

std::vector<std::shared_ptr<const Node>> Symbol::topo_nodes() const {
  std::vector<std::shared_ptr<const Node>> order;
  std::unordered_set<const Node*> seen;
  // Iterative DFS: deep graphs (unrolled RNNs) must not overflow the stack.
  struct Frame {
    std::shared_ptr<const Node> node;
    std::vector<std::size_t> inputs;
    std::size_t next = 0;
  };
  std::vector<Frame> stack;
  for (const NodeEntry& head : outputs_) {
    if (!head.present() || !seen.insert(head.node.get()).second) continue;
    stack.push_back(Frame{head.node, visit_order(*head.node)});
    while (!stack.empty()) {
      Frame& top = stack.back();
      if (top.next < top.inputs.size()) {
        const NodeEntry& in = top.node->inputs[top.inputs[top.next++]];
        if (seen.insert(in.node.get()).second) stack.push_back(Frame{in.node, visit_order(*in.node)});
        continue;
      }
      order.push_back(std::move(top.node));
      stack.pop_back();
    }
  }
  return order;
}

std::vector<const Node*> Symbol::topo_order() const {
  std::vector<const Node*> order;
  for (const auto& n : topo_nodes()) order.push_back(n.get());
  return order;
}

namespace {

// Variables feeding an array slot an operator changes in place.
std::unordered_set<const Node*> mutated_variables(const std::vector<const Node*>& order) {
  std::unordered_set<const Node*> aux;
  for (const Node* n : order) {
    if (n->is_variable()) continue;
    for (std::size_t k = 0; k < n->inputs.size(); ++k) {
      if (n->op->slot_arg(k).mutated && n->inputs[k].present() && n->inputs[k].node->is_variable()) {
        aux.insert(n->inputs[k].node.get());
      }
    }
  }
  return aux;
}

}  // namespace

std::vector<const Node*> Symbol::arguments() const {
  const auto order = topo_order();
  const auto aux = mutated_variables(order);
  std::vector<const Node*> out;
  for (const Node* n : order) {
    if (n->is_variable() && !aux.count(n)) out.push_back(n);
  }
  return out;
}

std::vector<const Node*> Symbol::auxiliary_states() const {
  const auto order = topo_order();
  const auto aux = mutated_variables(order);
  std::vector<const Node*> out;
  for (const Node* n : order) {
    if (aux.count(n)) out.push_back(n);
  }
  return out;
}

std::vector<std::string> Symbol::list_arguments() const {
  std::vector<std::string> names;
  for (const Node* n : arguments()) names.push_back(n->name);
  return names;
}

std::vector<std::string> Symbol::list_auxiliary_states() const {
  std::vector<std::string> names;
  for (const Node* n : auxiliary_states()) names.push_back(n->name);
  return names;
}

std::vector<std::string> Symbol::list_outputs() const {
  std::vector<std::string> names;
  for (const NodeEntry& e : outputs_) names.push_back(e.node->output_name(e.index));
  return names;
}

Symbol Symbol::internals() const {
  std::vector<NodeEntry> outs;
  for (const auto& node : topo_nodes()) {
    for (std::uint32_t i = 0; i < node->num_outputs(); ++i) outs.push_back(NodeEntry{node, i});
  }
  return Symbol(std::move(outs));
}

Symbol Symbol::compose(const std::map<std::string, Symbol>& replacements) const {
  const auto names = list_arguments();
  const std::set<std::string> known(names.begin(), names.end());
  for (const auto& [name, _] : replacements) {
    LOOM_CHECK(known.count(name), "compose: no argument named '", name, "' (arguments: ", join_names(names), ")");
  }
  // In topological order, each node maps to itself unless an input changed,
  // then to a copy reading the mapped inputs: only what a replaced variable
  // reaches is copied.
  std::unordered_map<const Node*, NodeEntry> var_map;
  std::unordered_map<const Node*, std::shared_ptr<const Node>> node_map;
  auto mapped = [&](const NodeEntry& e) -> NodeEntry {
    if (!e.present()) return e;
    if (auto v = var_map.find(e.node.get()); v != var_map.end()) return v->second;
    return NodeEntry{node_map.at(e.node.get()), e.index};
  };
  for (const auto& node : topo_nodes()) {
    if (node->is_variable()) {
      auto it = replacements.find(node->name);
      if (it != replacements.end()) {
        var_map.emplace(node.get(), it->second.single("compose: replacement for '" + node->name + "'"));
      } else {
        node_map.emplace(node.get(), node);
      }
      continue;
    }
    auto copy = std::make_shared<Node>(*node);
    bool changed = false;
    for (NodeEntry& in : copy->inputs) {
      NodeEntry m = mapped(in);
      changed |= m.node != in.node || m.index != in.index;
      in = std::move(m);
    }
    node_map.emplace(node.get(), changed ? std::shared_ptr<const Node>(std::move(copy)) : node);
  }
  std::vector<NodeEntry> outs;
  for (const NodeEntry& e : outputs_) outs.push_back(mapped(e));
  return Symbol(std::move(outs));
}

std::string auto_name(const std::string& op) {
  static std::mutex mu;
  static std::map<std::string, std::int64_t> counters;
  std::lock_guard<std::mutex> lock(mu);
  return op + std::to_string(counters[op]++);
}

}  // namespace loom::graph
