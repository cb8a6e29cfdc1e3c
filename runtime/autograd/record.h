// What a differentiable operator does after computing its result: decide
// whether to record, wire a Node to its inputs, and make the result point at
// it. Generated operators (generated/ops/<op>.cc) and the hand-written
// differentiable functions (functions.cc) call these.
#pragma once

#include <initializer_list>
#include <memory>
#include <string_view>
#include <vector>

#include "runtime/autograd/grad_mode.h"
#include "runtime/autograd/node.h"

namespace loom::autograd {

// True when recording is on and some of `inputs` requires grad; then the
// operator records a Node. Cheap when recording is off (one thread-local read).
inline bool should_record(std::initializer_list<const NDArray*> inputs) {
  if (!is_recording()) return false;
  for (const NDArray* in : inputs) {
    if (requires_grad(*in)) return true;
  }
  return false;
}

// The edge a gradient for `a` must take: its grad_fn, or its leaf
// accumulator (made on first use); invalid when `a` requires no grad.
Edge gradient_edge(const NDArray& a);

// Wires `node` to every input (an invalid edge for those that require no grad)
// and records `outputs` as its outputs 0, 1, ...; each output then has the
// node as grad_fn.
void record_node(const std::shared_ptr<Node>& node, std::initializer_list<const NDArray*> inputs,
                 std::initializer_list<NDArray*> outputs);

// Makes `outputs` the node's outputs 0, 1, ...: each gets a fresh Meta with
// the node as grad_fn. Call after the node's inputs are added.
void set_outputs(const std::shared_ptr<Node>& node, std::initializer_list<NDArray*> outputs);
void set_outputs(const std::shared_ptr<Node>& node, std::vector<NDArray>& outputs);

// out= writes into an existing array, which cannot join the graph: refused
// (naming `op`) while recording with inputs that require grad.
void check_out_allowed(std::string_view op, std::initializer_list<const NDArray*> inputs);
void check_out_allowed(std::string_view op, const std::vector<NDArray>& inputs);

// An in-place variant (`op`, e.g. "add_") recorded while an input requires
// grad overwrites `target` and rebases its history (PyTorch's rule): the op's
// node takes target's old value and history as input, and target becomes
// its output. Allowed when target is a non-leaf that is not a view and whose
// history is current; a leaf that requires grad, an array outside autograd
// (it may be a view of one) or a view raise, naming `op`.
void check_inplace_recordable(std::string_view op, const NDArray& target);
// What the node records as target's old value: target itself (its history,
// its shape) or, when the backward needs its values (`keep_values`), a copy
// made before the write, carrying target's history.
NDArray value_before_inplace(const NDArray& target, bool keep_values);
// After the write: `before`'s history was checked by check_inplace_recordable
// before it (the write bumped the shared storage's version, not its history).
void history_checked(NDArray& before);
// After recording: target, now the node's output, is no view (checked before).
void rebased(NDArray& target);

// An update op (kernel.update, e.g. sgd_update) overwrites `arrays`: refused
// while recording if one requires grad (optimisers update under pause()).
void check_update_allowed(std::string_view op, std::initializer_list<const NDArray*> arrays);

// Creates a new leaf state on `a`, replacing any graph history it had
// (MXNet's attach_grad); the gradient buffer is zeros shaped like `a`.
void attach_grad(NDArray& a, GradReq req);

}  // namespace loom::autograd
