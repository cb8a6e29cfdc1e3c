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

// Epilogue folding: a node whose only input is another node's first output
// folds into that producer when the producer's op absorbs it (YAML
// `absorbs`: batch_norm takes in relu by setting relu=true). Only when
// nothing else reads any output of the producer, no output of it is a head,
// and the attributes to set are not set already, so each producer still
// runs once (it may update an argument in place) and what a caller sees is
// unchanged. The folded node keeps the producer's name.
Symbol fold_epilogues(const Symbol& symbol);

}  // namespace loom::graph
