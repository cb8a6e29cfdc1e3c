#include "microkernel/engine/ready_queue.h"

namespace loom::engine {

void ReadyQueue::push(Op* op) {
  bool wake;
  {
    std::lock_guard<std::mutex> hold(lock_);
    heap_.push(op);
    size_.fetch_add(1, std::memory_order_relaxed);
    wake = sleepers_ > 0;
  }
  // notify_all, not notify_one: a sleeper may be the high-priority lane,
  // which cannot take an ordinary op; waking one that declines would lose
  // the wake-up. Sleepers are few (the pool size), so this is cheap.
  if (wake) wake_.notify_all();
}

Op* ReadyQueue::pop(int priority_floor) {
  std::unique_lock<std::mutex> hold(lock_);
  while (!has_work_locked(priority_floor)) {
    if (stopping_) return nullptr;
    ++sleepers_;
    wake_.wait(hold);
    --sleepers_;
  }
  Op* op = heap_.top();
  heap_.pop();
  size_.fetch_sub(1, std::memory_order_relaxed);
  return op;
}

Op* ReadyQueue::try_pop(int priority_floor) {
  std::lock_guard<std::mutex> hold(lock_);
  if (!has_work_locked(priority_floor)) return nullptr;
  Op* op = heap_.top();
  heap_.pop();
  size_.fetch_sub(1, std::memory_order_relaxed);
  return op;
}

void ReadyQueue::stop() {
  {
    std::lock_guard<std::mutex> hold(lock_);
    stopping_ = true;
  }
  wake_.notify_all();
}

}  // namespace loom::engine
