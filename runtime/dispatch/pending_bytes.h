// Backpressure on the bytes queued CPU ops will write. A thread that queues
// ops faster than the engine runs them (a Python loop with no read of a
// result) otherwise allocates every output up front: 1000 copies of a
// 16 MiB array in a loop held 16.7 GB before the first copy ran. submit()
// reserves an op's output bytes before pushing it and the op releases them
// when its function is destroyed (after it ran, or when it is skipped
// because an input failed); a reservation past the limit waits until
// enough queued ops have finished. Nothing pending never waits, so one op
// larger than the limit still runs; a wait gives up after 10 s (best
// effort, never a hang). Kernels that launch ops never wait (they hold the
// arrays those ops touch).
#pragma once

#include <cstdint>
#include <memory>

namespace loom::detail {

// LOOM_MAX_PENDING_BYTES, default 64 MiB (read once).
std::int64_t max_pending_bytes();

// Bytes reserved by queued ops right now.
std::int64_t pending_bytes();

// Waits while `bytes` more would pass the limit and something is pending,
// then reserves them; the reservation ends when the returned token is
// destroyed (capture it in the op's function).
std::shared_ptr<void> reserve_pending_bytes(std::int64_t bytes);

}  // namespace loom::detail
