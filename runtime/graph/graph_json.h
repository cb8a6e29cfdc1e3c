// A symbol as JSON text, and back.
//
// Format (version 1), stable across releases: newer loom reads every older
// version, and refuses a newer one by name.
//   {"format": "loom-symbol", "version": 1,
//    "nodes": [{"name": "x", "op": null, "shape": [2, 3], "dtype": "float32"},
//              {"name": "relu0", "op": "relu", "attrs": {}, "inputs": [[0, 0]]}],
//    "heads": [[1, 0]]}
// Nodes come in topological order; an input is [node index, output index],
// or null for an absent optional array. Attributes hold every value (the
// defaults too), so a graph means the same after a default changes.
#pragma once

#include <string>

#include "runtime/graph/graph.h"

namespace loom::graph {

inline constexpr int kSymbolJsonVersion = 2;  // 2: "modes" (graph.h); graphs without it still write 1

std::string to_json(const Symbol& symbol);
// Throws a kValue error naming what is malformed (node index, field).
Symbol from_json(const std::string& text);

}  // namespace loom::graph
