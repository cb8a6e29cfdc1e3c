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

// out[i] = the group's root at element i, for i < n, reading inputs[k][i]
// (or inputs[k][0] where spec.scalar[k]); every pointer on `device`.
// Compiles on first use (cached), then launches without waiting.
void run_fused_cuda(const FusedKernelSpec& spec, const std::vector<const void*>& inputs, void* out,
                    std::int64_t n, int device);

// Kernels compiled so far (one per signature and architecture).
std::int64_t fused_cuda_cache_size();

}  // namespace loom::graph
