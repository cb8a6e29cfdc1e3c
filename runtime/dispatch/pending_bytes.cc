// See pending_bytes.h.
#include "runtime/dispatch/pending_bytes.h"

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>

namespace loom::detail {
namespace {

std::mutex g_mutex;
std::condition_variable g_freed;
std::int64_t g_pending = 0;

std::int64_t read_limit() {
  const char* env = std::getenv("LOOM_MAX_PENDING_BYTES");
  // 64 MiB: enough run-ahead to hide dispatch behind the kernels, small
  // enough that a loop which never syncs does not hold many steps of
  // activations at once (a LeNet step at batch 128 queues ~60 MB; 2 GiB held
  // 2.3 GB and ran 2x slower from paging in fresh memory, bench/gluon_train.py).
  constexpr std::int64_t kDefault = std::int64_t{64} << 20;
  if (env == nullptr || *env == '\0') return kDefault;
  char* end = nullptr;
  const long long v = std::strtoll(env, &end, 10);
  return (end != env && v > 0) ? v : kDefault;
}

void release(std::int64_t bytes) {
  {
    std::lock_guard<std::mutex> hold(g_mutex);
    g_pending -= bytes;
  }
  g_freed.notify_all();
}

}  // namespace

std::int64_t max_pending_bytes() {
  static const std::int64_t limit = read_limit();
  return limit;
}

std::int64_t pending_bytes() {
  std::lock_guard<std::mutex> hold(g_mutex);
  return g_pending;
}

std::shared_ptr<void> reserve_pending_bytes(std::int64_t bytes) {
  if (bytes <= 0) return nullptr;
  const std::int64_t limit = max_pending_bytes();
  {
    std::unique_lock<std::mutex> hold(g_mutex);
    // Best effort: after 10 s the op is queued anyway, so a queued op that
    // cannot finish before this thread moves on (one waiting for a lock
    // the caller holds) delays it instead of hanging it.
    g_freed.wait_for(hold, std::chrono::seconds(10), [&] { return g_pending == 0 || g_pending + bytes <= limit; });
    g_pending += bytes;
  }
  // an empty deleter's object: the token only marks the reservation's end
  return std::shared_ptr<void>(nullptr, [bytes](void*) { release(bytes); });
}

}  // namespace loom::detail
