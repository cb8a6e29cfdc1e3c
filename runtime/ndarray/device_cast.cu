#include "runtime/ndarray/device_cast.h"

#include <cuda_runtime.h>

#include <cstdint>
#include <limits>
#include <type_traits>

#include "microkernel/base/error.h"
#include "runtime/core/dtype_visit.h"
#include "runtime/core/half.h"
#include "runtime/kernels/cuda/pointwise_cuda.cuh"

namespace loom {
namespace {

template <typename T>
inline constexpr bool kHalf = std::is_same_v<T, f16> || std::is_same_v<T, bf16>;

// d as a float rounded to odd (host_copy.cc's float_round_to_odd): toward
// zero, then an odd last bit when inexact, so that rounding on to a half type
// rounds once.
__device__ float float_round_to_odd(double d) {
  float f = __double2float_rz(d);
  if (d == d && static_cast<double>(f) != d) f = __int_as_float(__float_as_int(f) | 1);
  return f;
}

// The host rules (runtime/ndarray/host_copy.cc), on the device.
template <typename To, typename From>
__device__ To convert(From value) {
  if constexpr (kHalf<From>) {
    return convert<To>(static_cast<float>(value));
  } else if constexpr (kHalf<To> && (std::is_same_v<From, double> || std::is_same_v<From, std::int64_t> ||
                                     std::is_same_v<From, std::int32_t>)) {
    return To(float_round_to_odd(static_cast<double>(value)));  // wider than float: no double rounding
  } else if constexpr (kHalf<To>) {
    return To(static_cast<float>(value));
  } else if constexpr (std::is_same_v<To, bool>) {
    return value != From(0);
  } else if constexpr (std::is_floating_point_v<From> && std::is_integral_v<To>) {
    if (value != value) return To(0);
    if (value <= static_cast<From>(std::numeric_limits<To>::min())) return std::numeric_limits<To>::min();
    if (value >= static_cast<From>(std::numeric_limits<To>::max())) return std::numeric_limits<To>::max();
    return static_cast<To>(value);
  } else {
    return static_cast<To>(value);
  }
}

template <typename To, typename From>
__global__ void cast_kernel(To* out, const From* in, std::int64_t n) {
  const std::int64_t stride = std::int64_t(blockDim.x) * gridDim.x;
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n; i += stride) {
    out[i] = convert<To>(in[i]);
  }
}

// visit_dtype with float16/bfloat16 as their storage types: a cast needs
// only their conversions to and from float, not arithmetic on them.
template <typename Fn>
void visit_cast_dtype(DType dtype, Fn&& fn) {
  if (dtype == DType::kFloat16) return fn(TypeTag<f16>{});
  if (dtype == DType::kBFloat16) return fn(TypeTag<bf16>{});
  visit_dtype(dtype, "astype", fn);
}

}  // namespace

void cast_cuda(const NDArray& src, NDArray& out) {
  const std::int64_t n = src.numel();
  if (n == 0) return;
  kernels::cuda_select_device("astype", out.device().id);
  const unsigned blocks = kernels::cuda_grid_blocks(n, 256, out.device().id);
  visit_cast_dtype(src.dtype(), [&](auto from_tag) {
    using From = typename decltype(from_tag)::type;
    visit_cast_dtype(out.dtype(), [&](auto to_tag) {
      using To = typename decltype(to_tag)::type;
      cast_kernel<To, From><<<blocks, 256>>>(static_cast<To*>(out.raw_data()),
                                             static_cast<const From*>(src.raw_data()), n);
    });
  });
  kernels::check_cuda_launch("astype");
}

}  // namespace loom
