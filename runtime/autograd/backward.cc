#include "runtime/autograd/backward.h"

#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "loom/ops/add.h"
#include "microkernel/base/error.h"
#include "runtime/autograd/functions.h"
#include "runtime/autograd/grad_mode.h"
#include "runtime/autograd/record.h"

namespace loom::autograd {
namespace {

// Gradients arriving at one node, one slot per forward output, summed.
using InputBuffer = std::vector<NDArray>;

void accumulate(InputBuffer& buffer, std::size_t slot, NDArray grad) {
  if (buffer.size() <= slot) buffer.resize(slot + 1);
  NDArray& s = buffer[slot];
  s = s.defined() ? op::add(s, grad) : std::move(grad);
}

// Makes `grad` (from `node`'s result `i`) fit the input it is for.
NDArray fit_gradient(const Node& node, std::size_t i, NDArray grad) {
  const TensorMeta& want = node.input_meta().at(i);
  LOOM_CHECK(grad.device() == want.device, node.name(), ": the gradient for input ", i, " is on ",
             grad.device().str(), " but the input is on ", want.device.str());
  if (grad.shape() != want.shape) {
    const Shape merged = broadcast_shapes(node.name(), grad.shape(), want.shape);
    LOOM_CHECK(merged == grad.shape(), node.name(), ": the gradient for input ", i, " has shape ",
               shape_str(grad.shape()), ", which does not reduce to the input's shape ",
               shape_str(want.shape));
    grad = sum_to(grad, want.shape);
  }
  return astype(grad, want.dtype);
}

// The allocations of this thread's running backward pass that no leaf may
// take over (see claim_gradient_storage): the caller's head gradients, then
// every one a leaf has taken. Nested passes (a checkpoint's recompute) keep
// their own.
thread_local std::unordered_set<const Storage*>* g_unclaimable = nullptr;

class ClaimScope {
 public:
  ClaimScope() : outer_(g_unclaimable) { g_unclaimable = &taken_; }
  ~ClaimScope() { g_unclaimable = outer_; }
  ClaimScope(const ClaimScope&) = delete;
  ClaimScope& operator=(const ClaimScope&) = delete;
  void keep_out(const NDArray& a) {
    if (a.defined() && a.storage()) taken_.insert(a.storage().get());
  }

