#include "runtime/dispatch/launch.h"

#include "microkernel/engine/profiler.h"
#include "runtime/dispatch/pending_bytes.h"
#include "runtime/ndarray/abstract_eval.h"

#include <atomic>
#include <cstdlib>
#include <limits>
#include <vector>

namespace loom {
namespace {

thread_local int tl_kernel_depth = 0;

// No limit by default: a kernel whose arrays have nothing pending runs on
// the calling thread, whatever its size. Queuing large kernels on the CPU
// stream's worker made two threads fork OpenMP teams (the caller for small
// kernels, the worker for large ones); with more OpenMP threads than cores,
// libgomp stops spinning at its barriers and every parallel region pays a
// futex sleep and wake-up. After one 16M-element kernel had run on the
// worker, a 128K-element add on the caller took 0.101 ms instead of 0.011,
// a Gluon LeNet step 8.2 ms instead of 3.9, an MLP step 3.0 ms instead of
// 1.4 (docs/async.md). On top of that, a worker's team and the Python thread
// that keeps issuing ops share the cores, and a team waits at each barrier
// for whichever of its threads was preempted.
constexpr std::int64_t kNoLimit = std::numeric_limits<std::int64_t>::max();

std::int64_t read_inline_limit() {
  const char* env = std::getenv("LOOM_INLINE_WORK");
  if (env == nullptr || *env == '\0') return kNoLimit;
  char* end = nullptr;
  const long long v = std::strtoll(env, &end, 10);
  return (end != env && v >= 0) ? v : kNoLimit;
}

std::atomic<std::int64_t>& inline_limit() {
  static std::atomic<std::int64_t> limit{read_inline_limit()};
  return limit;
}

void add_vars(std::span<const NDArray> arrays, std::vector<engine::Var*>& vars, std::int64_t& work) {
  for (const NDArray& a : arrays) {
    if (!a.defined()) continue;
    vars.push_back(a.storage()->engine_var());
    work += a.numel();
  }
}

}  // namespace

std::int64_t inline_work_limit() { return inline_limit().load(std::memory_order_relaxed); }

std::int64_t set_inline_work_limit(std::int64_t elements) {
  return inline_limit().exchange(elements < 0 ? kNoLimit : elements);
}

bool in_kernel() { return tl_kernel_depth > 0; }

bool should_run_kernels() { return !abstract_eval(); }

void note_overwrite(const NDArray& a) {
  if (tl_kernel_depth == 0) a.storage()->bump_version();
}

namespace detail {

KernelScope::KernelScope() { ++tl_kernel_depth; }
KernelScope::~KernelScope() { --tl_kernel_depth; }

Route route(std::span<const NDArray> reads, std::span<const NDArray> writes) {
  if (tl_kernel_depth > 0) return Route::kDirect;
  if (abstract_eval()) return Route::kSkip;
  std::int64_t work = 0;
  bool tracked = false, seen = false;
  for (std::span<const NDArray> arrays : {writes, reads}) {
    for (const NDArray& a : arrays) {
      if (!a.defined()) continue;
      if (!seen && !a.device().is_cpu()) return Route::kDirect;
      seen = true;
      work += a.numel();
      tracked |= a.storage()->existing_engine_var() != nullptr;
    }
  }
  if (!seen) return Route::kDirect;  // nothing to order
  // While the profiler records, kernels go through the engine too: its
  // push_or_run still runs them here at once, and records them.
  const bool cheap = work <= inline_work_limit() && !tracked;
  return cheap && !engine::profiler::enabled() ? Route::kInPlace : Route::kEngine;
}

void submit(const char* op, std::span<const NDArray> reads, std::span<const NDArray> writes,
            engine::SyncFn body) {
  std::vector<engine::Var*> read_vars, write_vars;
  read_vars.reserve(reads.size());
  write_vars.reserve(writes.size());
  std::int64_t work = 0;
  add_vars(reads, read_vars, work);
  add_vars(writes, write_vars, work);
  // Backpressure: wait while too many queued bytes would be written (not
  // inside a kernel: its ops run at once and it holds what they touch).
  std::int64_t bytes = 0;
  for (const NDArray& a : writes) {
    if (a.defined()) bytes += static_cast<std::int64_t>(a.nbytes());
  }
  if (tl_kernel_depth == 0 && bytes > 0) {
    body = [body = std::move(body), token = reserve_pending_bytes(bytes)](const engine::RunContext& run) mutable {
      body(run);
    };
  }
  const engine::Context where{Device::cpu(), engine::Lane::kStream};
  engine::Engine& engine = engine::Engine::get();
  if (work <= inline_work_limit()) {
    engine.push_or_run(std::move(body), where, read_vars, write_vars, 0, op);
  } else {
    engine.push(std::move(body), where, read_vars, write_vars, 0, op);
  }
}

}  // namespace detail
}  // namespace loom
