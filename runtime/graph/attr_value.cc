#include "runtime/graph/attr_value.h"

#include <cmath>
#include <sstream>

#include "microkernel/base/error.h"

namespace loom::graph {

const char* attr_type_name(AttrType type) {
  switch (type) {
    case AttrType::kInt: return "int";
    case AttrType::kFloat: return "float";
    case AttrType::kBool: return "bool";
    case AttrType::kIntList: return "int[]";
  }
  return "?";
}

std::string attr_to_string(const AttrValue& value) {
  std::ostringstream out;
  if (std::holds_alternative<std::monostate>(value)) {
    out << "None";
  } else if (const auto* i = std::get_if<std::int64_t>(&value)) {
    out << *i;
  } else if (const auto* d = std::get_if<double>(&value)) {
    out.precision(17);
    out << *d;
  } else if (const auto* b = std::get_if<bool>(&value)) {
    out << (*b ? "True" : "False");
  } else {
    out << '[';
    const auto& list = std::get<std::vector<std::int64_t>>(value);
    for (std::size_t k = 0; k < list.size(); ++k) out << (k ? ", " : "") << list[k];
    out << ']';
  }
  return out.str();
}

AttrValue coerce_attr(const AttrValue& value, AttrType type, const std::string& op, const std::string& attr) {
  auto fail = [&]() -> AttrValue {
    LOOM_THROW(ErrorKind::kType, op, ": attribute '", attr, "' expects ", attr_type_name(type), ", got ",
               attr_to_string(value));
  };
  switch (type) {
    case AttrType::kInt:
      if (std::holds_alternative<std::int64_t>(value)) return value;
      if (const auto* d = std::get_if<double>(&value)) {
        if (std::nearbyint(*d) == *d && std::abs(*d) < 9.0e15) return static_cast<std::int64_t>(*d);
      }
      return fail();
    case AttrType::kFloat:
      if (std::holds_alternative<double>(value)) return value;
      if (const auto* i = std::get_if<std::int64_t>(&value)) return static_cast<double>(*i);
      return fail();
    case AttrType::kBool:
      if (std::holds_alternative<bool>(value)) return value;
      if (const auto* i = std::get_if<std::int64_t>(&value); i != nullptr && (*i == 0 || *i == 1)) return *i == 1;
      return fail();
    case AttrType::kIntList:
      if (std::holds_alternative<std::monostate>(value) || std::holds_alternative<std::vector<std::int64_t>>(value)) {
        return value;
      }
      if (const auto* i = std::get_if<std::int64_t>(&value)) return std::vector<std::int64_t>{*i};
      return fail();
  }
  return fail();
}

}  // namespace loom::graph
