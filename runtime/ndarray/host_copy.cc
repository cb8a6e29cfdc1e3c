#include "runtime/ndarray/host_copy.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "runtime/core/dtype_visit.h"
#include "runtime/core/half.h"
#include "runtime/ndarray/ndarray.h"

namespace loom {

namespace {

// Gathers `rows` rows of `inner` elements (source stride `step` within a
// row) into dense memory, the rows addressed by an odometer over the outer
// dims. Typed by element size so the inner loop is a plain load/store.
template <typename U>
void gather_rows(const U* base, U* out, const std::vector<std::int64_t>& shape,
                 const std::vector<std::int64_t>& strides, std::int64_t first_row, std::int64_t last_row) {
  const int outer = static_cast<int>(shape.size()) - 1;
  const std::int64_t inner = shape[outer], step = strides[outer];
  // the first row's index and offset, from its row number
  std::vector<std::int64_t> index(static_cast<std::size_t>(outer), 0);
  std::int64_t offset = 0, rest = first_row;
  for (int d = outer - 1; d >= 0; --d) {
    index[d] = rest % shape[d];
    rest /= shape[d];
    offset += index[d] * strides[d];
  }
  for (std::int64_t row = first_row; row < last_row; ++row) {
    const U* in = base + offset;
    U* o = out + row * inner;
    if (step == 1) {
      std::memcpy(o, in, static_cast<std::size_t>(inner) * sizeof(U));
    } else {
      for (std::int64_t i = 0; i < inner; ++i) o[i] = in[i * step];
    }
    for (int d = outer - 1; d >= 0; --d) {
      if (++index[d] < shape[d]) {
        offset += strides[d];
        break;
      }
      offset -= strides[d] * (index[d] - 1);
      index[d] = 0;
    }
  }
}

}  // namespace

// A strided view copied into dense row-major memory. Dims are coalesced
// first (size-1 dims dropped, contiguous neighbours merged), then whole
// rows of the innermost dim are gathered, across OpenMP threads for large
// arrays: a broadcast (stride 0) gradient of 3.2M floats took 10 ms
// element by element, and now about as long as a dense copy.
void copy_strided_host(const NDArray& src, void* dst) {
  const std::size_t item = dtype_size(src.dtype());
  if (src.is_contiguous()) {
    std::memcpy(dst, src.raw_data(), src.nbytes());
    return;
  }
  const std::int64_t n = src.numel();
  if (n == 0) return;
  std::vector<std::int64_t> shape, strides;
  for (int d = 0; d < src.ndim(); ++d) {
    if (src.shape()[d] == 1) continue;
    if (!shape.empty() && strides.back() == src.strides()[d] * src.shape()[d]) {
      shape.back() *= src.shape()[d];
      strides.back() = src.strides()[d];
      continue;
    }
    shape.push_back(src.shape()[d]);
    strides.push_back(src.strides()[d]);
  }
  if (shape.empty()) {  // one element
    shape.push_back(1);
    strides.push_back(1);
  }
  // Few long rows (a broadcast scalar coalesces to one): cut the innermost
  // dim into pieces, so the threads have rows to share.
  if (n / shape.back() < 64 && shape.back() >= (1 << 16)) {
    for (std::int64_t pieces : {64, 32, 16, 8, 4, 2}) {
      if (shape.back() % pieces != 0) continue;
      const std::int64_t piece = shape.back() / pieces, step = strides.back();
      shape.back() = piece;
      shape.insert(shape.end() - 1, pieces);
      strides.insert(strides.end() - 1, step * piece);
      break;
    }
  }
  const std::int64_t rows = n / shape.back();
  auto run = [&](auto tag) {
    using U = decltype(tag);
    const U* base = static_cast<const U*>(src.raw_data());
    U* out = static_cast<U*>(dst);
#pragma omp parallel if (n > (1 << 18))
    {
#if defined(_OPENMP)
      const std::int64_t threads = omp_get_num_threads(), t = omp_get_thread_num();
#else
      const std::int64_t threads = 1, t = 0;
#endif
      gather_rows(base, out, shape, strides, rows * t / threads, rows * (t + 1) / threads);
    }
  };
  switch (item) {
    case 1: return run(std::uint8_t{});
    case 2: return run(std::uint16_t{});
    case 4: return run(std::uint32_t{});
    case 8: return run(std::uint64_t{});
    default: break;
  }
  const char* base = static_cast<const char*>(src.raw_data());  // any other size: byte by byte
  char* out = static_cast<char*>(dst);
  std::vector<std::int64_t> index(shape.size(), 0);
  std::int64_t offset = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    std::memcpy(out + i * item, base + offset * static_cast<std::int64_t>(item), item);
    for (int d = static_cast<int>(shape.size()) - 1; d >= 0; --d) {
      if (++index[d] < shape[d]) {
        offset += strides[d];
        break;
      }
      offset -= strides[d] * (index[d] - 1);
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

// d as a float rounded to odd: exact values stay, inexact ones take the
// neighbour (toward zero) with an odd last mantissa bit. A float rounded so
// and then to nearest-even at 11 or 8 bits (float16, bfloat16) equals d
// rounded once, since float keeps more than two extra bits.
float float_round_to_odd(double d) {
  float f = static_cast<float>(d);
  if (std::isnan(d) || static_cast<double>(f) == d || std::isinf(f)) return f;  // exact, NaN, or past float's range
  std::uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  if (std::fabs(static_cast<double>(f)) > std::fabs(d)) --bits;  // rounded away from zero: step back
  bits |= 1u;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

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
    if (from == DType::kFloat64 || from == DType::kInt32 || from == DType::kInt64) {
      // Wider than float's 24 bits: a plain round to float and then to the
      // half type can round twice the wrong way (a value just above a half
      // midpoint becomes the midpoint, then ties to even). Rounding to odd
      // first keeps the information the second rounding needs.
      visit_dtype(from, "astype", [&](auto from_tag) {
        using From = typename decltype(from_tag)::type;
        const From* in = static_cast<const From*>(src);
        for (std::int64_t i = 0; i < count; ++i) wide[i] = float_round_to_odd(static_cast<double>(in[i]));
      });
    } else {
      cast_host(src, from, wide.data(), DType::kFloat32, count);
    }
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
