// Running a fused pointwise group on a GPU: its CUDA source
// (fused_kernel_source.h) compiled once by NVRTC per kernel signature and
// GPU architecture, loaded as a CUDA library, and launched on the device's
// stream like the unfused kernels.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/graph/fused_kernel_source.h"

namespace loom::graph {

// False without CUDA or NVRTC in this build: groups on a GPU then run unfused.
bool fused_cuda_available();

// A compiled kernel (a cudaKernel_t), or nullptr.
using FusedCudaKernel = const void*;

// The kernel for `spec` on `device`, compiled on first use and cached by
// signature and architecture. nullptr when it cannot be built (NVRTC
// rejects the source, the GPU is older than NVRTC supports): the failure is
// reported once on stderr and remembered, and the caller runs the group
// unfused. Compiles without holding the cache's lock.
FusedCudaKernel fused_cuda_kernel(const FusedKernelSpec& spec, int device);

// outs[0][i] = the group's root at element i, for i < n, reading
// inputs[k][i] (or inputs[k][0] where spec.scalar[k]); every pointer on
// `device`. A backward kernel (spec.wants_grad) reads the incoming gradient
// as the last of `inputs` and writes one gradient per
// spec.gradient_outputs() entry, in that order, to `outs`.
// Launches without waiting.
void launch_fused_cuda(FusedCudaKernel kernel, const FusedKernelSpec& spec, const std::vector<const void*>& inputs,
                       const std::vector<void*>& outs, std::int64_t n, int device);

// Kernels compiled so far (one per signature and architecture; failures not counted).
std::int64_t fused_cuda_cache_size();
// Groups NVRTC could not compile (each runs unfused), one per signature and architecture.
std::int64_t fused_cuda_failure_count();

}  // namespace loom::graph
