#include "runtime/autograd/node.h"

#include <atomic>

#include "loom/ops/add.h"
#include "loom/ops/copy.h"
#include "microkernel/base/error.h"
#include "runtime/autograd/backward.h"
#include "runtime/autograd/grad_mode.h"

namespace loom::autograd {
namespace {
std::atomic<std::uint64_t> g_next_sequence_nr{0};
}  // namespace

std::string TensorMeta::describe() const {
  return "shape " + shape_str(shape) + ", " + std::string(dtype_name(dtype)) + " on " + device.str();
}

Node::Node() : sequence_nr_(g_next_sequence_nr.fetch_add(1, std::memory_order_relaxed)) {}

void Node::add_input(const NDArray& input, Edge edge) {
  next_edges_.push_back(std::move(edge));
  input_meta_.push_back(TensorMeta::of(input));
  input_storages_.push_back(input.defined() ? input.storage().get() : nullptr);
}

bool Node::has_input_storage(const void* storage) const {
  for (const void* s : input_storages_) {
    if (s == storage) return true;
  }
  return false;
}

void Node::add_output(const NDArray& output) { output_meta_.push_back(TensorMeta::of(output)); }

SavedTensor::SavedTensor(const NDArray& t, int output_nr)
    : data_(output_nr >= 0 ? t.without_autograd() : t),
      version_(t.defined() ? t.storage()->version() : 0),
      output_nr_(output_nr) {}

NDArray SavedTensor::unpack(Node& owner, const char* what) const {
  LOOM_CHECK_KIND(!released_, ErrorKind::kRuntime, owner.name(), ": the saved ", what,
                  " was freed by an earlier backward pass; pass retain_graph=True to the first "
                  "backward() to run backward through this graph again");
  if (!data_.defined()) return data_;  // an optional input that was not given
  const std::uint64_t now = data_.storage()->version();
  LOOM_CHECK_KIND(now == version_, ErrorKind::kRuntime, owner.name(), ": the ", what, " (",
                  data_.describe(), ") that this operation saved for its gradient was modified "
                  "in place afterwards (version ", version_, ", now ", now,
                  "), so its gradient would be wrong; compute into a new array instead of out= or "
                  "an in-place update");
  if (output_nr_ < 0) return data_;
  NDArray out = data_;
  auto meta = std::make_shared<Meta>();
  meta->grad_fn = owner.shared_from_this();
  meta->output_nr = static_cast<std::uint32_t>(output_nr_);
  meta->version = version_;
  out.set_autograd_meta(std::move(meta));
  return out;
}

AccumulateGrad::AccumulateGrad(std::shared_ptr<Meta> leaf, const NDArray& leaf_value)
    : leaf_(std::move(leaf)) {
  add_output(leaf_value);
}

std::vector<NDArray> AccumulateGrad::apply(std::vector<NDArray>& grads) {
  NDArray& g = grads.at(0);
  Meta& leaf = *leaf_;
  // With create_graph (recording on) the gradient keeps its graph, so it is
  // stored as a new array; otherwise it goes into the existing buffer, which
  // callers (optimisers, KVStore) may hold on to.
  const bool keep_graph = is_recording();
  const bool reuse = leaf.grad.defined() && !keep_graph && leaf.grad.shape() == g.shape() &&
                     leaf.grad.dtype() == g.dtype() && leaf.grad.device() == g.device();
  if (leaf.grad_req == GradReq::kWrite) {
    // When nothing but this leaf holds its gradient buffer, nobody can tell
    // the buffer from a new one: the leaf takes the computed gradient itself
    // and skips a copy the size of the input (the copy was ~1.2 ms of a
    // 4.7 ms layer_norm step over 16 MB). A buffer someone holds (an
    // optimiser, a Python handle read before backward, a pending op) is
    // written in place as before.
    const bool sole_holder = reuse && leaf.grad.storage() && leaf.grad.storage().use_count() == 1;
    if (sole_holder && claim_gradient_storage(g)) {
      leaf.grad = g;
    } else if (reuse) {
      op::copy_out(leaf.grad, g);
    } else {
      leaf.grad = keep_graph ? g : op::copy(g);
    }
  } else if (leaf.grad_req == GradReq::kAdd) {
    if (reuse) {
      op::add_out(leaf.grad, leaf.grad, g);
    } else {
      leaf.grad = leaf.grad.defined() ? op::add(leaf.grad, g) : (keep_graph ? g : op::copy(g));
    }
  }
  return {};
}

}  // namespace loom::autograd
