// Shared by the recurrent-layer kernels under runtime/kernels/cpu/isa/
// (lstm.cc, gru.cc): the activations (float uses fast_math.h's
// straight-line exp and tanh, so gate loops vectorise), the dtype switch,
// and dense views of optional inputs. Defined in the ISA-named inline
// namespace of the including build (cpu_isa.h).
#pragma once

#include <algorithm>
#include <cmath>

#include "microkernel/base/error.h"
#include "runtime/kernels/float_dtype.h"
#include "runtime/kernels/cpu/cpu_isa.h"
#include "runtime/kernels/cpu/fast_math.h"
#include "runtime/ndarray/ndarray.h"

namespace loom::kernels {
inline namespace LOOM_CPU_ISA {
namespace rnn {

inline float tanh_of(float v) { return ::loom::pw::fast::tanh(v); }
inline double tanh_of(double v) { return std::tanh(v); }
inline float exp_of(float v) { return ::loom::pw::fast::exp(v); }
inline double exp_of(double v) { return std::exp(v); }

template <typename T>
inline T sigmoid(T v) {
  return T(1) / (T(1) + exp_of(-v));
}

// A dense pointer to an optional input (null when not given); `keep` holds the copy.
template <typename T>
const T* ptr_or_null(const NDArray& a, NDArray& keep) {
  if (!a.defined()) return nullptr;
  keep = a.contiguous();
  return keep.template data<const T>();
}

// A final state when there are no steps: a copy of the initial one, or zeros.
inline void copy_initial_state(const char* op, NDArray& out, const NDArray& init) {
  by_dtype(op, out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* p = out.template data<T>();
    if (init.defined()) {
      const NDArray c = init.contiguous();
      std::copy(c.template data<const T>(), c.template data<const T>() + out.numel(), p);
    } else {
      std::fill(p, p + out.numel(), T(0));
    }
  });
}

// (steps, batch, input, hidden) of x (T, N, I) and w_hh (G * H, H)
struct Shape4 {
  std::int64_t steps, batch, input, hidden;
};
inline Shape4 shape_of(const NDArray& x, const NDArray& w_hh) {
  return {x.shape()[0], x.shape()[1], x.shape()[2], w_hh.shape()[1]};
}

}  // namespace rnn
}  // inline namespace LOOM_CPU_ISA
}  // namespace loom::kernels
