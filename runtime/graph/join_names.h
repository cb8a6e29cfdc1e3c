// "a, b, c": how graph errors list names (arguments, attributes, outputs).
#pragma once

#include <string>
#include <vector>

namespace loom::graph {

inline std::string join_names(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace loom::graph
