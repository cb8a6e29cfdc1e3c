// The loop of a fused pointwise group (runtime/graph/fuse_pointwise.h): tile
// by tile, every member's tile function into a per-thread buffer, the
// root's result to the output (streamed when large). Built per ISA
// (isa/fused_tiles.cc) so its streaming stores are as wide as the
// unfused kernels'. Half arrays are widened to float per tile.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/core/dtype.h"
#include "runtime/kernels/cpu/tile_kernels.h"

namespace loom::kernels {

struct FusedTilePlan {
  std::vector<const char*> inputs;          // each external input's first element
  std::vector<unsigned char> scalar;        // per input: one element, broadcast
  std::vector<std::vector<int>> refs;       // per member, per argument: input k, or -(j + 1) for member j
  std::vector<TileFn> fns;                  // per member, in order; the last is the root
  std::vector<std::vector<double>> attrs;   // per member: its node's attributes (TileFn's attrs)
  std::int64_t n = 0;                       // elements of the output
  std::size_t elem = 4;                     // bytes per element of the tile functions' type
  // float16 or bfloat16: the inputs and the output hold that type, and the
  // float tile functions run on float copies of each input's tile; the
  // root's result is rounded once, at the store. Otherwise the arrays hold
  // the tile functions' type itself.
  DType storage = DType::kFloat32;
  char* out = nullptr;
};

void run_fused_tiles(const FusedTilePlan& plan);

// The backward of a fused group: per tile, the members'
// results are recomputed into tile buffers, then the members are walked
// from the root back, each one's gradient tile functions (its YAML formulas)
// adding into its inputs' gradients, in the order autograd's engine would
// add them op by op: later members first, a member's arguments in order.
// Only the inputs, the incoming gradient and the wanted input gradients
// touch memory. Half storage (forward.storage): the inputs and the
// incoming gradient are widened per tile, and each input's gradient is
// summed in float and rounded once.
struct FusedBackwardPlan {
  FusedTilePlan forward;  // every field but `out`; `grad` and input_grads hold forward.storage's type
  const char* grad = nullptr;  // the gradient arriving at the root's n results
  // Per member, per argument: the gradient tile function to run, nullptr
  // where no wanted gradient lies behind that argument (or it takes none).
  std::vector<std::vector<TileGradFn>> grad_fns;
  // Per member: whether a gradient reaches it (the root's is `grad`).
  std::vector<unsigned char> member_needed;
  // Per member: whether it is recomputed (a formula reads its result, or a
  // recomputed member does). Inputs no recomputed member or formula reads
  // may be nullptr in forward.inputs.
  std::vector<unsigned char> member_computed;
  // Per external input: where its n gradient values go, nullptr when not wanted.
  std::vector<char*> input_grads;
};

void run_fused_backward_tiles(const FusedBackwardPlan& plan);

}  // namespace loom::kernels
