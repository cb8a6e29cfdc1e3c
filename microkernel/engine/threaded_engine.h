// ThreadedEngine: the default engine, with a CPU worker pool, a CPU
// high-priority lane, and a compute-stream and a copy-stream worker per GPU.
// Private to microkernel/engine; users reach it through Engine::get().
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "microkernel/engine/engine.h"
#include "microkernel/engine/op_block.h"
#include "microkernel/engine/ready_queue.h"

namespace loom::engine {

struct EngineConfig {
  int cpu_threads = 1;
  std::int64_t max_pending = 65536;
  double watchdog_seconds = 0;  // 0: off
  static EngineConfig from_environment();
};

class ThreadedEngine final : public Engine {
 public:
  explicit ThreadedEngine(const EngineConfig& config);
  ~ThreadedEngine() override;  // waits for pending ops, then joins workers

  using Engine::push;  // keep the braced-list overloads visible
  using Engine::push_async;
  using Engine::push_or_run;
  Var* new_var() override;
  std::uint64_t push(SyncFn fn, Context ctx, VarList reads, VarList writes, int priority,
                     const char* name) override;
  std::uint64_t push_async(AsyncFn fn, Context ctx, VarList reads, VarList writes, int priority,
                           const char* name) override;
  bool push_or_run(SyncFn fn, Context ctx, VarList reads, VarList writes, int priority,
                   const char* name) override;
  void wait_for_var(Var* var) override;
  void wait_all() override;
  void delete_var(Var* var) override;
  std::int64_t pending() const override { return pending_.load(); }
  const char* kind() const override { return "threaded"; }
  std::string describe_pending() const override;

  // Waits (without raising) until nothing is pending or `timeout_s` passes;
  // returns whether it drained. For fork() and process exit.
  bool drain(double timeout_s);
  // Stops and joins the workers; leaks them instead if `join` is false (at
  // exit, when an op never finished and joining would hang).
  void stop_workers(bool join);
  // Completes an async op; called through Completion.
  void finish_async(Op* op, std::exception_ptr error);

 private:
  struct Worker {
    std::string track;  // its name in profiles and watchdog reports
    Device device;
    ReadyQueue* queue = nullptr;
    int priority_floor = 0;
    void* stream = nullptr;
    std::atomic<Op*> running{nullptr};
    std::thread thread;
  };
  struct GpuLanes {
    ReadyQueue queues[2];  // indexed by Lane
    std::unique_ptr<Worker> workers[2];
  };
  static constexpr int kMaxGpus = 64;

  // Appends `op` to its Vars and queues it once ready. With `run_here`, a
  // CPU op that is ready at once runs on this thread instead (push_or_run);
  // *run_here then tells whether it did.
  std::uint64_t enqueue(Op* op, VarList reads, VarList writes, bool* run_here = nullptr);
  void run_in_place(Op* op);
  ReadyQueue& queue_for(const Context& ctx);
  GpuLanes& gpu_lanes(int device_id);
  void start_worker(Worker& worker);
  void worker_loop(Worker* worker);
  // Runs `op`; returns an op to run next on the same worker, if any.
  Op* execute(Op* op, Worker* worker);
  // Releases the op's Vars, dispatches what became ready, frees the op.
  // With a worker, one ready op for its queue may be returned to run inline.
  Op* finish(Op* op, FailurePtr failure, bool ran_and_failed, Worker* worker);
  Op* finish_one(Op* op, FailurePtr failure, bool ran_and_failed, Worker* worker);
  static thread_local Worker* current_worker_;
  void wait_until(std::condition_variable& cv, const std::function<bool()>& done,
                  std::atomic<int>& waiter_count, const char* what);
  void watchdog_report(const char* what) const;

  const EngineConfig config_;
  std::mutex push_lock_;  // one total push order; see var.h
  std::uint64_t next_seq_ = 0;

  ReadyQueue cpu_queue_;
  ReadyQueue cpu_stream_queue_;                       // Lane::kStream on the CPU
  std::vector<std::unique_ptr<Worker>> cpu_workers_;  // the pool, the lane, the stream
  std::mutex gpu_lock_;
  std::atomic<GpuLanes*> gpus_[kMaxGpus] = {};
  std::vector<std::unique_ptr<GpuLanes>> gpu_storage_;

  std::atomic<std::int64_t> pending_{0};
  std::atomic<std::uint64_t> finished_{0};
  std::mutex idle_lock_;
  std::condition_variable idle_cv_;   // pending_ reached 0
  std::condition_variable space_cv_;  // pending_ fell below max_pending
  std::atomic<int> idle_waiters_{0};
  std::atomic<int> space_waiters_{0};

  FailureLog failures_;

  // Only with the watchdog on: every pending op, for its report.
  mutable std::mutex live_lock_;
  std::unordered_set<Op*> live_;
  bool stopped_ = false;
};

}  // namespace loom::engine
