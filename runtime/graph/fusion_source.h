// The CUDA source of each fusable pointwise op's scalar body, for fused GPU
// kernels compiled at run time (runtime/graph/fuse_pointwise_cuda.h).
//
// The generator registers, for every op that has a CPU tile function
// (runtime/kernels/cpu/tile_kernels.h), the text of the very functor its
// CUDA kernel instantiates (generated/kernels/<op>.h), with its #line
// pointing into opdefs/: a fused kernel computes what the op computes, and a
// compile error names the YAML line.
#pragma once

#include <string_view>

namespace loom::graph {

// One input's gradient formula as a functor (the one the op's first-order
// backward instantiates), for fused backward kernels. Its fields are the
// op's attributes, as the forward functor's.
struct FusionGradSource {
  std::string_view functor;   // e.g. "MulGradXFunctor"; empty: no source for this input
  // Per functor operand, in order: 'g' the gradient arriving at the op's
  // result, 'o' that result, '0'..'7' that input's value ("g1" for mul's x: grad * y).
  std::string_view operands;
  std::string_view text;
};

// Inputs a fusable op has at most (the fused loops' pointer arrays).
constexpr int kMaxFusionArity = 8;

struct FusionSource {
  int arity = 0;
  std::string_view functor;     // the struct's name, e.g. "MulFunctor"
  std::string_view attr_types;  // one letter per field, in order: f (double), i (int64), b (bool); "" for none
  std::string_view text;        // its definition (namespace loom::kernels; uses runtime/kernels/pointwise_math.h)
  FusionGradSource grads[kMaxFusionArity];  // per input
  // Every differentiable input has a gradient source; the inputs without
  // one take no gradient (a fused backward may hold the op).
  bool backward = false;
};

bool register_fusion_source(const char* op, int arity, const char* functor, const char* attr_types,
                            const char* text);
bool register_fusion_grad_source(const char* op, int input, const char* functor, const char* operands,
                                 const char* text);
bool register_fusion_backward(const char* op);
// nullptr when `op` has none.
const FusionSource* find_fusion_source(std::string_view op);

// runtime/kernels/pointwise_math.h's text (embedded at build time): the
// header every functor's text includes.
std::string_view pointwise_math_source();
// runtime/core/half.h's text: the float16/bfloat16 conversions a fused
// kernel over half arrays loads and stores through.
std::string_view half_source();

}  // namespace loom::graph
