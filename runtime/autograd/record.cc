#include "runtime/autograd/record.h"

#include "microkernel/base/error.h"
#include "runtime/autograd/functions.h"

namespace loom::autograd {

Edge gradient_edge(const NDArray& a) {
  if (!requires_grad(a)) return {};
  const std::shared_ptr<Meta>& meta = a.autograd_meta();
  if (meta->grad_fn) return {meta->grad_fn, meta->output_nr};
  std::shared_ptr<Node> acc = meta->accumulator.lock();
  if (!acc) {
    acc = std::make_shared<AccumulateGrad>(meta, a);
    meta->accumulator = acc;
  }
  return {acc, 0};
}

void record_node(const std::shared_ptr<Node>& node, std::initializer_list<const NDArray*> inputs,
                 std::initializer_list<NDArray*> outputs) {
  for (const NDArray* in : inputs) node->add_input(*in, gradient_edge(*in));
  set_outputs(node, outputs);
}

namespace {
void set_output(const std::shared_ptr<Node>& node, NDArray& out, std::uint32_t nr) {
  node->add_output(out);
  auto meta = std::make_shared<Meta>();
  meta->grad_fn = node;
  meta->output_nr = nr;
  out.set_autograd_meta(std::move(meta));
}
}  // namespace

void set_outputs(const std::shared_ptr<Node>& node, std::initializer_list<NDArray*> outputs) {
  std::uint32_t nr = 0;
  for (NDArray* out : outputs) set_output(node, *out, nr++);
}

void set_outputs(const std::shared_ptr<Node>& node, std::vector<NDArray>& outputs) {
  std::uint32_t nr = 0;
  for (NDArray& out : outputs) set_output(node, out, nr++);
}

namespace {

[[noreturn]] void throw_out_while_recording(std::string_view op) {
  LOOM_THROW(ErrorKind::kValue, op, ": out= cannot be used while autograd is recording and an "
             "input requires grad (the result would not be differentiable); drop out= or compute "
             "under autograd.pause()");
}

}  // namespace

void check_out_allowed(std::string_view op, std::initializer_list<const NDArray*> inputs) {
  if (should_record(inputs)) throw_out_while_recording(op);
}

void check_out_allowed(std::string_view op, const std::vector<NDArray>& inputs) {
  if (!is_recording()) return;
  for (const NDArray& in : inputs) {
    if (requires_grad(in)) throw_out_while_recording(op);
  }
}

void check_update_allowed(std::string_view op, std::initializer_list<const NDArray*> arrays) {
  if (!should_record(arrays)) return;
  LOOM_THROW(ErrorKind::kValue, op, ": cannot update arrays that require grad while autograd is recording "
             "(the graph may have saved them); update after backward, or under autograd.pause()");
}

void check_inplace_allowed(std::string_view op, std::initializer_list<const NDArray*> inputs) {
  if (!should_record(inputs)) return;
  LOOM_THROW(ErrorKind::kValue, op, ": an in-place update cannot be recorded while an input requires "
             "grad; use the out-of-place op (", op.substr(0, op.size() - 1), ") or update under "
             "autograd.pause() (as optimisers do)");
}

void attach_grad(NDArray& a, GradReq req) {
  LOOM_CHECK(a.defined(), "attach_grad: undefined NDArray");
  LOOM_CHECK_KIND(req == GradReq::kNull || is_floating(a.dtype()), ErrorKind::kType,
                  "attach_grad: only floating-point arrays have gradients, got ", a.describe());
  auto meta = std::make_shared<Meta>();
  meta->grad_req = req;
  if (req != GradReq::kNull) meta->grad = zeros(a.shape(), a.dtype(), a.device());
  a.set_autograd_meta(std::move(meta));
}

}  // namespace loom::autograd
