// softmax_cross_entropy's per-line loss from its two parts, shared by the
// CPU (cross_entropy.cc) and CUDA (cross_entropy_cuda.cu) kernels.
#pragma once

#if defined(__CUDACC__)
#define LOOM_CE_HD __host__ __device__ __forceinline__
#else
#define LOOM_CE_HD inline
#endif

namespace loom::kernels {

// (1 - smoothing) * picked + smoothing * uniform, where picked is -log p at
// the label and uniform the mean of -log p over the classes. A term whose
// weight is zero is left out, not multiplied by zero: one -inf logit (a
// masked class) makes `uniform` infinite, and 0 * inf would turn the loss
// of an unsmoothed line into NaN, where torch gives the finite loss.
template <typename T>
LOOM_CE_HD T smoothed_nll(T picked, T uniform, double smoothing) {
  if (smoothing == 0) return picked;
  if (smoothing == 1) return uniform;
  return T(1 - smoothing) * picked + T(smoothing) * uniform;
}

}  // namespace loom::kernels
