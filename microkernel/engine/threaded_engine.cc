#include "microkernel/engine/threaded_engine.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <sstream>

#include "microkernel/engine/engine_internal.h"
#include "microkernel/engine/profiler.h"
#include "microkernel/engine/var.h"
#include "microkernel/storage/gpu_backend.h"
#include "microkernel/storage/storage.h"

namespace loom::engine {
namespace {

// The engine whose worker this thread is (null on user threads), and the
// op it runs now.
thread_local ThreadedEngine* tl_engine = nullptr;
thread_local Op* tl_running_op = nullptr;

// Reused per thread so finishing an op allocates nothing. Wait and delete
// ops have no function; they are finished where they become ready, through
// the deferred list so finish() never recurses.
thread_local std::vector<Op*> tl_granted;
thread_local std::vector<Op*> tl_deferred;
thread_local bool tl_finishing = false;

constexpr int kAnyPriority = ReadyQueue::kAnyPriority;

bool is_trivial(const Op* op) { return op->latch != nullptr || op->deletes != nullptr; }

}  // namespace

ThreadedEngine::ThreadedEngine(const EngineConfig& config) : config_(config) {
  int pool = std::max(1, config_.cpu_threads);
  for (int i = 0; i <= pool + 1; ++i) {
    auto worker = std::make_unique<Worker>();
    const bool lane = i == pool, stream = i == pool + 1;
    worker->track = stream ? "cpu stream" : lane ? "cpu priority lane" : "cpu worker " + std::to_string(i);
    worker->device = Device::cpu();
    worker->queue = stream ? &cpu_stream_queue_ : &cpu_queue_;
    worker->priority_floor = lane ? kHighPriority : kAnyPriority;
    cpu_workers_.push_back(std::move(worker));
  }
  for (auto& worker : cpu_workers_) start_worker(*worker);
}

ThreadedEngine::~ThreadedEngine() {
  drain(0);
  stop_workers(true);
}

void ThreadedEngine::start_worker(Worker& worker) {
  // Returns once the thread runs: a fork() right after the engine is made
  // (a data loader's) then never catches a thread half-started, which
  // sanitizer runtimes do not survive (they hold locks while one starts).
  FinishLatch started;
  worker.thread = std::thread([this, w = &worker, &started] {
    started.signal();
    worker_loop(w);
  });
  started.wait(0);
}

thread_local ThreadedEngine::Worker* ThreadedEngine::current_worker_ = nullptr;

void ThreadedEngine::worker_loop(Worker* worker) {
  tl_engine = this;
  current_worker_ = worker;
  std::string stream_error;
  if (worker->device.is_gpu()) {
    try {
      storage::gpu::set_device(worker->device.id);
      worker->stream = storage::gpu::create_stream(worker->device.id);
    } catch (const std::exception& e) {
      stream_error = e.what();  // every op on this worker will fail with it
    }
  }
  while (Op* op = worker->queue->pop(worker->priority_floor)) {
    if (!stream_error.empty() && !is_trivial(op)) {
      op = finish(op, make_failure(std::make_exception_ptr(Error(ErrorKind::kRuntime, stream_error)),
                                   op->name, op->origin),
                  true, worker);
    }
    while (op != nullptr) op = execute(op, worker);
  }
  if (worker->stream != nullptr) storage::gpu::destroy_stream(worker->stream, worker->device.id);
}

// ------------------------------------------------------------------ pushing

Var* ThreadedEngine::new_var() { return detail::new_var(); }

std::uint64_t ThreadedEngine::push(SyncFn fn, Context ctx, VarList reads, VarList writes,
                                   int priority, const char* name) {
  auto op = std::make_unique<Op>(ctx, priority, name);
  op->sync_fn = std::move(fn);
  return enqueue(op.release(), reads, writes);
}

std::uint64_t ThreadedEngine::push_async(AsyncFn fn, Context ctx, VarList reads, VarList writes,
                                         int priority, const char* name) {
  auto op = std::make_unique<Op>(ctx, priority, name);
  op->async_fn = std::move(fn);
  return enqueue(op.release(), reads, writes);
}

bool ThreadedEngine::push_or_run(SyncFn fn, Context ctx, VarList reads, VarList writes,
                                 int priority, const char* name) {
  auto op = std::make_unique<Op>(ctx, priority, name);
  op->sync_fn = std::move(fn);
  bool ran_here = false;
  enqueue(op.release(), reads, writes, ctx.device.is_cpu() ? &ran_here : nullptr);
  return ran_here;
}

std::uint64_t ThreadedEngine::enqueue(Op* raw_op, VarList reads, VarList writes, bool* run_here) {
  std::unique_ptr<Op> op(raw_op);
  ReadyQueue& queue = queue_for(op->ctx);  // throws for a bad device, before any state changes
  detail::collect_vars(op->name, reads, writes, op->reads, op->writes);
  op->origin = detail::current_origin();

  if (!op->internal && tl_engine != this &&
      pending_.load(std::memory_order_relaxed) >= config_.max_pending) {
    wait_until(space_cv_, [&] { return pending_.load() < config_.max_pending; }, space_waiters_,
               "push (the pending-op bound LOOM_ENGINE_MAX_PENDING is reached)");
  }
  pending_.fetch_add(1);
  if (config_.watchdog_seconds > 0) {
    std::lock_guard<std::mutex> hold(live_lock_);
    live_.insert(op.get());
  }

  Op* pushed = op.release();
  int granted = 0;
  std::uint64_t seq;
  {
    std::lock_guard<std::mutex> hold(push_lock_);
    seq = pushed->seq = next_seq_++;
    pushed->waiting.store(1 + static_cast<int>(pushed->reads.size() + pushed->writes.size()),
                          std::memory_order_relaxed);
    for (Var* var : pushed->reads) granted += var->append_read(pushed);
    for (Var* var : pushed->writes) granted += var->append_write(pushed);
  }
  // The extra count kept the op from becoming ready half-appended.
  if (pushed->waiting.fetch_sub(granted + 1) == granted + 1) {
    if (is_trivial(pushed)) {
      finish(pushed, nullptr, false, nullptr);
    } else if (run_here != nullptr && !detail::first_failure(*pushed)) {
      *run_here = true;
      run_in_place(pushed);
    } else {
      queue.push(pushed);
    }
  }
  return seq;
}

void ThreadedEngine::run_in_place(Op* op) {
  // The op holds its Vars (granted above), so nothing conflicting runs
  // meanwhile; an exception goes to the caller and the Vars stay healthy.
  Op* outer_op = tl_running_op;
  tl_running_op = op;
  const bool profiling = profiler::enabled();
  const std::int64_t start = profiling ? profiler::detail::now_ns() : 0;
  std::exception_ptr error;
  try {
    op->sync_fn(RunContext{Device::cpu(), nullptr, -1});
  } catch (...) {
    error = std::current_exception();
  }
  if (profiling) {
    profiler::detail::record(op->name, Device::cpu(), "in place (caller)", start, profiler::detail::now_ns());
  }
  tl_running_op = outer_op;
  finish(op, nullptr, false, nullptr);
  if (error) std::rethrow_exception(error);
}

ReadyQueue& ThreadedEngine::queue_for(const Context& ctx) {
  if (ctx.device.is_cpu()) return ctx.lane == Lane::kStream ? cpu_stream_queue_ : cpu_queue_;
  return gpu_lanes(ctx.device.id).queues[ctx.lane == Lane::kCopy ? 1 : 0];
}

ThreadedEngine::GpuLanes& ThreadedEngine::gpu_lanes(int device_id) {
  if (device_id >= 0 && device_id < kMaxGpus) {
    if (GpuLanes* lanes = gpus_[device_id].load(std::memory_order_acquire)) return *lanes;
  }
  std::lock_guard<std::mutex> hold(gpu_lock_);
  int visible = storage::gpu_count();
  LOOM_CHECK(device_id >= 0 && device_id < visible && device_id < kMaxGpus,
             "engine: cannot run an op on gpu(", device_id, "): ", visible,
             " GPU(s) visible to this process");
  if (GpuLanes* lanes = gpus_[device_id].load()) return *lanes;
  auto lanes = std::make_unique<GpuLanes>();
  const char* names[2] = {" compute", " copy"};
  for (int lane = 0; lane < 2; ++lane) {
    auto worker = std::make_unique<Worker>();
    worker->track = Device::gpu(device_id).str() + names[lane];
    worker->device = Device::gpu(device_id);
    worker->queue = &lanes->queues[lane];
    worker->priority_floor = kAnyPriority;
    lanes->workers[lane] = std::move(worker);
  }
  for (auto& worker : lanes->workers) start_worker(*worker);
  gpus_[device_id].store(lanes.get(), std::memory_order_release);
  gpu_storage_.push_back(std::move(lanes));
  return *gpu_storage_.back();
}

// ------------------------------------------------------------------ running

Op* ThreadedEngine::execute(Op* op, Worker* worker) {
  FailurePtr inherited = detail::first_failure(*op);
  if (inherited || is_trivial(op)) return finish(op, std::move(inherited), false, worker);

  RunContext run{worker->device, worker->stream, 0};
  worker->running.store(op, std::memory_order_relaxed);
  Op* outer_op = tl_running_op;
  tl_running_op = op;
  const bool profiling = profiler::enabled();
  std::int64_t start = profiling ? profiler::detail::now_ns() : 0;

  if (op->async_fn) {
    op->start_ns = start;
    Completion done = detail::make_completion(
        op->name, [this, op](std::exception_ptr error) { finish_async(op, std::move(error)); });
    // The completion may finish and free the op while fn is still running
    // here (it may complete from another thread at once), so fn runs from
    // this frame, not from the op.
    AsyncFn fn = std::move(op->async_fn);
    try {
      fn(run, done);
    } catch (...) {
      done(std::current_exception());  // ignored if it had already completed
    }
    tl_running_op = outer_op;
    worker->running.store(nullptr, std::memory_order_relaxed);
    return nullptr;
  }

  FailurePtr failure;
  try {
    op->sync_fn(run);
    if (run.stream != nullptr) storage::gpu::sync_stream(run.stream, run.device.id);
  } catch (...) {
    failure = make_failure(std::current_exception(), op->name, op->origin);
  }
  // Free what the function captured (arrays, and so their memory) before the
  // op's Vars are released: a thread woken by the release then finds no
  // stale reference from a finished op (assign's "does anything else share
  // this memory" check relies on that), and freed blocks return to the pool
  // sooner.
  try {
    op->sync_fn = nullptr;
  } catch (...) {
    if (!failure) failure = make_failure(std::current_exception(), op->name, op->origin);
  }
  if (profiling) {
    profiler::detail::record(op->name, worker->device, worker->track.c_str(), start,
                             profiler::detail::now_ns());
  }
  tl_running_op = outer_op;
  worker->running.store(nullptr, std::memory_order_relaxed);
  bool failed = failure != nullptr;
  return finish(op, std::move(failure), failed, worker);
}

void ThreadedEngine::finish_async(Op* op, std::exception_ptr error) {
  FailurePtr failure = error ? make_failure(error, op->name, op->origin) : nullptr;
  if (op->start_ns != 0 && profiler::enabled()) {
    profiler::detail::record(op->name, op->ctx.device, "async completions", op->start_ns,
                             profiler::detail::now_ns());
  }
  bool failed = failure != nullptr;
  finish(op, std::move(failure), failed, nullptr);
}

Op* ThreadedEngine::finish(Op* op, FailurePtr failure, bool ran_and_failed, Worker* worker) {
  if (tl_finishing) {  // reached from inside finish_one (a destructor pushed)
    if (failure) for (Var* var : op->writes) var->failure = failure;
    tl_deferred.push_back(op);
    return nullptr;
  }
  tl_finishing = true;
  Op* continuation = finish_one(op, std::move(failure), ran_and_failed, worker);
  while (!tl_deferred.empty()) {
    Op* next = tl_deferred.back();
    tl_deferred.pop_back();
    finish_one(next, nullptr, false, nullptr);
  }
  tl_finishing = false;
  return continuation;
}

Op* ThreadedEngine::finish_one(Op* op, FailurePtr failure, bool ran_and_failed, Worker* worker) {
  if (failure) {
    for (Var* var : op->writes) var->failure = failure;
    if (ran_and_failed) failures_.record(failure);
  }

  std::vector<Op*>& granted = tl_granted;
  granted.clear();
  Var* dead[2] = {nullptr, nullptr};  // at most the deleted Var plus one other
  std::vector<Var*> more_dead;
  auto bury = [&](Var* var) {
    if (!dead[0]) dead[0] = var;
    else if (!dead[1]) dead[1] = var;
    else more_dead.push_back(var);
  };
  for (Var* var : op->reads)
    if (var->complete_read(granted)) bury(var);
  for (Var* var : op->writes) {
    bool now_dead = var == op->deletes ? var->release_for_delete(granted) : var->complete_write(granted);
    if (now_dead) bury(var);
  }

  Op* continuation = nullptr;
  for (Op* next : granted) {
    if (next->waiting.fetch_sub(1) != 1) continue;
    if (is_trivial(next)) {
      tl_deferred.push_back(next);
      continue;
    }
    ReadyQueue& queue = queue_for(next->ctx);
    // Run one successor right here when nobody else is waiting for work:
    // a dependent chain then costs no queue hand-off and no wake-up.
    if (continuation == nullptr && worker != nullptr && worker->priority_floor == kAnyPriority &&
        &queue == worker->queue && queue.looks_empty()) {
      continuation = next;
    } else {
      queue.push(next);
    }
  }

  for (Var* var : dead)
    if (var) detail::destroy_var(var);
  for (Var* var : more_dead) detail::destroy_var(var);
  if (op->latch) op->latch->signal();
  if (config_.watchdog_seconds > 0) {
    std::lock_guard<std::mutex> hold(live_lock_);
    live_.erase(op);
  }
  delete op;

  finished_.fetch_add(1, std::memory_order_relaxed);
  std::int64_t now_pending = pending_.fetch_sub(1) - 1;
  if (now_pending == 0 && idle_waiters_.load() > 0) {
    std::lock_guard<std::mutex> hold(idle_lock_);
    idle_cv_.notify_all();
  }
  if (now_pending < config_.max_pending && space_waiters_.load() > 0) {
    std::lock_guard<std::mutex> hold(idle_lock_);
    space_cv_.notify_all();
  }
  return continuation;
}

// ------------------------------------------------------------------ waiting

void ThreadedEngine::wait_until(std::condition_variable& cv, const std::function<bool()>& done,
                                std::atomic<int>& waiter_count, const char* what) {
  waiter_count.fetch_add(1);
  std::unique_lock<std::mutex> hold(idle_lock_);
  std::uint64_t progress = finished_.load();
  while (!done()) {
    if (config_.watchdog_seconds <= 0) {
      cv.wait(hold);
      continue;
    }
    if (cv.wait_for(hold, std::chrono::duration<double>(config_.watchdog_seconds), done)) break;
    std::uint64_t now = finished_.load();
    if (now == progress) watchdog_report(what);
    progress = now;
  }
  waiter_count.fetch_sub(1);
}

void ThreadedEngine::wait_for_var(Var* var) {
  LOOM_CHECK(var != nullptr, "engine: wait_for_var(nullptr)");
  if (tl_running_op != nullptr) {
    LOOM_CHECK(!tl_running_op->writes.contains(var),
               "engine: op '", tl_running_op->name,
               "' waits for a var it writes itself; that wait could never end");
  }
  if (!var->no_pending_writes()) {
    FinishLatch latch;
    auto op = std::make_unique<Op>();
    op->name = "wait_for_var";
    op->latch = &latch;
    op->internal = true;
    Var* reads[1] = {var};
    enqueue(op.release(), VarList(reads, 1), VarList());
    Worker* self = tl_engine == this ? current_worker_ : nullptr;
    double slice = config_.watchdog_seconds > 0 ? config_.watchdog_seconds : 0;
    if (self != nullptr) slice = 0.001;  // a worker helps instead of sleeping
    std::uint64_t progress = finished_.load();
    while (!latch.wait(slice)) {
      if (self != nullptr) {
        // Waiting inside an op: run other ready ops meanwhile, so a nested
        // wait cannot starve the pool that must produce what it waits for.
        while (Op* other = self->queue->try_pop(self->priority_floor)) {
          while (other != nullptr) other = execute(other, self);
          if (latch.is_done()) break;
        }
        continue;
      }
      std::uint64_t now = finished_.load();
      if (now == progress) watchdog_report("wait_for_var");
      progress = now;
    }
  }
  if (var->failure) {
    failures_.reported(var->failure);
    var->failure->raise();
  }
}

void ThreadedEngine::wait_all() {
  LOOM_CHECK(tl_engine != this || tl_running_op == nullptr, "engine: wait_all() called inside op '",
             tl_running_op ? tl_running_op->name : "?",
             "' would wait for that op itself; wait for the vars it needs instead");
  wait_until(idle_cv_, [&] { return pending_.load() == 0; }, idle_waiters_, "wait_all");
  failures_.raise_and_clear();
}

void ThreadedEngine::delete_var(Var* var) {
  if (var == nullptr) return;
  auto op = std::make_unique<Op>();
  op->name = "delete_var";
  op->deletes = var;
  op->internal = true;
  Var* writes[1] = {var};
  enqueue(op.release(), VarList(), VarList(writes, 1));
}

bool ThreadedEngine::drain(double timeout_s) {
  // Called at exit and before fork(): it must not raise, and must not wait
  // for itself when a worker thread forks.
  if (tl_engine == this) return pending_.load() == 0;
  idle_waiters_.fetch_add(1);
  std::unique_lock<std::mutex> hold(idle_lock_);
  auto done = [&] { return pending_.load() == 0; };
  bool drained = true;
  if (timeout_s <= 0) {
    idle_cv_.wait(hold, done);
  } else {
    drained = idle_cv_.wait_for(hold, std::chrono::duration<double>(timeout_s), done);
  }
  idle_waiters_.fetch_sub(1);
  return drained;
}

void ThreadedEngine::stop_workers(bool join) {
  if (stopped_) return;
  stopped_ = true;
  std::vector<Worker*> all;
  for (auto& w : cpu_workers_) all.push_back(w.get());
  cpu_queue_.stop();
  cpu_stream_queue_.stop();
  {
    std::lock_guard<std::mutex> hold(gpu_lock_);
    for (auto& lanes : gpu_storage_) {
      for (int lane = 0; lane < 2; ++lane) {
        lanes->queues[lane].stop();
        all.push_back(lanes->workers[lane].get());
      }
    }
  }
  for (Worker* w : all) {
    if (!w->thread.joinable()) continue;
    if (join && w->thread.get_id() != std::this_thread::get_id()) {
      w->thread.join();
    } else {
      w->thread.detach();
    }
  }
}

// ------------------------------------------------------------------ diagnosis

std::string ThreadedEngine::describe_pending() const {
  std::ostringstream out;
  out << "engine: " << pending_.load() << " op(s) pending, " << finished_.load()
      << " finished so far\n";
  auto describe_worker = [&](const Worker& w) {
    Op* op = w.running.load();
    out << "  " << w.track << ": ";
    if (op) out << "running #" << op->seq << " '" << op->name << "'\n";
    else out << "idle\n";
  };
  for (const auto& w : cpu_workers_) describe_worker(*w);
  for (int id = 0; id < kMaxGpus; ++id) {
    if (GpuLanes* lanes = gpus_[id].load()) {
      for (const auto& w : lanes->workers) describe_worker(*w);
    }
  }
  if (config_.watchdog_seconds <= 0) {
    out << "  (set LOOM_ENGINE_WATCHDOG=seconds to list each pending op and its vars)\n";
    return out.str();
  }
  std::lock_guard<std::mutex> hold(live_lock_);
  std::vector<Op*> ops(live_.begin(), live_.end());
  std::sort(ops.begin(), ops.end(), [](Op* a, Op* b) { return a->seq < b->seq; });
  std::size_t shown = 0;
  for (Op* op : ops) {
    if (shown++ == 32) {
      out << "  ... " << ops.size() - 32 << " more\n";
      break;
    }
    out << "  op #" << op->seq << " '" << op->name << "' on " << op->ctx.device.str();
    if (op->origin) out << " pushed by " << *op->origin;
    out << ", waiting for " << op->waiting.load() << " var(s)\n";
    for (Var* var : op->reads) out << "    reads  " << var->describe() << "\n";
    for (Var* var : op->writes) out << "    writes " << var->describe() << "\n";
  }
  return out.str();
}

void ThreadedEngine::watchdog_report(const char* what) const {
  std::string report = describe_pending();
  std::fprintf(stderr, "loom watchdog: %s made no progress for %.1f s\n%s", what,
               config_.watchdog_seconds, report.c_str());
  std::fflush(stderr);
}

}  // namespace loom::engine
