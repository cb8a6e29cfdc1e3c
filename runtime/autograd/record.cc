#include "runtime/autograd/record.h"

#include "loom/ops/copy.h"
#include "microkernel/base/error.h"
#include "runtime/autograd/functions.h"
#include "runtime/autograd/grad_mode.h"

namespace loom::autograd {

Edge gradient_edge(const NDArray& a) {
  if (!requires_grad(a)) return {};
  const std::shared_ptr<Meta>& meta = a.autograd_meta();
  if (meta->grad_fn) {
    const std::uint64_t now = a.storage()->version();
    LOOM_CHECK_KIND(now == meta->version, ErrorKind::kRuntime, a.describe(), ", computed by ",
                    meta->grad_fn->name(), ", was overwritten after it was computed (by out=, an update, or an "
                    "in-place op on it or on an array sharing its memory: version ", meta->version, ", now ", now,
                    "), so its recorded history no longer describes its values and its gradient would be "
                    "wrong; write into a new array instead, or recompute it");
    return {meta->grad_fn, meta->output_nr};
  }
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
  meta->version = out.storage()->version();
  meta->is_view = node->has_input_storage(out.storage().get());
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

void check_inplace_recordable(std::string_view op, const NDArray& target) {
  const std::string plain(op.substr(0, op.size() - 1));
  const std::shared_ptr<Meta>& meta = target.autograd_meta();
  LOOM_CHECK_KIND(meta && meta->requires_grad(), ErrorKind::kValue, op, ": ", target.describe(),
                  " takes no part in autograd, so writing a differentiable result into it in place cannot be "
                  "recorded (its memory may be a view of another array); use the out-of-place op (", plain, ")");
  LOOM_CHECK_KIND(meta->grad_fn != nullptr, ErrorKind::kValue, op, ": ", target.describe(),
                  " is a leaf that requires grad (attach_grad); overwriting it in place while recording would lose "
                  "the values its gradient is taken at; use the out-of-place op (", plain,
                  ") or update it under autograd.pause() (as optimisers do)");
  LOOM_CHECK_KIND(!meta->is_view, ErrorKind::kValue, op, ": ", target.describe(), " is a view (computed by ",
                  meta->grad_fn->name(), ") sharing memory with another array; an in-place op on a view is not "
                  "recorded, since that array's history would not see it; use the out-of-place op (", plain, ")");
  gradient_edge(target);  // its own history must still be current
}

NDArray value_before_inplace(const NDArray& target, bool keep_values) {
  NDArray before = target.without_autograd();
  if (keep_values) {
    ModeScope not_recorded(false);
    before = op::copy(before);  // queued before the in-place write, so it holds the old values
  }
  // Its own Meta (target gets a new one when the node records it), holding
  // target's current history; history_checked() stamps its version after the write.
  before.set_autograd_meta(std::make_shared<Meta>(*target.autograd_meta()));
  return before;
}

void history_checked(NDArray& before) {
  before.autograd_meta()->version = before.storage()->version();
}

void rebased(NDArray& target) {
  // The node's inputs include target's own memory (its old value, or another
  // operand aliasing it), which set_outputs takes for a view; it is not one.
  target.autograd_meta()->is_view = false;
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
