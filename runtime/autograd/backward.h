// The backward pass: runs the recorded graph from some outputs ("heads") back
// to the leaves.
//
//   backward({loss}, {}, {})                 -> gradients land in leaves' grad
//   backward({y}, {}, {.inputs = {x}})       -> returns dy/dx, touches no grad
//
// Nodes run in reverse creation order once every gradient flowing into them
// has arrived (summed). Each node's results are reduced to its input's shape
// (sum_to, for broadcasting) and cast to its dtype here, once, instead of in
// every gradient formula. Runs on the calling thread; the operators it calls
// are the same ones the forward pass used.
#pragma once

#include <vector>

#include "runtime/ndarray/ndarray.h"

namespace loom::autograd {

struct BackwardOptions {
  // Keep saved tensors so the graph can be run backward again.
  bool retain_graph = false;
  // Record the backward pass itself, so the gradients are differentiable
  // (gradients of gradients). Implies nothing about retain_graph.
  bool create_graph = false;
  // Non-empty: return the gradients of these arrays (in order; undefined for
  // ones the heads do not depend on) and leave every leaf's grad untouched.
  std::vector<NDArray> inputs;
};

// `head_grads` is empty or has one entry per head; an undefined entry (or an
// empty list) means ones shaped like the head. Throws when a head does not
// require grad, a head gradient has the wrong shape, or a node is run a
// second time after its saved tensors were freed.
std::vector<NDArray> backward(const std::vector<NDArray>& heads, const std::vector<NDArray>& head_grads,
                              const BackwardOptions& options);

// While backward() runs on this thread: whether a leaf may keep the gradient
// array `grad` as its .grad instead of copying it into its old buffer.
// Only an allocation `grad` alone holds (nothing else can see it change),
// whole and dense (no view of a larger one), once per allocation, and
// never the head gradients the caller passed in, which stay the caller's.
// Outside backward(): false.
bool claim_gradient_storage(const NDArray& grad);

}  // namespace loom::autograd
