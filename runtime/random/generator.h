// The process's random stream: a Philox seed and how many elements have
// been drawn from it. A random op reserves one position per element it
// makes (reserve), so consecutive calls never reuse a block and the same
// seed replays the same arrays, whatever the device or thread count.
// lm.random.seed / get_state / set_state are these functions.
#pragma once

#include <cstdint>

namespace loom::random {

struct StreamPosition {
  std::uint64_t seed = 0;
  std::uint64_t offset = 0;
};

// Restarts the stream at `seed` (offset 0).
void seed(std::uint64_t seed);
// Where the next draw starts.
StreamPosition state();
// Resumes the stream at a position state() returned.
void set_state(StreamPosition position);
// The position of `count` draws, the stream advanced past them (atomically:
// ops pushed from several threads get disjoint blocks).
StreamPosition reserve(std::uint64_t count);

}  // namespace loom::random
