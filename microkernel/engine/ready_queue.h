// ReadyQueue: ops whose dependencies are satisfied, waiting for a worker.
// Private to microkernel/engine.
//
// Ordered by priority (higher first), then by push order, so among ready ops
// the most urgent runs first and equal ones stay FIFO. Consumers are either
// ordinary workers (take anything) or the high-priority lane (takes only ops
// at or above kHighPriority); each kind sleeps on its own condition variable
// so a push wakes exactly one worker that can take the op. A worker that
// finds the queue empty spins briefly before sleeping: bursts of small ops
// then cost no futex wake-up per op.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <queue>
#include <vector>

#include "microkernel/engine/op_block.h"

namespace loom::engine {

class ReadyQueue {
 public:
  void push(Op* op);
  // Blocks for the best op with priority >= floor (pass kAnyPriority for an
  // ordinary worker); nullptr once stopped.
  Op* pop(int priority_floor);
  // Non-blocking pop; nullptr when nothing at or above the floor is ready.
  Op* try_pop(int priority_floor);
  // Approximate; for the "run my successor inline" shortcut.
  bool looks_empty() const { return size_.load(std::memory_order_relaxed) == 0; }
  void stop();

  static constexpr int kAnyPriority = -2147483647 - 1;

 private:
  struct Later {
    bool operator()(const Op* a, const Op* b) const {
      return a->priority != b->priority ? a->priority < b->priority : a->seq > b->seq;
    }
  };
  bool has_work_locked(int floor) const { return !heap_.empty() && heap_.top()->priority >= floor; }
  Op* take_locked();

  std::mutex lock_;
  std::condition_variable wake_pool_, wake_lane_;
  std::priority_queue<Op*, std::vector<Op*>, Later> heap_;
  std::atomic<int> size_{0};
  int pool_sleepers_ = 0, lane_sleepers_ = 0;
  bool stopping_ = false;
};

}  // namespace loom::engine
