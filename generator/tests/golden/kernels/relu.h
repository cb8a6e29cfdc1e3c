// generated from opdefs/elementwise/relu.yaml:1 — do not edit
// The scalar body of `relu`, shared by its CPU loop and its CUDA kernel.
#pragma once

#include <cstdint>

#include "runtime/dispatch/pointwise_call.h"
#include "runtime/kernels/pointwise_math.h"

namespace loom::kernels {

struct ReluFunctor {
  template <typename T>
  LOOM_HD T operator()(T x) const {
#line 11 "opdefs/elementwise/relu.yaml"
    return ::loom::pw::where((x > T(0)), x, T(0));
  }
};

void relu_cpu(const PointwiseCall& call, const ReluFunctor& f);
#if LOOM_WITH_CUDA
void relu_cuda(const PointwiseCall& call, const ReluFunctor& f);
#endif

}  // namespace loom::kernels
