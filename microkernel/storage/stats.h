// Per-device memory statistics, shared by every allocator in storage/.
#pragma once

#include <cstdint>

namespace loom::storage {

struct Stats {
  std::int64_t in_use = 0;       // bytes handed out and not yet freed
  std::int64_t peak = 0;         // the largest in_use has been
  std::int64_t cached = 0;       // bytes held in pools, free for reuse
  std::int64_t alloc_count = 0;  // alloc calls served (pool hits included)
  std::int64_t system_allocs = 0;  // of those, how many went to the system
};

}  // namespace loom::storage
