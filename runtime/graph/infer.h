// Shape and dtype inference over a symbol.
//
// Every operator node is run in abstract evaluation (abstract_eval.h): its
// own argument checks and shape/dtype rules run on arrays without memory, so
// inference agrees with the imperative path by construction. Inference goes
// forward from the variables: a node whose inputs are all known gets its
// outputs' shapes and dtypes; the rest stay unknown (partial inference). A
// variable's dtype, when neither given nor declared, is float32 (MXNet's
// default). An operator that rejects its inputs raises its own message
// prefixed with the node's name and op.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "runtime/graph/graph.h"

namespace loom::graph {

struct ValueType {
  std::optional<Shape> shape;
  std::optional<DType> dtype;
};

struct InferResult {
  // In list_arguments(), list_outputs() and list_auxiliary_states() order.
  std::vector<ValueType> arguments, outputs, auxiliary_states;
  // Every node output, by node (for passes and executors).
  std::map<const Node*, std::vector<ValueType>> values;
  // The abstract arrays themselves (no memory), where known: a view shares
  // its input's storage here, which memory planning reads.
  std::map<const Node*, std::vector<NDArray>> arrays;
  bool complete = true;  // every output known
};

// `shapes` / `dtypes`: by variable name (arguments and auxiliary states);
// unknown names raise an error listing the variables.
InferResult infer(const Symbol& symbol, const std::map<std::string, Shape>& shapes,
                  const std::map<std::string, DType>& dtypes);

}  // namespace loom::graph
