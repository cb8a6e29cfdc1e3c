// The engine: loom's mutation-aware dependency scheduler.
//
// Every piece of mutable state (an array's storage, a parameter, a buffer a
// communication op fills) has a Var. Work is pushed as a function together
// with the Vars it reads and the Vars it writes. The engine promises:
//
//   An op runs after every earlier-pushed op that writes a Var it reads, and
//   after every earlier-pushed op that reads or writes a Var it writes.
//   Ops with no such conflict may run concurrently, in any order.
//
// "Earlier-pushed" is a single total order over all pushes, from all threads
// (the sequence number push() returns). A Var listed both as read and as
// written counts as written; listing a Var twice is harmless.
//
// Threads: every function here may be called from any thread, including from
// inside a running op (an op may push more ops; it must not wait on a Var its
// own successors write — that is a cycle, which the watchdog will report).
//
// Errors: when an op throws (or an async op completes with an error), the
// Vars it writes become failed. Ops that read or write a failed Var are not
// run; they carry the same error on to the Vars they write. wait_for_var()
// throws the error of a failed Var, wait_all() the first failure since the
// previous wait_all() that no wait_for_var() has thrown already, as a
// loom::Error that names the failing op and, when the pusher set one
// (OriginScope), the user-level call that pushed it. A failed Var stays
// failed; unrelated Vars are unaffected.
//
// Configuration (read once, when the engine is first used):
//   LOOM_ENGINE=naive|threaded      naive runs each op inside push()
//   LOOM_CPU_WORKER_NTHREADS=n      CPU pool size (default: physical cores)
//   LOOM_ENGINE_MAX_PENDING=n       backpressure bound (default 65536)
//   LOOM_ENGINE_WATCHDOG=seconds    report stuck waits instead of hanging
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "microkernel/storage/device.h"

namespace loom::engine {

// A Var is owned by the engine: created by new_var(), destroyed by
// delete_var() once every op pushed before the deletion has finished.
class Var;

// Where an op runs. CPU ops run on the CPU worker pool; GPU ops on the
// device's compute-stream worker or, for lane kCopy, its copy-stream worker.
// Lane kStream on the CPU is one dedicated worker that runs its ops one at a
// time, in the order they become ready: the CPU's analogue of a GPU compute
// stream, for operator kernels, which parallelise inside themselves (OpenMP)
// and would fight over the cores if the pool ran two at once. On a GPU,
// kStream is the compute stream.
enum class Lane : std::uint8_t { kCompute = 0, kCopy = 1, kStream = 2 };
struct Context {
  Device device = Device::cpu();
  Lane lane = Lane::kCompute;
};

// What a running op gets: where it runs, and on a GPU the stream (a
// cudaStream_t) its kernels must be queued on. A synchronous GPU op's stream
// is synchronized by the engine after the op returns.
struct RunContext {
  Device device;
  void* stream = nullptr;
  int worker = 0;  // index of the worker thread, for profiles and logs
};

// Ops at or above this priority also run on the CPU's high-priority lane, a
// dedicated thread, so they never queue behind long ordinary ops.
inline constexpr int kHighPriority = 100;

// Completes an async op. Call exactly once, from any thread, with nullptr
// on success or the error the work failed with. Copyable; a second call is
// reported on stderr and ignored.
class Completion {
 public:
  struct Target;  // defined by the engine; users cannot make one
  Completion() = default;
  explicit Completion(std::shared_ptr<Target> target) : target_(std::move(target)) {}
  void operator()(std::exception_ptr error = nullptr) const;

 private:
  std::shared_ptr<Target> target_;
};

using SyncFn = std::function<void(const RunContext&)>;
using AsyncFn = std::function<void(const RunContext&, Completion)>;
using VarList = std::span<Var* const>;

class Engine {
 public:
  virtual ~Engine() = default;

  // The process-wide engine, created on first use. After fork() the child
  // gets a fresh one (with fresh workers) on its next call.
  static Engine& get();

  virtual Var* new_var() = 0;

