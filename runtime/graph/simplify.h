// Graph simplification passes, each a function from a symbol to an
// equivalent one.
//
// Dead code needs no pass: a symbol is the closure of its outputs, so a node
// nothing reads is not in it (tracing drops every call whose result the
// traced function threw away).
#pragma once

#include <map>
#include <string>

#include "runtime/graph/graph.h"

namespace loom::graph {

// Common-subexpression elimination: nodes with the same operator,
// attributes and inputs become one. Nodes of ops that update an argument in
// place (batch_norm's running statistics) are kept apart: each call updates.
Symbol eliminate_common_subexpressions(const Symbol& symbol);

// Constant folding: every node whose inputs are all known (`constants`, by
// variable name, or nodes folded before) and that is not itself an output
// runs once, now, and becomes a variable holding its value (_folded0, ...,
// added to `constants`). Ops that update an argument are not folded.
Symbol fold_constants(const Symbol& symbol, std::map<std::string, NDArray>& constants);

}  // namespace loom::graph
