#include "runtime/random/generator.h"

#include <mutex>
#include <random>

namespace loom::random {
namespace {

// Seeded from the OS until the program calls seed(): two runs differ unless asked not to.
StreamPosition initial() {
  std::random_device device;
  return {(static_cast<std::uint64_t>(device()) << 32) | device(), 0};
}

std::mutex& guard() {
  static std::mutex m;
  return m;
}

StreamPosition& stream() {
  static StreamPosition position = initial();
  return position;
}

}  // namespace

void seed(std::uint64_t value) {
  std::lock_guard lock(guard());
  stream() = {value, 0};
}

StreamPosition state() {
  std::lock_guard lock(guard());
  return stream();
}

void set_state(StreamPosition position) {
  std::lock_guard lock(guard());
  stream() = position;
}

StreamPosition reserve(std::uint64_t count) {
  std::lock_guard lock(guard());
  const StreamPosition at = stream();
  stream().offset += count;
  return at;
}

}  // namespace loom::random
