// loom._C.graph's fused-kernel functions: the CUDA source of a fused
// pointwise group, NVRTC, and the compiled-kernel cache (runtime/graph/
// fused_kernel_source.h, nvrtc_compile.h, fuse_pointwise_cuda.h). Tests
// compile every fused source with NVRTC on machines without a GPU.
#pragma once

#include <nanobind/nanobind.h>

namespace loom::python {

void bind_fusion(nanobind::module_& graph_module);

}  // namespace loom::python
