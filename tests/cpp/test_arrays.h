// Small arrays for the C++ tests: made from a list of values, read back as
// one. Header-only; each test file includes what it uses.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/ndarray/ndarray.h"

namespace loom::test {

// A 1-D float64 array (or `shape`, which must hold v.size() elements).
inline NDArray doubles(const std::vector<double>& v, Shape shape = {}) {
  if (shape.empty()) shape = {static_cast<std::int64_t>(v.size())};
  return NDArray::from_host(v.data(), static_cast<std::int64_t>(v.size()), shape, DType::kFloat64);
}

inline NDArray floats(const std::vector<float>& v, const Shape& shape) {
  return NDArray::from_host(v.data(), static_cast<std::int64_t>(v.size()), shape, DType::kFloat32);
}

// The elements of `a` (which must have dtype T), waiting for pending work.
template <typename T>
std::vector<T> values_of(const NDArray& a) {
  std::vector<T> out(static_cast<std::size_t>(a.numel()));
  a.copy_to_host(out.data());
  return out;
}

}  // namespace loom::test