  // Pushes fn; returns its position in the global push order. `name` must
  // outlive the op (a string literal or a registry entry). Blocks while
  // LOOM_ENGINE_MAX_PENDING ops are pending, unless called from an op.
  virtual std::uint64_t push(SyncFn fn, Context ctx, VarList reads, VarList writes,
                             int priority = 0, const char* name = "op") = 0;
  // Like push(), but the op is finished only when `done` is called, which may
  // happen after fn returns, on any thread (stream callbacks, network).
  virtual std::uint64_t push_async(AsyncFn fn, Context ctx, VarList reads, VarList writes,
                                   int priority = 0, const char* name = "async op") = 0;

  // Like push(), but when every Var grants the op at once (nothing pushed
  // earlier is pending on them and none has failed) and it is a CPU op, fn
  // runs here, on the calling thread, before push_or_run returns; an
  // exception it throws then propagates to the caller instead of failing the
  // Vars. Otherwise the op is pushed exactly as push() would. Returns true
  // when fn ran here. For cheap kernels: running one in place saves the
  // hand-off to a worker (a wake-up costs more than the kernel), and the
  // order is the same because nothing it touches was pending.
  virtual bool push_or_run(SyncFn fn, Context ctx, VarList reads, VarList writes,
                           int priority = 0, const char* name = "op") = 0;

  // Blocks until every op pushed so far that writes `var` has finished;
  // throws the Var's error if it failed.
  virtual void wait_for_var(Var* var) = 0;
  // Blocks until every op pushed so far has finished; throws the first
  // failure recorded since the previous wait_all() that no wait_for_var()
  // has thrown, then forgets them all.
  virtual void wait_all() = 0;
  // Destroys `var` after every op pushed so far that uses it has finished.
  // Pushing an op that uses `var` afterwards is a use-after-free bug.
  virtual void delete_var(Var* var) = 0;

  // Ops pushed and not finished (for tests, diagnostics and backpressure).
  virtual std::int64_t pending() const = 0;
  virtual const char* kind() const = 0;  // "threaded" or "naive"
  // A human-readable list of pending ops, what they wait on, and what each
  // worker runs; printed by the watchdog.
  virtual std::string describe_pending() const = 0;

  // Convenience overloads taking braced lists: push(fn, ctx, {a}, {b}).
  std::uint64_t push(SyncFn fn, Context ctx, std::initializer_list<Var*> reads,
                     std::initializer_list<Var*> writes, int priority = 0,
                     const char* name = "op") {
    return push(std::move(fn), ctx, VarList(reads.begin(), reads.size()),
                VarList(writes.begin(), writes.size()), priority, name);
  }
  std::uint64_t push_async(AsyncFn fn, Context ctx, std::initializer_list<Var*> reads,
                           std::initializer_list<Var*> writes, int priority = 0,
                           const char* name = "async op") {
    return push_async(std::move(fn), ctx, VarList(reads.begin(), reads.size()),
                      VarList(writes.begin(), writes.size()), priority, name);
  }
  bool push_or_run(SyncFn fn, Context ctx, std::initializer_list<Var*> reads,
                   std::initializer_list<Var*> writes, int priority = 0, const char* name = "op") {
    return push_or_run(std::move(fn), ctx, VarList(reads.begin(), reads.size()),
                       VarList(writes.begin(), writes.size()), priority, name);
  }
};

// Creates an engine of the given kind ("threaded" or "naive") independent of
// the process-wide one; for tests and benchmarks that compare both.
std::unique_ptr<Engine> make_engine(const std::string& kind);

// While alive, ops pushed from this thread record `origin` (e.g. the Python
// call "lm.nd.relu(x) at train.py:12") and errors they raise name it.
class OriginScope {
 public:
  explicit OriginScope(std::string origin);
  ~OriginScope();
  OriginScope(const OriginScope&) = delete;
  OriginScope& operator=(const OriginScope&) = delete;

 private:
  std::shared_ptr<const std::string> previous_;
};

}  // namespace loom::engine
