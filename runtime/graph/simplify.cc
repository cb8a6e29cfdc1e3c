#include "runtime/graph/simplify.h"

#include <algorithm>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "microkernel/base/error.h"
#include "runtime/autograd/grad_mode.h"
#include "runtime/dispatch/op_registry.h"

namespace loom::graph {
namespace {

bool updates_an_argument(const Node& n) {
  for (const ArgSchema& a : n.op->args) {
    if (a.mutated) return true;
  }
  return false;
}

// A random op (tagged `random` in its YAML) draws new values on every run:
// two such nodes are never one, and none is a constant.
bool draws_random(const Node& n) {
  const OpInfo* info = find_op(n.op->name);
  return info != nullptr && std::find(info->tags.begin(), info->tags.end(), "random") != info->tags.end();
}

// A node whose outputs must come from running it each time.
bool runs_every_time(const Node& n) { return updates_an_argument(n) || draws_random(n); }

// Rebuilds `symbol` bottom-up: each operator node, with its inputs mapped
// to their new entries (a copy only when one changed), goes through
// visit(original, current), which returns the entries its outputs become.
template <typename Visit>
Symbol rebuild(const Symbol& symbol, Visit&& visit) {
  std::unordered_map<const Node*, std::vector<NodeEntry>> mapped;  // node -> its outputs' new entries
  auto entry = [&](const NodeEntry& e) -> NodeEntry {
    if (!e.present()) return e;
    return mapped.at(e.node.get()).at(e.index);
  };
  for (const auto& node : symbol.topo_nodes()) {
    std::vector<NodeEntry> outs;
    if (node->is_variable()) {
      outs.push_back(NodeEntry{node, 0});
    } else {
      std::shared_ptr<const Node> current = node;
      bool changed = false;
      std::vector<NodeEntry> inputs;
      for (const NodeEntry& in : node->inputs) {
        inputs.push_back(entry(in));
        changed |= inputs.back().node != in.node || inputs.back().index != in.index;
      }
      if (changed) {
        auto copy = std::make_shared<Node>(*node);
        copy->inputs = std::move(inputs);
        current = std::move(copy);
      }
      outs = visit(node, current);
    }
    mapped.emplace(node.get(), std::move(outs));
  }
  std::vector<NodeEntry> heads;
  for (const NodeEntry& e : symbol.outputs()) heads.push_back(entry(e));
  return Symbol(std::move(heads));
}

std::vector<NodeEntry> outputs_of(const std::shared_ptr<const Node>& n) {
  std::vector<NodeEntry> outs;
  for (std::uint32_t k = 0; k < n->num_outputs(); ++k) outs.push_back(NodeEntry{n, k});
  return outs;
}

}  // namespace

Symbol eliminate_common_subexpressions(const Symbol& symbol) {
  // Key: op, attributes, inputs (node identity and output index).
  using Key = std::tuple<const OpSchema*, AttrMap, std::vector<std::pair<const Node*, std::uint32_t>>>;
  std::map<Key, std::shared_ptr<const Node>> seen;
  return rebuild(symbol, [&](const std::shared_ptr<const Node>&, const std::shared_ptr<const Node>& n) {
    if (runs_every_time(*n)) return outputs_of(n);
    std::vector<std::pair<const Node*, std::uint32_t>> inputs;
    for (const NodeEntry& in : n->inputs) inputs.emplace_back(in.node.get(), in.index);
    auto [it, fresh] = seen.emplace(Key{n->op, n->attrs, std::move(inputs)}, n);
    return outputs_of(fresh ? n : it->second);
  });
}

Symbol fold_constants(const Symbol& symbol, std::map<std::string, NDArray>& constants) {
  std::unordered_set<const Node*> heads;
  for (const NodeEntry& e : symbol.outputs()) heads.insert(e.node.get());
  std::unordered_map<const Node*, NDArray> known;  // variables and folded outputs (single-output nodes)
  for (const Node* n : symbol.topo_order()) {
    if (!n->is_variable()) continue;
    if (auto it = constants.find(n->name); it != constants.end()) known.emplace(n, it->second);
  }
  autograd::ModeScope not_recorded(false);  // a folded value has no history
  int next = 0;
  while (constants.count("_folded" + std::to_string(next))) ++next;
  return rebuild(symbol, [&](const std::shared_ptr<const Node>& original, const std::shared_ptr<const Node>& n) {
    if (heads.count(original.get()) || n->num_outputs() != 1 || runs_every_time(*n)) return outputs_of(n);
    std::vector<NDArray> inputs;
    for (const NodeEntry& in : n->inputs) {
      if (!in.present()) {
        inputs.emplace_back();
        continue;
      }
      auto it = known.find(in.node.get());
      if (it == known.end()) return outputs_of(n);
      inputs.push_back(it->second);
    }
    const NDArray value = invoke(*n->op, inputs, n->attrs).at(0);
    const std::string name = "_folded" + std::to_string(next++);
    constants[name] = value;
    Symbol var = Symbol::variable(name, value.shape(), value.dtype());
    known.emplace(var.outputs()[0].node.get(), value);
    return var.outputs();
  });
}

Symbol fold_epilogues(const Symbol& symbol) {
  // How many times each node's outputs are read: by other nodes, or as heads.
  std::unordered_map<const Node*, int> readers;
  for (const Node* n : symbol.topo_order()) {
    for (const NodeEntry& in : n->inputs) {
      if (in.present()) ++readers[in.node.get()];
    }
  }
  std::unordered_set<const Node*> heads;
  for (const NodeEntry& e : symbol.outputs()) heads.insert(e.node.get());
  return rebuild(symbol, [&](const std::shared_ptr<const Node>& original, const std::shared_ptr<const Node>& n) {
    if (n->inputs.size() != 1 || !n->inputs[0].present() || n->inputs[0].index != 0) return outputs_of(n);
    const NodeEntry& in = original->inputs[0];  // the producer as the original graph has it
    const Node& producer = *n->inputs[0].node;
    if (producer.is_variable() || readers[in.node.get()] != 1 || heads.count(in.node.get())) return outputs_of(n);
    for (const OpSchema::Absorb& absorb : producer.op->absorbs) {
      if (absorb.op != n->op->name) continue;
      bool already = true;
      for (const auto& [attr, value] : absorb.attrs) already &= producer.attrs.at(attr) == value;
      if (already) break;  // a second relu after a fused one: keep it (it is the identity, but cheap)
      auto fused = std::make_shared<Node>(producer);
      for (const auto& [attr, value] : absorb.attrs) fused->attrs[attr] = value;
      return std::vector<NodeEntry>{NodeEntry{fused, 0}};
    }
    return outputs_of(n);
  });
}

}  // namespace loom::graph
