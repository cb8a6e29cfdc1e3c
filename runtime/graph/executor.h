// Runs a symbol on bound arrays: forward, and backward into gradient arrays.
//
// Each operator node is a call of the same C++ op the imperative API calls
// (through its schema), on the engine, asynchronously; so results equal the
// imperative path's bit for bit. forward(is_train=true) records the calls
// for autograd, and backward() runs the ops' generated backward functions,
// writing (grad_req write) or adding (add) each argument's gradient into the
// array bound for it. Operators with a `training` attribute (batch_norm)
// follow is_train, as MXNet's executors do.
//
// Memory planning, fusion and the other passes of docs/graph-passes.md work
// on the graph before an executor runs it.
#pragma once

#include <string>
#include <vector>

#include "runtime/autograd/node.h"
#include "runtime/graph/graph.h"
#include "runtime/graph/graph_program.h"

namespace loom::graph {

struct Binding {
  std::vector<NDArray> args;                   // list_arguments() order
  std::vector<NDArray> arg_grads;              // same order; undefined where grad_req is null
  std::vector<autograd::GradReq> grad_reqs;    // same order
  std::vector<NDArray> aux;                    // list_auxiliary_states() order
};

class Executor {
 public:
  Executor(Symbol symbol, Binding binding);

  const std::vector<NDArray>& forward(bool is_train);
  // `out_grads`: one per output, or empty for ones (a scalar loss).
  void backward(const std::vector<NDArray>& out_grads);

  const Symbol& symbol() const { return symbol_; }
  const std::vector<NDArray>& outputs() const { return outputs_; }
  const std::vector<NDArray>& args() const { return binding_.args; }
  const std::vector<NDArray>& arg_grads() const { return binding_.arg_grads; }
  const std::vector<NDArray>& aux() const { return binding_.aux; }
  const GraphProgram& program() const { return program_; }

 private:
  Symbol symbol_;
  Binding binding_;
  GraphProgram program_;
  // The program's inputs: each argument as an autograd leaf whose gradient
  // buffer is the bound gradient array, then the auxiliary states.
  std::vector<NDArray> inputs_;
  std::vector<NDArray> outputs_;
  bool recorded_ = false;
  bool any_grad_ = false;
};

}  // namespace loom::graph
