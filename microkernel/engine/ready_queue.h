// ReadyQueue: ops whose dependencies are satisfied, waiting for a worker.
// Private to microkernel/engine.
//
// Ordered by priority (higher first), then by push order, so among ready ops
// the most urgent runs first and equal ones stay FIFO. A consumer may ask
// only for ops at or above a priority floor: the CPU's high-priority lane
// shares the pool's queue that way instead of owning a second one. Sleeping
// consumers are woken only when there is someone to wake, so a busy engine
// pays no futex call per op.
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
  // Blocks for the best op with priority >= floor; nullptr once stopped and
  // drained of such ops.
  Op* pop(int priority_floor);
  // Non-blocking pop; nullptr when nothing at or above the floor is ready.
  Op* try_pop(int priority_floor);
  // Approximate; for the "run my successor inline" shortcut.
  bool looks_empty() const { return size_.load(std::memory_order_relaxed) == 0; }
  void stop();

 private:
  struct Later {
    bool operator()(const Op* a, const Op* b) const {
      return a->priority != b->priority ? a->priority < b->priority : a->seq > b->seq;
    }
  };
  bool has_work_locked(int floor) const { return !heap_.empty() && heap_.top()->priority >= floor; }

  std::mutex lock_;
  std::condition_variable wake_;
  std::priority_queue<Op*, std::vector<Op*>, Later> heap_;
  std::atomic<int> size_{0};
  int sleepers_ = 0;
  bool stopping_ = false;
};

}  // namespace loom::engine
