// "1.50 GiB", "70.1 GiB", "512 B": sizes in error messages and reports,
// three significant digits.
#pragma once

#include <cstdint>
#include <cstdio>
#include <iterator>
#include <string>

namespace loom::storage {

inline std::string human_bytes(std::uint64_t bytes) {
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double value = static_cast<double>(bytes) / 1024;
  std::size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  int decimals = value < 10 ? 2 : value < 100 ? 1 : 0;
  char text[32];
  std::snprintf(text, sizeof text, "%.*f %s", decimals, value, kUnits[unit]);
  return text;
}

inline std::string human_bytes(std::int64_t bytes) {
  return bytes < 0 ? "-" + human_bytes(static_cast<std::uint64_t>(-bytes))
                   : human_bytes(static_cast<std::uint64_t>(bytes));
}

}  // namespace loom::storage
