#include "runtime/graph/executor.h"

#include <memory>

#include "microkernel/base/error.h"
#include "runtime/autograd/backward.h"
#include "runtime/autograd/grad_mode.h"

namespace loom::graph {
namespace {

void check_bound(const std::string& what, const std::vector<const Node*>& vars, const std::vector<NDArray>& arrays) {
  LOOM_CHECK(arrays.size() == vars.size(), "bind: the symbol has ", vars.size(), " ", what, ", got ", arrays.size(),
             " arrays");
  for (std::size_t k = 0; k < vars.size(); ++k) {
    const Node* v = vars[k];
    LOOM_CHECK(arrays[k].defined(), "bind: no array for ", what, " '", v->name, "'");
    LOOM_CHECK(!v->shape || *v->shape == arrays[k].shape(), "bind: ", what, " '", v->name, "' is declared with shape ",
               shape_str(*v->shape), ", bound to ", arrays[k].describe());
    LOOM_CHECK_KIND(!v->dtype || *v->dtype == arrays[k].dtype(), ErrorKind::kType, "bind: ", what, " '", v->name,
                    "' is declared as ", dtype_name(*v->dtype), ", bound to ", arrays[k].describe());
  }
}

}  // namespace

namespace {

std::vector<const Node*> concat(std::vector<const Node*> a, const std::vector<const Node*>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace

Executor::Executor(Symbol symbol, Binding binding)
    : symbol_(std::move(symbol)),
      binding_(std::move(binding)),
      program_(symbol_, concat(symbol_.arguments(), symbol_.auxiliary_states())) {
  const auto args = symbol_.arguments();
  const auto aux = symbol_.auxiliary_states();
  check_bound("arguments", args, binding_.args);
  check_bound("auxiliary states", aux, binding_.aux);
  if (binding_.grad_reqs.empty()) binding_.grad_reqs.assign(args.size(), autograd::GradReq::kNull);
  if (binding_.arg_grads.empty()) binding_.arg_grads.resize(args.size());
  LOOM_CHECK(binding_.grad_reqs.size() == args.size() && binding_.arg_grads.size() == args.size(),
             "bind: one grad_req and one gradient array per argument (", args.size(), ")");
  for (std::size_t k = 0; k < args.size(); ++k) {
    NDArray value = binding_.args[k].without_autograd();
    const autograd::GradReq req = binding_.grad_reqs[k];
    if (req != autograd::GradReq::kNull) {
      const NDArray& g = binding_.arg_grads[k];
      LOOM_CHECK(g.defined(), "bind: argument '", args[k]->name, "' has grad_req ",
                 req == autograd::GradReq::kAdd ? "add" : "write", " but no gradient array");
      LOOM_CHECK(g.shape() == value.shape() && g.dtype() == value.dtype() && g.device() == value.device(),
                 "bind: the gradient array of '", args[k]->name, "' is ", g.describe(), ", the argument is ",
                 value.describe());
      LOOM_CHECK_KIND(is_floating(value.dtype()), ErrorKind::kType, "bind: argument '", args[k]->name, "' is ",
                      value.describe(), "; only floating-point arguments take gradients (grad_req 'null')");
      auto meta = std::make_shared<autograd::Meta>();
      meta->grad_req = req;
      meta->grad = g;
      value.set_autograd_meta(std::move(meta));
      any_grad_ = true;
    }
    inputs_.push_back(std::move(value));
  }
  for (const NDArray& a : binding_.aux) inputs_.push_back(a.without_autograd());
}

const std::vector<NDArray>& Executor::forward(bool is_train) {
  const bool record = is_train && any_grad_;
  autograd::ModeScope mode(record, is_train);
  outputs_ = program_.run(inputs_, is_train);
  recorded_ = record;
  return outputs_;
}

void Executor::backward(const std::vector<NDArray>& out_grads) {
  LOOM_CHECK(any_grad_, "backward: no argument takes a gradient (grad_req is 'null' for all of them)");
  LOOM_CHECK(recorded_, "backward: run forward(is_train=True) first (each forward's record serves one backward)");
  LOOM_CHECK(out_grads.empty() || out_grads.size() == outputs_.size(), "backward: ", outputs_.size(),
             " outputs but ", out_grads.size(), " output gradients");
  std::vector<NDArray> heads, head_grads;
  for (std::size_t k = 0; k < outputs_.size(); ++k) {
    // Outputs that do not depend on an argument with a gradient (a label's
    // argmax) take no part.
    if (!autograd::requires_grad(outputs_[k])) continue;
    heads.push_back(outputs_[k]);
    head_grads.push_back(out_grads.empty() ? NDArray() : out_grads[k]);
  }
  recorded_ = false;
  if (heads.empty()) return;
  autograd::backward(heads, head_grads, autograd::BackwardOptions{});
}

}  // namespace loom::graph
