#include "microkernel/engine/ready_queue.h"

#include <thread>

#include "microkernel/engine/engine.h"

namespace loom::engine {

void ReadyQueue::push(Op* op) {
  bool wake_pool, wake_lane;
  {
    std::lock_guard<std::mutex> hold(lock_);
    heap_.push(op);
    size_.fetch_add(1, std::memory_order_relaxed);
    wake_pool = pool_sleepers_ > 0;
    wake_lane = lane_sleepers_ > 0 && op->priority >= kHighPriority;
  }
  if (wake_lane) {
    wake_lane_.notify_one();
  } else if (wake_pool) {
    wake_pool_.notify_one();
  }
}

Op* ReadyQueue::take_locked() {
  Op* op = heap_.top();
  heap_.pop();
  size_.fetch_sub(1, std::memory_order_relaxed);
  return op;
}

Op* ReadyQueue::pop(int priority_floor) {
  const bool lane = priority_floor != kAnyPriority;
  if (!lane) {
    // Spin a little (about 20 us) before sleeping: in a burst of small ops
    // the next one usually arrives sooner than a sleep and wake-up take.
    for (int spin = 0; spin < 2000 && size_.load(std::memory_order_relaxed) == 0; ++spin) {
      if (spin % 64 == 63) std::this_thread::yield();
    }
  }
  std::unique_lock<std::mutex> hold(lock_);
  while (!has_work_locked(priority_floor)) {
    if (stopping_) return nullptr;
    int& sleepers = lane ? lane_sleepers_ : pool_sleepers_;
    ++sleepers;
    (lane ? wake_lane_ : wake_pool_).wait(hold);
    --sleepers;
  }
  Op* op = take_locked();
  // An ordinary worker may have taken a high-priority op the lane was woken
  // for, or more work may remain: pass the wake-up on rather than lose it.
  if (!heap_.empty() && pool_sleepers_ > 0) wake_pool_.notify_one();
  return op;
}

Op* ReadyQueue::try_pop(int priority_floor) {
  std::lock_guard<std::mutex> hold(lock_);
  if (!has_work_locked(priority_floor)) return nullptr;
  return take_locked();
}

void ReadyQueue::stop() {
  {
    std::lock_guard<std::mutex> hold(lock_);
    stopping_ = true;
  }
  wake_pool_.notify_all();
  wake_lane_.notify_all();
}

}  // namespace loom::engine
