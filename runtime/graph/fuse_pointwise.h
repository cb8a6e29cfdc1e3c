// Elementwise fusion on the CPU: a tree of pointwise nodes whose
// intermediate values have no other reader runs as one kernel, tile by tile.
//
// The pass (find_pointwise_groups) joins a pointwise node to the pointwise
// node reading its output when that is the output's only reader (and it is
// not a graph output); the groups are trees whose root's output leaves the
// group. At run time a group runs fused when its inputs allow it: on the
// CPU, one float dtype, contiguous, each of the broadcast shape or a single
// element (while autograd records, the group records one node whose
// backward is fused too: fuse_pointwise_grad.h); on a GPU, the same but through one
// kernel compiled at run time (fuse_pointwise_cuda.h: NVRTC, cached by the
// group's signature).
// On the CPU each thread walks its share of the elements in
// tiles of a few thousand, running every member's tile function
// (runtime/kernels/cpu/tile_kernels.h) into a cache-resident buffer; only the
// inputs and the root's output touch memory. Otherwise the members run one
// by one as usual. Results equal the unfused ops': the same scalar functors,
// in the same order, in the same dtype.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "runtime/graph/fuse_pointwise_cuda.h"
#include "runtime/graph/graph.h"
#include "runtime/kernels/cpu/tile_kernels.h"

namespace loom::graph {

struct GroupGpuKernels;  // fuse_pointwise.cc: the group's compiled GPU kernels
struct GroupBackward;    // fuse_pointwise_grad.h: what a recorded run's backward needs

// What a group reads at run time, when it can run fused: its inputs, which
// of them are single values, and the result's shape, dtype and device.
struct FusedOperands {
  std::vector<NDArray> reads;
  std::vector<unsigned char> scalar;
  Shape shape;
  DType dtype = DType::kFloat32;
  Device device = Device::cpu();
};

struct PointwiseGroup {
  // Members in topological order (indices into the caller's node list); the last is the root.
  std::vector<int> members;
  // Values the group reads from outside (the caller's value indices, each once).
  std::vector<int> external;
  // Per member, per input: k >= 0 is external[k]; -(j + 1) is member j's output.
  std::vector<std::vector<int>> refs;
  std::vector<const kernels::TileKernel*> kernels;
  std::vector<std::string> ops;  // members' op names (the GPU kernel's source is built from them)
  // Per member: its node's attributes in the schema's order, as doubles
  // (floats, ints, bools), what the tile function and the GPU source take.
  std::vector<std::vector<double>> attrs;
  // The GPU kernels this group has run with, by device, dtype and which
  // inputs were single values (shared by copies of the group), so a run
  // finds its kernel without rebuilding the signature or taking the
  // process-wide cache's lock (fuse_pointwise_cuda.h).
  std::shared_ptr<GroupGpuKernels> gpu_kernels;
  // The members' ops and gradient tile functions, shared with the nodes
  // recorded runs leave (which outlive the program); nullptr when a member
  // has a differentiable input without one: recorded runs go op by op.
  std::shared_ptr<const GroupBackward> backward;

  // Runs the group fused on `values` (the caller's value table), returning
  // the root's output (written into `into` when given and of the result's
  // shape and dtype: a planned buffer, possibly one of the inputs'), or an
  // undefined array when it must run unfused.
  NDArray run(const std::vector<NDArray>& values, const NDArray* into = nullptr) const;

 private:
  NDArray run_cpu(FusedOperands& operands, const NDArray* into) const;
  // While autograd records (fuse_pointwise_grad.cc): fused, with one node
  // recorded, or undefined (run the members recorded one by one).
  NDArray run_recorded(FusedOperands& operands) const;
  // The group's kernel for `spec` (forward or backward) on GPU `device`:
  // compiled once, then found in gpu_kernels; nullptr: NVRTC failed.
  FusedCudaKernel gpu_kernel(const FusedKernelSpec& spec, int device) const;
  NDArray run_gpu(FusedOperands& operands, const NDArray* into) const;
};

// `nodes`: operator nodes in topological order; `inputs[k]`: node k's input
// value indices (-1: absent); `first_output[k]`: node k's output value index;
// `readers[v]`: how many times value v is read (graph outputs count too).
// Returns the groups of two or more members; `group_of[k]` is node k's group or -1.
std::vector<PointwiseGroup> find_pointwise_groups(const std::vector<const Node*>& nodes,
                                                  const std::vector<std::vector<int>>& inputs,
                                                  const std::vector<int>& first_output,
                                                  const std::vector<int>& readers, std::vector<int>& group_of);

// False when LOOM_GRAPH_FUSION=0 (for measuring, and for bisecting a wrong result).
bool pointwise_fusion_enabled();

}  // namespace loom::graph