 private:
  std::unordered_set<const Storage*> taken_;
  std::unordered_set<const Storage*>* outer_;
};

struct ByLatest {
  bool operator()(const Node* a, const Node* b) const { return a->sequence_nr() < b->sequence_nr(); }
};

}  // namespace

std::vector<NDArray> backward(const std::vector<NDArray>& heads, const std::vector<NDArray>& head_grads,
                              const BackwardOptions& options) {
  LOOM_CHECK(!heads.empty(), "backward: no output arrays given");
  LOOM_CHECK(head_grads.empty() || head_grads.size() == heads.size(), "backward: ", heads.size(),
             " outputs but ", head_grads.size(), " head gradients");
  ModeScope mode(options.create_graph);
  ClaimScope claims;
  for (const NDArray& g : head_grads) claims.keep_out(g);

  // The roots: each head's gradient, put where the head's own gradient goes.
  std::unordered_map<Node*, InputBuffer> buffers;
  std::vector<std::shared_ptr<Node>> roots;
  for (std::size_t h = 0; h < heads.size(); ++h) {
    const NDArray& head = heads[h];
    LOOM_CHECK(head.defined(), "backward: output ", h, " is an undefined NDArray");
    LOOM_CHECK(requires_grad(head), "backward: output ", h, " (", head.describe(),
               ") does not require grad: it was computed outside autograd.record() or from "
               "arrays without attach_grad()");
    NDArray g = head_grads.empty() || !head_grads[h].defined() ? full(head.shape(), 1.0, head.dtype(), head.device())
                                                                : head_grads[h];
    claims.keep_out(head);  // a head passed back as its own gradient (y.backward(y)) stays the caller's
    LOOM_CHECK(g.shape() == head.shape(), "backward: the gradient for output ", h, " has shape ",
               shape_str(g.shape()), " but the output has shape ", shape_str(head.shape()));
    const Edge edge = gradient_edge(head);
    accumulate(buffers[edge.node.get()], edge.input_nr, astype(g, head.dtype()));
    roots.push_back(edge.node);
  }

  // Capture targets for inputs=...: (node, slot) whose incoming gradient is returned.
  std::unordered_map<Node*, std::vector<std::pair<std::size_t, std::uint32_t>>> targets;
  std::vector<NDArray> captured(options.inputs.size());
  for (std::size_t i = 0; i < options.inputs.size(); ++i) {
    const NDArray& in = options.inputs[i];
    LOOM_CHECK(requires_grad(in), "grad: variable ", i, " (", in.describe(),
               ") does not require grad: call attach_grad() on it before recording");
    const auto& meta = in.autograd_meta();
    Node* node = meta->grad_fn ? meta->grad_fn.get() : meta->accumulator.lock().get();
    if (node != nullptr) targets[node].emplace_back(i, meta->grad_fn ? meta->output_nr : 0);
  }
  const bool capture = !options.inputs.empty();

  // Which nodes run: all reachable ones, or with capture only those from
  // which a target is reachable. Iterative post-order DFS.
  std::unordered_map<Node*, bool> needed;
  {
    std::vector<std::pair<Node*, std::size_t>> stack;
    for (const auto& r : roots) {
      if (needed.count(r.get())) continue;
      needed[r.get()] = false;
      stack.emplace_back(r.get(), 0);
      while (!stack.empty()) {
        auto& [node, next] = stack.back();
        if (next < node->next_edges().size()) {
          Node* child = node->next_edges()[next++].node.get();
          if (child != nullptr && !needed.count(child)) {
            needed[child] = false;
            stack.emplace_back(child, 0);
          }
          continue;
        }
        bool need = !capture || targets.count(node);
        for (const Edge& e : node->next_edges()) need |= e.valid() && needed[e.node.get()];
        needed[node] = need;
        stack.pop_back();
      }
    }
  }
  std::unordered_map<Node*, int> dependencies;
  for (const auto& [node, need] : needed) {
    if (!need) continue;
    for (const Edge& e : node->next_edges()) {
      if (e.valid() && needed[e.node.get()]) ++dependencies[e.node.get()];
    }
  }

  std::priority_queue<Node*, std::vector<Node*>, ByLatest> ready;
  std::unordered_set<Node*> queued;
  for (const auto& r : roots) {
    if (needed[r.get()] && dependencies[r.get()] == 0 && queued.insert(r.get()).second) ready.push(r.get());
  }
  while (!ready.empty()) {
    Node* node = ready.top();
    ready.pop();
    InputBuffer grads = std::move(buffers[node]);
    buffers.erase(node);
    grads.resize(node->output_meta().size());
    for (std::size_t i = 0; i < grads.size(); ++i) {
      if (!grads[i].defined()) {
        const TensorMeta& m = node->output_meta()[i];
        grads[i] = zeros(m.shape, m.dtype, m.device);
      }
    }
    if (auto t = targets.find(node); t != targets.end()) {
      for (auto [index, slot] : t->second) captured[index] = grads.at(slot);
    }
    bool run = !capture;
    for (const Edge& e : node->next_edges()) run |= e.valid() && needed[e.node.get()];
    if (!run) continue;
    LOOM_CHECK_KIND(!node->released(), ErrorKind::kRuntime, "backward: ", node->name(),
                    " was already run by an earlier backward pass that freed its saved arrays; "
                    "pass retain_graph=True to that backward() to run backward through the graph again");
    std::vector<NDArray> results = node->apply(grads);
    if (!options.retain_graph && node->single_use()) {
      node->release_saved();
      node->mark_released();
    }
    const auto& edges = node->next_edges();
    for (std::size_t i = 0; i < edges.size(); ++i) {
      const Edge& e = edges[i];
      if (!e.valid() || !needed[e.node.get()]) continue;
      if (i < results.size() && results[i].defined()) {
        accumulate(buffers[e.node.get()], e.input_nr, fit_gradient(*node, i, std::move(results[i])));
      }
      if (--dependencies[e.node.get()] == 0) ready.push(e.node.get());
    }
  }
  return captured;
}

bool claim_gradient_storage(const NDArray& grad) {
  if (g_unclaimable == nullptr || !grad.defined() || !grad.storage()) return false;
  const Storage* s = grad.storage().get();
  // Held by this one handle only: not an array the caller, a custom
  // Function's saved tensors or another gradient still refer to (a queued
  // op holding it also says no, which only costs the copy).
  const bool sole = grad.storage().use_count() == 1;
  const bool whole = !s->is_abstract() && grad.is_contiguous() && grad.offset() == 0 && s->bytes() == grad.nbytes();
  return sole && whole && g_unclaimable->insert(s).second;
}

}  // namespace loom::autograd
