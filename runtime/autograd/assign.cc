#include "runtime/autograd/assign.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "loom/ops/copy.h"
#include "loom/ops/sub.h"
#include "microkernel/base/error.h"
#include "runtime/autograd/grad_mode.h"
#include "runtime/autograd/record.h"

namespace loom::autograd {
namespace {

// d(x[index] = v): the gradient of x's old value is grad with the selection
// zeroed (those elements were overwritten); v's is the selection (the
// backward engine sums it to v's shape and casts it to v's dtype). Both are
// made of differentiable functions, so gradients of gradients work.
class AssignBackward final : public Node {
 public:
  AssignBackward(BasicIndex index, Shape value_shape) : index_(std::move(index)), value_shape_(std::move(value_shape)) {}
  std::string name() const override { return "AssignBackward"; }

  std::vector<NDArray> apply(std::vector<NDArray>& grads) override {
    const NDArray& g = grads.at(0);
    std::vector<NDArray> out(2);
    const NDArray selected = index_view(g, index_);
    if (needs_input_grad(0)) out[0] = op::sub(g, index_scatter(selected, g.shape(), index_));
    if (needs_input_grad(1)) {
      // A value with extra leading 1s (NumPy drops them to fit): put them back.
      out[1] = value_shape_.size() > selected.shape().size() ? reshape(selected, value_shape_) : selected;
    }
    return out;
  }

 private:
  BasicIndex index_;
  Shape value_shape_;
};

bool broadcasts_to(const Shape& from, const Shape& to) {
  if (from.size() > to.size()) return false;
  for (std::size_t i = 1; i <= from.size(); ++i) {
    const std::int64_t f = from[from.size() - i], t = to[to.size() - i];
    if (f != t && f != 1) return false;
  }
  return true;
}

void check_recordable(NDArray& x) {
  const std::shared_ptr<Meta>& meta = x.autograd_meta();
  if (meta && meta->requires_grad()) {
    LOOM_CHECK_KIND(meta->grad_fn != nullptr, ErrorKind::kValue, "__setitem__: ", x.describe(),
                    " is a leaf that requires grad (attach_grad); assigning into it while recording would lose "
                    "the values its gradient is taken at; assign into a copy, or under autograd.pause()");
    LOOM_CHECK_KIND(!meta->is_view, ErrorKind::kValue, "__setitem__: ", x.describe(), " is a view (computed by ",
                    meta->grad_fn->name(), ") sharing memory with another array, whose history would not see "
                    "the assignment; assign into the array it views, or into a copy");
    return;
  }
  // Outside autograd: it joins the graph here, which is safe only if no
  // other array shares its memory (a base or view would keep no history of
  // the write, and a gradient through it would be silently lost).
  x.wait_to_write();
  LOOM_CHECK_KIND(x.storage().use_count() == 1, ErrorKind::kValue, "__setitem__: ", x.describe(),
                  " takes no part in autograd and shares its memory with another array, so assigning a value "
                  "that requires grad into it cannot be recorded (that array would not see the history); "
                  "assign into a fresh array (e.g. lm.nd.zeros(...)) or into a copy");
}

}  // namespace

void assign(NDArray& x, const BasicIndex& index, const NDArray& value) {
  LOOM_CHECK(x.defined() && value.defined(), "__setitem__: undefined NDArray");
  LOOM_CHECK(x.device() == value.device(), "__setitem__: the value is on ", value.device().str(), " but ",
             x.describe(), " is on ", x.device().str());
  const bool record = should_record({&x, &value}) && is_floating(x.dtype());
  Edge x_edge, value_edge;
  if (record) {
    check_recordable(x);
    // Edges first: the write bumps the version of x's memory, which a value
    // viewing x (x[1:] = x[:-1]) shares.
    x_edge = gradient_edge(x);
    value_edge = gradient_edge(value);
  }
  NDArray view, source;
  {
    ModeScope plain(false);
    view = index_view(x.without_autograd(), index);
    source = value.without_autograd();
    if (source.dtype() != x.dtype()) source = source.astype(x.dtype());
    // NumPy's assignment drops leading 1s that do not fit: x[0] = [[5.0]] into a scalar.
    while (source.ndim() > view.ndim() && source.shape()[0] == 1) {
      source = reshape(source, Shape(source.shape().begin() + 1, source.shape().end()));
    }
    if (source.shape() != view.shape()) {
      LOOM_CHECK(broadcasts_to(source.shape(), view.shape()), "__setitem__: could not broadcast a value of shape ",
                 shape_str(source.shape()), " into the selection of shape ", shape_str(view.shape()));
      source = broadcast_to(source, view.shape());
    }
    op::copy_out(view, source);
  }
  if (!record) return;
  auto node = std::make_shared<AssignBackward>(index, value.shape());
  node->add_input(x.without_autograd(), std::move(x_edge));
  node->add_input(value, std::move(value_edge));
  set_outputs(node, {&x});
  rebased(x);
}

}  // namespace loom::autograd
