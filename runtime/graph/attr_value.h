// An operator attribute's value as a graph node stores it.
//
// The op DSL has four attribute types (opdefs: int, float, bool, int[]), and
// an int[] may be None (every dim), so a value is one of those or None. Nodes
// keep them in a sorted map: JSON comes out in a stable order, and two nodes
// with equal attributes compare equal (common-subexpression elimination).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace loom::graph {

using AttrValue = std::variant<std::monostate, std::int64_t, double, bool, std::vector<std::int64_t>>;
using AttrMap = std::map<std::string, AttrValue, std::less<>>;  // transparent: find(const char*) makes no string

// The attribute types of opdefs/, by their YAML names.
enum class AttrType { kInt, kFloat, kBool, kIntList };

const char* attr_type_name(AttrType type);

// Python-like text: None, 3, 0.5, True, [1, 2]. For messages and docs.
std::string attr_to_string(const AttrValue& value);

// Converts `value` to `type` where that loses nothing (an int for a float, an
// int for a one-element int[], a whole float for an int); throws a kType
// error naming `op` and `attr` otherwise. None stays None only for int[].
AttrValue coerce_attr(const AttrValue& value, AttrType type, const std::string& op, const std::string& attr);

}  // namespace loom::graph
