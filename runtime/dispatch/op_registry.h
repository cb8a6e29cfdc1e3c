// The table of operators linked into this library. Each generated
// generated/ops/<op>.cc registers itself at load time; tools, tests and the
// Python package read the table to know what exists.
//
// Contract: register_op is called only from static initialisers (before
// main or during dlopen); registered_ops() may be called from any thread
// after that. The table is never modified afterwards.
#pragma once

#include <string>
#include <vector>

namespace loom {

struct OpInfo {
  std::string name;
  std::string source;              // "opdefs/elementwise/relu.yaml:1"
  std::vector<std::string> args;
  std::vector<std::string> dtypes; // declared in the YAML
  std::vector<std::string> tags;
  bool cuda = false;               // a CUDA kernel is compiled in
  std::vector<std::string> python_operators;  // NDArray dunders it implements (python.operators)
  std::vector<std::string> variants;          // function, out, inplace, method (YAML `variants`)
};

// Returns true so it can initialise a namespace-scope constant.
bool register_op(OpInfo info);
// Sorted by name.
std::vector<OpInfo> registered_ops();
// nullptr when no such operator is linked in.
const OpInfo* find_op(const std::string& name);

}  // namespace loom
