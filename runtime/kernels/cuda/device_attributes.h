// Attributes of a CUDA device that kernels size their grids by, asked of
// the driver once per device and cached (thread-safe): the multiprocessor
// count (the reductions' and pointwise kernels' grids, grid_split.h), the
// compute capability (the fused kernels' NVRTC target) and the shared
// memory a block may use (which flash attention kernels fit). Plain C++, so .cc
// files (runtime/graph/fuse_pointwise_cuda.cc) share the cache with .cu ones.
// Only in builds with CUDA.
#pragma once

namespace loom::kernels {

// Multiprocessors of `device` (80 when the driver cannot say).
int cuda_device_sm_count(int device);
// 10 * major + minor of `device`'s compute capability; throws naming
// `device` when the driver cannot say.
int cuda_device_arch(int device);
// The most shared memory one block may opt in to on `device`, in bytes
// (232448 on an H100/H200, 166912 on an A100, 101376 on sm_86/89; 49152,
// the limit without opting in, when the driver cannot say).
int cuda_device_max_shared_per_block(int device);

}  // namespace loom::kernels
