// The CUDA source of a fused pointwise group (runtime/graph/fuse_pointwise.h):
// one kernel, `loom_fused`, that computes every member per element and
// writes only the root's result. Built from the members' registered functor
// texts (fusion_source.h), so it computes what the unfused CUDA kernels do,
// each member rounding to the dtype as they do (NVRTC may contract one
// member's multiply into the next member's add, as torch's fusers do: up to
// one rounding per element, where the CPU's fused tiles are bit-identical).
// Over float16 and bfloat16 arrays the members compute in float and only
// the root's result is rounded to the half type, as torch's fusers do.
//
// The text does not depend on a GPU: tests compile it with NVRTC on a
// machine without one, and build its element function for the host.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "runtime/core/dtype.h"
#include "runtime/graph/gradient_paths.h"

namespace loom::graph {

struct FusedKernelSpec {
  std::vector<std::string> ops;          // members' op names, in topological order; the last is the root
  std::vector<std::vector<int>> refs;    // per member, per argument: input k >= 0, or -(j + 1) for member j
  std::vector<unsigned char> scalar;     // per input: a single element, read by every index
  DType dtype = DType::kFloat32;         // the inputs' and the result's: float32, float64, float16 or bfloat16
  // Per member: its node's attributes in declared order, as doubles (empty
  // for an op without; may be left empty when no member has any).
  std::vector<std::vector<double>> attrs;
  // Non-empty: the group's backward kernel instead (fuse_pointwise_grad.h),
  // per input whether its gradient is wanted. The kernel recomputes the
  // members its formulas read, walks them back through their gradient
  // sources (FusionGradSource) and writes the gradient of each input a
  // formula reaches (gradient_paths.h), summed in the order autograd's
  // engine sums them (NVRTC may contract a product into that sum).
  std::vector<unsigned char> wants_grad;

  // A short text naming what the kernel computes (the compile cache's key):
  // "f32:mul(x0,x1);add(m0,x0);relu(m1)|s01". Attributes in brackets: bools
  // by value (they pick code paths), numbers by their slot in attr_values()
  // ("leaky_relu[a0](x0);gelu[true](m0)"), so one compiled kernel serves
  // every slope or bound. A backward kernel's ends in "|g" and the wanted
  // inputs ("...|s01|g10").
  std::string signature() const;
  // For a backward kernel: which inputs it writes gradients of, in order
  // (its gin<k> arguments).
  std::vector<int> gradient_outputs() const;
  // The members' numeric (non-bool) attributes in order: the kernel's `attrs` argument.
  std::vector<double> attr_values() const;
};

// The full translation unit: `#include "runtime/kernels/pointwise_math.h"`
// (given to NVRTC as a named header), the functors, a struct Attrs { double
// v[max(1, attr_values().size())]; }, an element function (S the arrays'
// element type, T the type members compute in: float for the half types)
//   T loom_fused_at(const S* in0, ..., const Attrs& attrs, long long i)
// callable on host and device, and the kernel
//   extern "C" __global__ void loom_fused(const S* in0, ..., S* out, long long n, Attrs attrs)
// (only where __CUDACC__ is defined). A backward kernel (wants_grad) has
//   void loom_fused_backward_at(const S* in0, ..., const S* grad, S* gin<k>, ..., const Attrs&, long long i)
//   extern "C" __global__ void loom_fused_backward(const S* in0, ..., const S* grad, S* gin<k>, ..., long long n, Attrs)
// with one gin<k> per gradient_outputs() entry. Throws a ValueError naming
// the op when a member has no fusion source (or, for a backward kernel, a
// differentiable input without a gradient source) or the refs do not fit its arity.
std::string fused_kernel_source(const FusedKernelSpec& spec);

// The gradient formulas a backward kernel (spec.wants_grad) runs: those of
// its members' gradient sources on a path to a wanted input.
GradientPaths fused_backward_paths(const FusedKernelSpec& spec);

}  // namespace loom::graph
