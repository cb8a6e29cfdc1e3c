// Fused pointwise groups (fuse_pointwise.h) while autograd records: one
// recorded node per group, whose backward is one fused kernel too.
//
// Recorded op by op, relu(a*b + a) saves what each op's backward needs and
// its backward runs one kernel per gradient formula and one per sum: about
// a dozen passes over memory. Fused, the group runs its forward tiles and
// records one node that saves only the group's inputs. Its backward
// (runtime/kernels/cpu/fused_tiles.h) recomputes the members tile by tile
// in cache and walks them back through each op's YAML gradient formula,
// compiled to a tile function from the scalar functor the op's own
// first-order backward runs, writing one gradient per input that wants one:
// for relu(a*b + a), it reads a, b and the incoming gradient and writes two
// arrays. The same functors, summed in the order autograd's engine sums
// them op by op (later members first, a member's arguments in order), give
// the op-by-op gradients bit for bit; an input also read outside the group
// gets the group's share as one sum, so its total may differ from op by op
// in the order of that last addition.
//
// Under create_graph the node recomputes its members recorded, from the
// saved inputs (with their histories), and runs each member's own backward
// node, so gradients of gradients flow through the ops' formulas.
//
// On a GPU the same walk is NVRTC source (fused_kernel_source.h: a
// backward kernel per group, wanted inputs and dtype, compiled at record
// time; float16/bfloat16 computed in float and rounded once per gradient,
// as the forward). NVRTC may contract a formula's multiply into the sum
// after it, so GPU gradients match op by op to a rounding, not bit for bit.
//
// Fused while recording: groups of float32, float64, float16 or bfloat16
// (the half types computed in float, each gradient rounded once: the
// float32 gradients rounded, as the fused forward is the float32 chain
// rounded) whose members all have gradient formulas as one scalar body
// (tile_kernels.h: TileKernel::backward; FusionSource::backward) and whose
// inputs that require grad are not broadcast single values (their gradient
// would be a sum over the group). Others record op by op.
#pragma once

#include <memory>
#include <vector>

#include "runtime/graph/fuse_pointwise.h"

namespace loom::graph {

struct GroupBackward {
  struct Member {
    const OpSchema* op = nullptr;  // to recompute it recorded (create_graph)
    AttrMap attrs;
    const kernels::TileKernel* kernel = nullptr;
  };
  std::vector<Member> members;  // the group's, in order
  std::vector<std::vector<int>> refs;      // PointwiseGroup::refs
  std::vector<std::vector<double>> attrs;  // PointwiseGroup::attrs (the tile functions')
};

// nullptr when a member's op has a differentiable input without a gradient
// tile function (its formula is not one scalar body).
std::shared_ptr<const GroupBackward> make_group_backward(const PointwiseGroup& group,
                                                         const std::vector<const Node*>& member_nodes);

}  // namespace loom::graph
