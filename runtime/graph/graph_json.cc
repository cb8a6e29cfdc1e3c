#include "runtime/graph/graph_json.h"

#include <unordered_map>

#include <nlohmann/json.hpp>

#include "microkernel/base/error.h"

namespace loom::graph {
namespace {

using json = nlohmann::json;

json attr_json(const AttrValue& v) {
  if (std::holds_alternative<std::monostate>(v)) return nullptr;
  if (const auto* i = std::get_if<std::int64_t>(&v)) return *i;
  if (const auto* d = std::get_if<double>(&v)) return *d;
  if (const auto* b = std::get_if<bool>(&v)) return *b;
  return std::get<std::vector<std::int64_t>>(v);
}

AttrValue attr_from(const json& j, const std::string& where) {
  if (j.is_null()) return AttrValue();
  if (j.is_boolean()) return j.get<bool>();
  if (j.is_number_integer()) return j.get<std::int64_t>();
  if (j.is_number_float()) return j.get<double>();
  if (j.is_array()) {
    std::vector<std::int64_t> list;
    for (const json& e : j) {
      LOOM_CHECK(e.is_number_integer(), "load_json: ", where, ": a list attribute holds integers, got ", e.dump());
      list.push_back(e.get<std::int64_t>());
    }
    return list;
  }
  LOOM_THROW(ErrorKind::kValue, "load_json: ", where, ": unsupported attribute value ", j.dump());
}

const json& field(const json& obj, const char* key, const std::string& where) {
  auto it = obj.find(key);
  LOOM_CHECK(it != obj.end(), "load_json: ", where, " has no '", key, "'");
  return *it;
}

}  // namespace

std::string to_json(const Symbol& symbol) {
  const auto order = symbol.topo_order();
  std::unordered_map<const Node*, std::size_t> index;
  json nodes = json::array();
  auto entry = [&](const NodeEntry& e) -> json {
    if (!e.present()) return nullptr;
    return json::array({index.at(e.node.get()), e.index});
  };
  for (const Node* n : order) {
    index.emplace(n, nodes.size());
    json node = {{"name", n->name}};
    if (n->is_variable()) {
      node["op"] = nullptr;
      if (n->shape) node["shape"] = *n->shape;
      if (n->dtype) node["dtype"] = std::string(dtype_name(*n->dtype));
    } else {
      node["op"] = n->op->name;
      json attrs = json::object();
      for (const auto& [k, v] : n->attrs) attrs[k] = attr_json(v);
      node["attrs"] = std::move(attrs);
      json inputs = json::array();
      for (const NodeEntry& e : n->inputs) inputs.push_back(entry(e));
      node["inputs"] = std::move(inputs);
    }
    nodes.push_back(std::move(node));
  }
  json heads = json::array();
  for (const NodeEntry& e : symbol.outputs()) heads.push_back(entry(e));
  // One node a line: diffs of saved graphs stay readable.
  // Version 2 only where a version-1 reader would misread the graph (it
  // ignores "modes" and would flip the traced batch_norm modes).
  const int version = symbol.keeps_traced_modes() ? kSymbolJsonVersion : 1;
  std::string text = "{\"format\": \"loom-symbol\", \"version\": " + std::to_string(version) +
                     ",\n \"nodes\": [";
  for (std::size_t k = 0; k < nodes.size(); ++k) text += (k ? ",\n  " : "\n  ") + nodes[k].dump();
  text += "],\n \"heads\": " + heads.dump();
  if (symbol.keeps_traced_modes()) text += ",\n \"modes\": \"traced\"";
  text += "}\n";
  return text;
}

Symbol from_json(const std::string& text) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::exception& e) {
    LOOM_THROW(ErrorKind::kValue, "load_json: not valid JSON: ", e.what());
  }
  LOOM_CHECK(doc.is_object() && doc.value("format", "") == "loom-symbol",
             "load_json: not a loom symbol (no \"format\": \"loom-symbol\")");
  const json& version = field(doc, "version", "the document");
  LOOM_CHECK(version.is_number_integer() && version.get<int>() >= 1 && version.get<int>() <= kSymbolJsonVersion,
             "load_json: symbol format version ", version.dump(), " is not supported (this loom reads 1 to ",
             kSymbolJsonVersion, "); load it with a newer loom");
  const json& nodes = field(doc, "nodes", "the document");
  LOOM_CHECK(nodes.is_array(), "load_json: 'nodes' must be a list");
  std::vector<std::shared_ptr<const Node>> built;
  auto entry = [&](const json& j, const std::string& where) -> NodeEntry {
    if (j.is_null()) return NodeEntry{};
    LOOM_CHECK(j.is_array() && j.size() == 2 && j[0].is_number_unsigned() && j[1].is_number_unsigned(), "load_json: ",
               where, ": an input is [node, output] or null, got ", j.dump());
    const auto node = j[0].get<std::size_t>();
    const auto out = j[1].get<std::uint32_t>();
    LOOM_CHECK(node < built.size(), "load_json: ", where, " reads node ", node,
               ", which does not come before it (nodes are in topological order)");
    LOOM_CHECK(out < built[node]->num_outputs(), "load_json: ", where, " reads output ", out, " of node '",
               built[node]->name, "', which has ", built[node]->num_outputs());
    return NodeEntry{built[node], out};
  };
  for (std::size_t k = 0; k < nodes.size(); ++k) {
    const json& j = nodes[k];
    const std::string where = "node " + std::to_string(k);
    LOOM_CHECK(j.is_object(), "load_json: ", where, " is not an object");
    auto node = std::make_shared<Node>();
    const json& name = field(j, "name", where);
    LOOM_CHECK(name.is_string(), "load_json: ", where, ": 'name' must be a string");
    node->name = name.get<std::string>();
    const std::string here = where + " ('" + node->name + "')";
    const json& op = field(j, "op", here);
    if (op.is_null()) {
      if (j.contains("shape")) node->shape = j["shape"].get<Shape>();
      if (j.contains("dtype")) node->dtype = dtype_from_name(j["dtype"].get<std::string>());
    } else {
      LOOM_CHECK(op.is_string(), "load_json: ", here, ": 'op' must be a string or null");
      node->op = &schema_or_throw(op.get<std::string>());
      AttrMap attrs;
      for (const auto& [key, value] : field(j, "attrs", here).items()) attrs[key] = attr_from(value, here);
      node->attrs = complete_attrs(*node->op, attrs);
      const json& inputs = field(j, "inputs", here);
      LOOM_CHECK(inputs.is_array(), "load_json: ", here, ": 'inputs' must be a list");
      const int slots = node->op->num_array_slots();
      LOOM_CHECK(slots < 0 || static_cast<int>(inputs.size()) == slots, "load_json: ", here, ": ", node->op->name,
                 " takes ", slots, " array inputs, the node lists ", inputs.size());
      for (const json& in : inputs) {
        node->inputs.push_back(entry(in, here));
        const ArgSchema& arg = node->op->slot_arg(node->inputs.size() - 1);
        LOOM_CHECK(node->inputs.back().present() || arg.kind == ArgKind::kOptionalTensor, "load_json: ", here,
                   ": input '", arg.name, "' of ", node->op->name, " is required, the node lists null");
      }
    }
    built.push_back(std::move(node));
  }
  std::vector<NodeEntry> heads;
  for (const json& h : field(doc, "heads", "the document")) heads.push_back(entry(h, "heads"));
  Symbol loaded(std::move(heads));
  if (doc.contains("modes")) {
    LOOM_CHECK(doc["modes"] == "traced", "load_json: 'modes' must be \"traced\" when given, got ",
               doc["modes"].dump());
    loaded = loaded.with_traced_modes();
  }
  return loaded;
}

}  // namespace loom::graph
