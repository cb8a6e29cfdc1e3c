// What the engine keeps for one pushed op, and how a failure is recorded.
// Private to microkernel/engine.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "microkernel/base/error.h"
#include "microkernel/engine/engine.h"
#include "microkernel/engine/var_set.h"

namespace loom::engine {

// A failure travels as one shared, immutable record: the op that failed
// first, its message, and its kind (so Python still raises ValueError for a
// shape error thrown inside an async op). Ops skipped because of it share
// the same record, so every wait reports the root cause, not a symptom.
struct Failure {
  ErrorKind kind = ErrorKind::kRuntime;
  std::string message;  // complete: "<what> [in engine op 'x' ...]"
  [[noreturn]] void raise() const { throw Error(kind, message); }
};
using FailurePtr = std::shared_ptr<const Failure>;

// Builds the Failure for `error` thrown by `op_name`.
FailurePtr make_failure(std::exception_ptr error, const char* op_name,
                        const std::shared_ptr<const std::string>& origin);

// Signalled when an op finishes; how wait_for_var sleeps.
struct FinishLatch {
  std::mutex lock;
  std::condition_variable cv;
  bool done = false;
  void signal() {
    std::lock_guard<std::mutex> hold(lock);
    done = true;
    cv.notify_all();
  }
  bool is_done() {
    std::lock_guard<std::mutex> hold(lock);
    return done;
  }
  // Waits at most `seconds` (forever if <= 0); returns whether it finished.
  bool wait(double seconds) {
    std::unique_lock<std::mutex> hold(lock);
    if (seconds <= 0) {
      cv.wait(hold, [&] { return done; });
      return true;
    }
    return cv.wait_for(hold, std::chrono::duration<double>(seconds), [&] { return done; });
  }
};

// The failures since the last wait_all() that no wait_for_var() has
// reported: wait_all() raises the first. A failure the user already saw (and
// perhaps handled) at a wait on the array it broke is not raised again.
class FailureLog {
 public:
  void record(const FailurePtr& failure) {
    std::lock_guard<std::mutex> hold(lock_);
    if (unreported_.size() < kKept) unreported_.push_back(failure);
  }
  // wait_for_var raised `failure`.
  void reported(const FailurePtr& failure) {
    std::lock_guard<std::mutex> hold(lock_);
    std::erase(unreported_, failure);
  }
  // Raises the first unreported failure, if any, and forgets them all.
  void raise_and_clear() {
    FailurePtr failure;
    {
      std::lock_guard<std::mutex> hold(lock_);
      if (!unreported_.empty()) failure = unreported_.front();
      unreported_.clear();
    }
    if (failure) failure->raise();
  }

 private:
  static constexpr std::size_t kKept = 64;  // a storm of failures keeps its first ones
  std::mutex lock_;
  std::vector<FailurePtr> unreported_;
};

struct Op {
  Op() = default;
  Op(Context ctx_, int priority_, const char* name_) : ctx(ctx_), priority(priority_), name(name_) {}

  SyncFn sync_fn;
  AsyncFn async_fn;  // set instead of sync_fn for push_async
  Context ctx;
  VarSet reads;   // deduplicated, disjoint from writes
  VarSet writes;  // deduplicated
  int priority = 0;
  std::uint64_t seq = 0;
  const char* name = "op";
  std::shared_ptr<const std::string> origin;
  // Vars that have not yet granted this op, plus one held by push() until
  // every Var has seen it; the op is ready when this reaches zero.
  std::atomic<int> waiting{0};
  Var* deletes = nullptr;         // delete_var: destroy this Var when finished
  FinishLatch* latch = nullptr;   // wait_for_var: signal when finished
  bool internal = false;
  std::int64_t start_ns = 0;      // async ops under the profiler          // pushed by the engine itself (no backpressure)
};

}  // namespace loom::engine
