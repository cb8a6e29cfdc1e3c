#include "runtime/graph/infer.h"

#include <set>
#include <unordered_map>

#include "microkernel/base/error.h"
#include "runtime/graph/join_names.h"
#include "runtime/autograd/grad_mode.h"
#include "runtime/ndarray/abstract_eval.h"

namespace loom::graph {
namespace {

// A node's output dtypes from its inputs' dtypes alone (OpSchema's
// dtype_slots / output_dtypes, from the YAML's dtype rule), shapes unknown:
// MXNet's infer_type with partial information. A fixed output dtype is
// known whatever the inputs; the promoted one once every slot it reads is.
std::vector<ValueType> dtypes_only(const Node& n, const std::map<const Node*, std::vector<ValueType>>& known) {
  const OpSchema& op = *n.op;
  if (!op.dtype_attr.empty()) {  // the attribute names the dtype (as its enum value)
    const std::int64_t code = std::get<std::int64_t>(n.attrs.at(op.dtype_attr));
    std::vector<ValueType> out(n.num_outputs());
    if (code >= 0 && code < kNumDTypes) out[0].dtype = static_cast<DType>(code);
    return out;
  }
  std::optional<DType> promoted;
  bool complete = !op.dtype_slots.empty();
  const auto read = [&](const NodeEntry& in) {
    if (!in.present()) return;  // an absent optional takes no part
    const std::optional<DType> d = known.at(in.node.get()).at(in.index).dtype;
    if (!d) {
      complete = false;
    } else {
      promoted = promoted ? promote_types(*promoted, *d) : *d;
    }
  };
  for (int slot : op.dtype_slots) {
    if (slot < 0) {
      for (const NodeEntry& in : n.inputs) read(in);
    } else if (static_cast<std::size_t>(slot) < n.inputs.size()) {
      read(n.inputs[static_cast<std::size_t>(slot)]);
    }
  }
  if (complete && promoted && op.int_to_int64 && !is_floating(*promoted)) promoted = DType::kInt64;
  std::vector<ValueType> out(n.num_outputs());
  for (std::size_t k = 0; k < out.size(); ++k) {
    // a list of outputs (split) shares its one declared output's dtype
    const std::size_t declared = op.has_output_list() ? 0 : k;
    if (declared >= op.output_dtypes.size()) break;
    out[k].dtype = op.output_dtypes[declared] ? op.output_dtypes[declared] : complete ? promoted : std::nullopt;
  }
  return out;
}

}  // namespace
InferResult infer(const Symbol& symbol, const std::map<std::string, Shape>& shapes,
                  const std::map<std::string, DType>& dtypes) {
  const auto order = symbol.topo_order();
  std::set<std::string> variables;
  for (const Node* n : order) {
    if (n->is_variable()) variables.insert(n->name);
  }
  const std::vector<std::string> names(variables.begin(), variables.end());
  for (const auto& [name, _] : shapes) {
    LOOM_CHECK(variables.count(name), "infer_shape: no variable named '", name, "' (variables: ", join_names(names), ")");
  }
  for (const auto& [name, _] : dtypes) {
    LOOM_CHECK(variables.count(name), "infer_type: no variable named '", name, "' (variables: ", join_names(names), ")");
  }

  AbstractEvalScope abstract;
  autograd::ModeScope not_recorded(false);
  std::unordered_map<const Node*, std::vector<NDArray>> values;
  InferResult result;
  for (const Node* n : order) {
    std::vector<ValueType>& types = result.values[n];
    if (n->is_variable()) {
      std::optional<Shape> shape = n->shape;
      if (auto it = shapes.find(n->name); it != shapes.end()) {
        LOOM_CHECK(!shape || *shape == it->second, "infer_shape: variable '", n->name, "' is declared with shape ",
                   shape_str(*shape), " but given ", shape_str(it->second));
        shape = it->second;
      }
      std::optional<DType> dtype = n->dtype;
      if (auto it = dtypes.find(n->name); it != dtypes.end()) {
        LOOM_CHECK_KIND(!dtype || *dtype == it->second, ErrorKind::kType, "infer_type: variable '", n->name,
                        "' is declared as ", dtype_name(*dtype), " but given ", dtype_name(it->second));
        dtype = it->second;
      }
      types.push_back(ValueType{shape, dtype.value_or(DType::kFloat32)});
      if (shape) values[n] = {NDArray::empty(*shape, dtype.value_or(DType::kFloat32))};
      continue;
    }
    std::vector<NDArray> inputs;
    bool known = true;
    for (const NodeEntry& in : n->inputs) {
      if (!in.present()) {
        inputs.emplace_back();
        continue;
      }
      auto it = values.find(in.node.get());
      if (it == values.end()) {
        known = false;
        break;
      }
      inputs.push_back(it->second.at(in.index));
    }
    if (!known) {  // no shapes to evaluate with: the dtypes alone, by the op's dtype rule
      types = dtypes_only(*n, result.values);
      continue;
    }
    std::vector<NDArray> outs;
    try {
      outs = invoke(*n->op, inputs, n->attrs);
    } catch (const Error& e) {
      std::string shown;
      for (std::size_t k = 0; k < inputs.size(); ++k) {
        shown += (k ? ", " : "") + (inputs[k].defined() ? inputs[k].describe() : std::string("None"));
      }
      throw Error(e.kind(), "node '" + n->name + "' (" + n->op->name + ") on " + shown + ": " + e.what());
    }
    for (const NDArray& o : outs) types.push_back(ValueType{o.shape(), o.dtype()});
    values[n] = std::move(outs);
  }

  result.arrays.insert(values.begin(), values.end());
  auto value_of = [&](const Node* n, std::uint32_t k) { return result.values.at(n).at(k); };
  for (const Node* n : symbol.arguments()) result.arguments.push_back(value_of(n, 0));
  for (const Node* n : symbol.auxiliary_states()) result.auxiliary_states.push_back(value_of(n, 0));
  for (const NodeEntry& e : symbol.outputs()) {
    result.outputs.push_back(value_of(e.node.get(), e.index));
    result.complete &= result.outputs.back().shape.has_value();
  }
  for (const ValueType& t : result.arguments) result.complete &= t.shape.has_value();
  for (const ValueType& t : result.auxiliary_states) result.complete &= t.shape.has_value();
  return result;
}

}  // namespace loom::graph
