// Attributes of a CUDA device that kernels size their grids by, asked of
// the driver once per device and cached (thread-safe): the multiprocessor
// count (the reductions' and pointwise kernels' grids, grid_split.h) and the
// compute capability (the fused kernels' NVRTC target). Plain C++, so .cc
// files (runtime/graph/fuse_pointwise_cuda.cc) share the cache with .cu ones.
// Only in builds with CUDA.
#pragma once

namespace loom::kernels {

// Multiprocessors of `device` (80 when the driver cannot say).
int cuda_device_sm_count(int device);
// 10 * major + minor of `device`'s compute capability; throws naming
// `device` when the driver cannot say.
int cuda_device_arch(int device);

}  // namespace loom::kernels
