#include "microkernel/engine/naive_engine.h"

#include "microkernel/engine/engine_internal.h"
#include "microkernel/engine/profiler.h"
#include "microkernel/engine/var.h"
#include "microkernel/storage/gpu_backend.h"
#include "microkernel/storage/storage.h"

namespace loom::engine {

Var* NaiveEngine::new_var() { return detail::new_var(); }

std::uint64_t NaiveEngine::push(SyncFn fn, Context ctx, VarList reads, VarList writes,
                                int priority, const char* name) {
  Op op(ctx, priority, name);
  op.sync_fn = std::move(fn);
  return run(op, reads, writes);
}

std::uint64_t NaiveEngine::push_async(AsyncFn fn, Context ctx, VarList reads, VarList writes,
                                      int priority, const char* name) {
  Op op(ctx, priority, name);
  op.async_fn = std::move(fn);
  return run(op, reads, writes);
}

bool NaiveEngine::push_or_run(SyncFn fn, Context ctx, VarList reads, VarList writes, int priority,
                              const char* name) {
  Op op(ctx, priority, name);
  op.sync_fn = std::move(fn);
  bool ran = false;
  run(op, reads, writes, ctx.device.is_cpu(), &ran);
  return ran && ctx.device.is_cpu();
}

std::uint64_t NaiveEngine::run(Op& op, VarList reads, VarList writes, bool rethrow, bool* ran) {
  if (op.ctx.device.is_gpu()) {
    int visible = storage::gpu_count();
    LOOM_CHECK(op.ctx.device.id >= 0 && op.ctx.device.id < visible, "engine: cannot run op '",
               op.name, "' on ", op.ctx.device.str(), ": ", visible,
               " GPU(s) visible to this process");
  }
  detail::collect_vars(op.name, reads, writes, op.reads, op.writes);
  op.origin = detail::current_origin();
  std::lock_guard<std::recursive_mutex> hold(run_lock_);
  op.seq = next_seq_++;

  FailurePtr failure = detail::first_failure(op);
  bool ran_and_failed = false;
  if (!failure) {
    if (ran != nullptr) *ran = true;
    RunContext run{op.ctx.device, nullptr, 0};
    const bool profiling = profiler::enabled();
    std::int64_t start = profiling ? profiler::detail::now_ns() : 0;
    std::exception_ptr error;
    try {
      if (op.ctx.device.is_gpu()) storage::gpu::set_device(op.ctx.device.id);
      if (op.async_fn) {
        // Wait here for the completion, wherever it comes from. The failure
        // is built on the completing thread, so the exception object never
        // crosses threads (libstdc++'s exception_ptr is invisible to TSan).
        FinishLatch latch;
        FailurePtr async_failure;
        Completion done = detail::make_completion(op.name, [&](std::exception_ptr e) {
          if (e) async_failure = make_failure(e, op.name, op.origin);
          latch.signal();
        });
        try {
          op.async_fn(run, done);
        } catch (...) {
          done(std::current_exception());
        }
        latch.wait(0);
        if (async_failure) {
          failure = std::move(async_failure);
          ran_and_failed = true;
        }
      } else {
        op.sync_fn(run);
        // Ops queue on the default stream (run.stream is null); finish them
        // so a failing kernel is blamed on this op, as the threaded engine does.
        if (op.ctx.device.is_gpu()) storage::gpu::sync_stream(nullptr, op.ctx.device.id);
      }
    } catch (...) {
      error = std::current_exception();
    }
    if (profiling) {
      profiler::detail::record(op.name, op.ctx.device, "caller (naive engine)", start,
                               profiler::detail::now_ns());
    }
    if (error && rethrow) std::rethrow_exception(error);
    if (error) {
      failure = make_failure(error, op.name, op.origin);
      ran_and_failed = true;
    }
  }
  if (failure) {
    for (Var* var : op.writes) var->failure = failure;
    if (ran_and_failed) failures_.record(failure);
  }
  return op.seq;
}

void NaiveEngine::wait_for_var(Var* var) {
  LOOM_CHECK(var != nullptr, "engine: wait_for_var(nullptr)");
  std::lock_guard<std::recursive_mutex> hold(run_lock_);
  if (var->failure) {
    failures_.reported(var->failure);
    var->failure->raise();
  }
}

void NaiveEngine::wait_all() {
  failures_.raise_and_clear();
}

void NaiveEngine::delete_var(Var* var) {
  if (var == nullptr) return;
  std::lock_guard<std::recursive_mutex> hold(run_lock_);
  detail::destroy_var(var);
}

}  // namespace loom::engine
