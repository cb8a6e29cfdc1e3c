#include "runtime/ndarray/host_copy.h"

#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "runtime/core/dtype_visit.h"
#include "runtime/core/half.h"
#include "runtime/ndarray/ndarray.h"

namespace loom {

void copy_strided_host(const NDArray& src, void* dst) {
  const std::size_t item = dtype_size(src.dtype());
  if (src.is_contiguous()) {
    std::memcpy(dst, src.raw_data(), src.nbytes());
    return;
  }
  const std::int64_t n = src.numel();
  const int rank = src.ndim();
  const char* base = static_cast<const char*>(src.raw_data());
  char* out = static_cast<char*>(dst);
  // Odometer over the index; the offset is updated incrementally.
  std::vector<std::int64_t> index(rank, 0);
  std::int64_t offset = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    std::memcpy(out + i * item, base + offset * static_cast<std::int64_t>(item), item);
    for (int d = rank - 1; d >= 0; --d) {
      if (++index[d] < src.shape()[d]) {
        offset += src.strides()[d];
        break;
      }
      offset -= src.strides()[d] * (index[d] - 1);
      index[d] = 0;
    }
  }
}

namespace {

// Float -> integer conversion with defined results (a plain cast is UB for
// NaN and out-of-range values): NaN gives 0, the rest saturates.
template <typename To, typename From>
To convert(From v) {
  if constexpr (std::is_floating_point_v<From> && std::is_integral_v<To> && !std::is_same_v<To, bool>) {
    if (v != v) return To(0);
    if (v <= static_cast<From>(std::numeric_limits<To>::min())) return std::numeric_limits<To>::min();
    if (v >= static_cast<From>(std::numeric_limits<To>::max())) return std::numeric_limits<To>::max();
  }
  return static_cast<To>(v);
}

}  // namespace

namespace {

bool is_half(DType d) { return d == DType::kFloat16 || d == DType::kBFloat16; }

}  // namespace

void cast_host(const void* src, DType from, void* dst, DType to, std::int64_t count) {
  // float16/bfloat16 go through float: the same rounding (to nearest even)
  // and the same saturation rules as every other float conversion.
  if (is_half(from) && is_half(to) && from == to) {
    std::memcpy(dst, src, static_cast<std::size_t>(count) * 2);
    return;
  }
  if (is_half(from)) {
    std::vector<float> wide(static_cast<std::size_t>(count));
    const auto* in = static_cast<const std::uint16_t*>(src);
    for (std::int64_t i = 0; i < count; ++i)
      wide[i] = from == DType::kFloat16 ? half_to_float(in[i]) : bfloat16_to_float(in[i]);
    cast_host(wide.data(), DType::kFloat32, dst, to, count);
    return;
  }
  if (is_half(to)) {
    std::vector<float> wide(static_cast<std::size_t>(count));
    cast_host(src, from, wide.data(), DType::kFloat32, count);
    auto* out = static_cast<std::uint16_t*>(dst);
    for (std::int64_t i = 0; i < count; ++i)
      out[i] = to == DType::kFloat16 ? float_to_half(wide[i]) : float_to_bfloat16(wide[i]);
    return;
  }
  visit_dtype(from, "astype", [&](auto from_tag) {
    using From = typename decltype(from_tag)::type;
    visit_dtype(to, "astype", [&](auto to_tag) {
      using To = typename decltype(to_tag)::type;
      const From* in = static_cast<const From*>(src);
      To* out = static_cast<To*>(dst);
      for (std::int64_t i = 0; i < count; ++i) out[i] = convert<To>(in[i]);
    });
  });
}

}  // namespace loom
