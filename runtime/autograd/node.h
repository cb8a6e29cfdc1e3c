// The recorded graph: one Node per differentiable operator call, pointing at
// the nodes that produced its inputs. Backward passes walk it from the
// outputs to the leaves (runtime/autograd/backward.h).
//
// Ownership: an array's Meta owns the node that produced it (grad_fn); a
// node owns the nodes of its inputs through its edges. Nothing points
// forward, so a graph is freed as soon as its last output array is, and a
// node never keeps its own outputs alive (SavedTensor stores outputs without
// their Meta).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/ndarray/ndarray.h"

namespace loom::autograd {

class Node;

// How a leaf receives its gradient (MXNet's grad_req).
enum class GradReq { kNull, kWrite, kAdd };

// An array's autograd state (NDArray::autograd_meta()).
struct Meta {
  // Non-leaf: the node that computed the array, and which of its outputs it is.
  std::shared_ptr<Node> grad_fn;
  std::uint32_t output_nr = 0;
  // Non-leaf: the storage version when grad_fn was recorded. A write to the
  // memory afterwards (out=, in place, through a view sharing it) makes the
  // history stale, and using the array in a recorded op then raises.
  std::uint64_t version = 0;
  // Non-leaf: the array shares its input's memory (a recorded view op);
  // an in-place op on it is not recorded (its base would keep a stale history).
  bool is_view = false;
  // Leaf: how gradients land in `grad` (kNull: the leaf takes no gradient).
  GradReq grad_req = GradReq::kNull;
  NDArray grad;
  // The leaf's AccumulateGrad node, made when the first recorded op reads the
  // leaf and shared by every later one while it lives.
  std::weak_ptr<Node> accumulator;

  bool requires_grad() const { return grad_fn != nullptr || grad_req != GradReq::kNull; }
};

// True when `a` takes part in autograd (a leaf with attach_grad, or the
// result of a recorded op).
inline bool requires_grad(const NDArray& a) {
  return a.defined() && a.autograd_meta() && a.autograd_meta()->requires_grad();
}

// What a gradient must look like: the shape, dtype and device of the array
// it is the gradient of.
struct TensorMeta {
  Shape shape;
  DType dtype = DType::kFloat32;
  Device device;

  bool given = true;  // false for an optional input (`Tensor?`) that was not given

  static TensorMeta of(const NDArray& a) {
    if (a.defined()) return {a.shape(), a.dtype(), a.device()};
    TensorMeta absent;
    absent.given = false;
    return absent;
  }
  std::string describe() const;
};

// Where a gradient goes: input `input_nr` of `node` (invalid: nowhere).
struct Edge {
  std::shared_ptr<Node> node;
  std::uint32_t input_nr = 0;
  bool valid() const { return node != nullptr; }
};

class Node : public std::enable_shared_from_this<Node> {
 public:
  Node();
  virtual ~Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // "ReluBackward", for error messages and graph dumps.
  virtual std::string name() const = 0;
  // `grads` holds one gradient per forward output (zero-filled by the engine
  // where none flowed). Returns one per forward input, undefined where no
  // gradient is wanted (needs_input_grad false). Results may have any shape
  // broadcastable to the input's and any floating dtype: the engine reduces
  // (sum_to) and casts them centrally.
  virtual std::vector<NDArray> apply(std::vector<NDArray>& grads) = 0;
  // Frees the tensors saved for apply (after a backward pass without
  // retain_graph). Called at most once.
  virtual void release_saved() {}
  // False for nodes that outlive one graph (a leaf's accumulator), which a
  // later backward pass may run again whatever retain_graph said.
  virtual bool single_use() const { return true; }

  bool needs_input_grad(std::size_t i) const { return i < next_edges_.size() && next_edges_[i].valid(); }
  const std::vector<Edge>& next_edges() const { return next_edges_; }
  const std::vector<TensorMeta>& input_meta() const { return input_meta_; }
  const std::vector<TensorMeta>& output_meta() const { return output_meta_; }
  std::uint64_t sequence_nr() const { return sequence_nr_; }
  bool released() const { return released_; }
  void mark_released() { released_ = true; }

  // Wiring, done once by the code that records the node.
  void add_input(const NDArray& input, Edge edge);
  void add_output(const NDArray& output);
  // True when an input added so far lives in `storage` (the output is a view).
  bool has_input_storage(const void* storage) const;

 private:
  std::vector<const void*> input_storages_;  // identity only, never dereferenced
  std::vector<Edge> next_edges_;        // one per forward input
  std::vector<TensorMeta> input_meta_;  // what each input's gradient must look like
  std::vector<TensorMeta> output_meta_; // to zero-fill an output that got no gradient
  std::uint64_t sequence_nr_;           // creation order: later nodes run first
  bool released_ = false;
};

// A tensor a node keeps for its backward. It remembers the storage version
// at save time, so a later in-place write (out=, +=) is reported when the
// backward needs the tensor, instead of silently giving a wrong gradient.
class SavedTensor {
 public:
  SavedTensor() = default;
  // `output_nr` >= 0: `t` is that output of the node saving it, stored
  // without its Meta (which owns the node) to avoid a reference cycle.
  // An undefined `t` (an optional input not given) unpacks as undefined.
  explicit SavedTensor(const NDArray& t, int output_nr = -1);

  // The tensor for `owner`'s apply; throws if it was modified after saving or
  // released. A saved output gets a Meta pointing back at `owner`, so
  // gradients of gradients flow through it.
  NDArray unpack(Node& owner, const char* what) const;
  void release() {
    data_ = NDArray();
    released_ = true;
  }

 private:
  NDArray data_;
  std::uint64_t version_ = 0;
  int output_nr_ = -1;
  bool released_ = false;
};

// The node every leaf's gradients end in: writes or adds them to Meta::grad.
class AccumulateGrad final : public Node {
 public:
  explicit AccumulateGrad(std::shared_ptr<Meta> leaf, const NDArray& leaf_value);
  std::string name() const override { return "AccumulateGrad"; }
  bool single_use() const override { return false; }
  std::vector<NDArray> apply(std::vector<NDArray>& grads) override;
  const std::shared_ptr<Meta>& leaf() const { return leaf_; }

 private:
  std::shared_ptr<Meta> leaf_;
};

}  // namespace loom::autograd
