#include "runtime/graph/op_schema.h"

#include <algorithm>
#include <map>
#include <memory>

#include "microkernel/base/error.h"
#include "runtime/graph/join_names.h"

namespace loom::graph {
namespace {

// Filled by static initialisers before main (or during dlopen), read-only afterwards.
std::map<std::string, std::unique_ptr<OpSchema>>& table() {
  static std::map<std::string, std::unique_ptr<OpSchema>> schemas;
  return schemas;
}


}  // namespace

const NDArray& OpCall::tensor(std::size_t slot) const {
  static const NDArray kAbsent;
  return slot < inputs_.size() ? inputs_[slot] : kAbsent;
}

const AttrValue& OpCall::attr(const char* name) const {
  auto it = attrs_.find(name);
  LOOM_CHECK(it != attrs_.end(), schema_.name, ": attribute '", name, "' missing from the node");
  return it->second;
}

std::int64_t OpCall::int_attr(const char* name) const { return std::get<std::int64_t>(attr(name)); }
double OpCall::float_attr(const char* name) const { return std::get<double>(attr(name)); }
bool OpCall::bool_attr(const char* name) const { return std::get<bool>(attr(name)); }

std::optional<std::vector<std::int64_t>> OpCall::dims_attr(const char* name) const {
  const AttrValue& v = attr(name);
  if (std::holds_alternative<std::monostate>(v)) return std::nullopt;
  return std::get<std::vector<std::int64_t>>(v);
}

DType OpCall::dtype_attr(const char* name) const {
  const std::int64_t code = int_attr(name);
  LOOM_CHECK(code >= 0 && code < kNumDTypes, schema_.name, ": ", name, " is ", code,
             ", which is not a dtype's enum value (0 to ", kNumDTypes - 1, ")");
  return static_cast<DType>(code);
}

Device OpCall::device_attr(const char* name) const {
  const std::optional<std::vector<std::int64_t>> v = dims_attr(name);
  if (!v) return Device::cpu();  // None: the CPU, as the op's default
  LOOM_CHECK(v->size() == 2 && ((*v)[0] == 0 || (*v)[0] == 1) && (*v)[1] >= 0, schema_.name, ": ", name,
             " must be [device type (0 CPU, 1 GPU), device number], got ", v->size(), " values");
  return Device{static_cast<DeviceType>((*v)[0]), static_cast<int>((*v)[1])};
}

std::size_t OpSchema::num_outputs(const AttrMap& attrs) const {
  if (!has_output_list()) return outputs.size();
  auto it = attrs.find(output_count_attr);
  // an int (split's num_outputs) or an int[] whose length counts (split_with_sizes' sizes)
  const auto* list = it == attrs.end() ? nullptr : std::get_if<std::vector<std::int64_t>>(&it->second);
  const std::int64_t* count = it == attrs.end() ? nullptr : std::get_if<std::int64_t>(&it->second);
  LOOM_CHECK_KIND(list != nullptr || count != nullptr, ErrorKind::kType, name, ": ", output_count_attr,
                  " is required (it says how many outputs the node has)");
  const std::int64_t n = list != nullptr ? static_cast<std::int64_t>(list->size()) : *count;
  LOOM_CHECK(n >= 1 && n <= kMaxOutputs, name, ": ", list != nullptr ? "len(" + output_count_attr + ")" : output_count_attr,
             " must be in [1, ", kMaxOutputs, "], got ", n);
  return static_cast<std::size_t>(n);
}

std::vector<int> OpSchema::visible_outputs(const AttrMap& attrs) const {
  if (!visible.empty() && !has_output_list()) return visible;
  std::vector<int> all(num_outputs(attrs));
  for (std::size_t k = 0; k < all.size(); ++k) all[k] = static_cast<int>(k);
  return all;
}

std::string OpSchema::output_label(std::size_t k) const {
  if (has_output_list()) return outputs.at(0) + std::to_string(k);
  return outputs.at(k);
}

bool OpSchema::is_list_op() const {
  return std::any_of(args.begin(), args.end(), [](const ArgSchema& a) { return a.kind == ArgKind::kTensorList; });
}

int OpSchema::num_array_slots() const {
  if (is_list_op()) return -1;
  return static_cast<int>(std::count_if(args.begin(), args.end(), [](const ArgSchema& a) {
    return a.kind == ArgKind::kTensor || a.kind == ArgKind::kOptionalTensor;
  }));
}

const ArgSchema* OpSchema::find_arg(const std::string& arg) const {
  for (const ArgSchema& a : args) {
    if (a.name == arg) return &a;
  }
  return nullptr;
}

const ArgSchema& OpSchema::slot_arg(std::size_t slot) const {
  std::size_t k = 0;
  for (const ArgSchema& a : args) {
    if (a.kind == ArgKind::kTensorList) return a;
    if (a.kind == ArgKind::kAttr) continue;
    if (k++ == slot) return a;
  }
  LOOM_THROW(ErrorKind::kIndex, name, ": no array slot ", slot);
}

std::vector<std::string> OpSchema::attr_names() const {
  std::vector<std::string> names;
  for (const ArgSchema& a : args) {
    if (a.kind == ArgKind::kAttr) names.push_back(a.name);
  }
  return names;
}

bool register_schema(OpSchema schema) {
  std::string name = schema.name;
  table()[name] = std::make_unique<OpSchema>(std::move(schema));
  return true;
}

const OpSchema* find_schema(const std::string& name) {
  auto it = table().find(name);
  return it == table().end() ? nullptr : it->second.get();
}

const OpSchema& schema_or_throw(const std::string& name) {
  if (const OpSchema* s = find_schema(name)) return *s;
  std::vector<std::string> near;
  for (const auto& [other, _] : table()) {
    if (other.find(name) != std::string::npos || name.find(other) != std::string::npos) near.push_back(other);
  }
  LOOM_THROW(ErrorKind::kValue, "unknown operator '", name, "'",
             near.empty() ? std::string(" (loom.sym lists the operators)") : " (did you mean: " + join_names(near) + "?)");
}

std::vector<const OpSchema*> all_schemas() {
  std::vector<const OpSchema*> out;
  for (const auto& [_, s] : table()) out.push_back(s.get());
  return out;
}

AttrMap complete_attrs(const OpSchema& schema, const AttrMap& given) {
  AttrMap out;
  for (const auto& [name, value] : given) {
    const ArgSchema* arg = schema.find_arg(name);
    LOOM_CHECK_KIND(arg != nullptr && arg->kind == ArgKind::kAttr, ErrorKind::kType, schema.name,
                    ": unknown attribute '", name, "' (its attributes: ", join_names(schema.attr_names()), ")");
    out[name] = coerce_attr(value, arg->attr_type, schema.name, name);
  }
  for (const ArgSchema& a : schema.args) {
    if (a.kind != ArgKind::kAttr || out.count(a.name)) continue;
    LOOM_CHECK_KIND(a.has_default, ErrorKind::kType, schema.name, ": attribute '", a.name, "' (",
                    attr_type_name(a.attr_type), ") is required");
    out[a.name] = a.default_value;
  }
  return out;
}

std::vector<NDArray> invoke(const OpSchema& schema, std::span<const NDArray> inputs, const AttrMap& attrs) {
  const int slots = schema.num_array_slots();
  LOOM_CHECK(slots < 0 || static_cast<int>(inputs.size()) == slots, schema.name, ": expects ", slots,
             " array slots, got ", inputs.size());
  return schema.invoke(OpCall(schema, inputs, attrs));
}

}  // namespace loom::graph
