#include "runtime/dispatch/launch.h"

#include "microkernel/engine/profiler.h"
#include "runtime/dispatch/pending_bytes.h"
#include "runtime/ndarray/abstract_eval.h"

#include <cstdlib>
#include <vector>

namespace loom {
namespace {

thread_local int tl_kernel_depth = 0;

std::int64_t read_inline_limit() {
  const char* env = std::getenv("LOOM_INLINE_WORK");
  // About 1M elements read plus written: a kernel of a few hundred
  // microseconds, for which the hand-off to the worker and the wake-up of a
  // waiting caller (10-20 us) stay under a tenth of the time. Below it the
  // hand-off would dominate what asynchrony buys.
  constexpr std::int64_t kDefault = std::int64_t{1} << 20;
  if (env == nullptr || *env == '\0') return kDefault;
  char* end = nullptr;
  const long long v = std::strtoll(env, &end, 10);
  return (end != env && v >= 0) ? v : kDefault;
}

void add_vars(std::span<const NDArray> arrays, std::vector<engine::Var*>& vars, std::int64_t& work) {
  for (const NDArray& a : arrays) {
    if (!a.defined()) continue;
    vars.push_back(a.storage()->engine_var());
    work += a.numel();
  }
}

}  // namespace

std::int64_t inline_work_limit() {
  static const std::int64_t limit = read_inline_limit();
  return limit;
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
  // While the profiler records, cheap ops go through the engine too: its
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
