// generated from opdefs/elementwise/add.yaml:1 — do not edit
// The scalar body of `add`, shared by its CPU loop and its CUDA kernel.
#pragma once

#include <cstdint>

#include "runtime/dispatch/pointwise_call.h"
#include "runtime/kernels/pointwise_math.h"

namespace loom::kernels {

struct AddFunctor {
  template <typename T>
  LOOM_HD T operator()(T x, T y) const {
#line 12 "opdefs/elementwise/add.yaml"
    return (x + y);
  }
};

void add_cpu(const PointwiseCall& call, const AddFunctor& f);
#if LOOM_WITH_CUDA
void add_cuda(const PointwiseCall& call, const AddFunctor& f);
#endif

}  // namespace loom::kernels
