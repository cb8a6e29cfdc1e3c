#include "microkernel/engine/var.h"

#include <sstream>

namespace loom::engine {

bool Var::append_read(Op* op) {
  std::lock_guard<std::mutex> hold(lock_);
  // A reader may start only if no write runs and nobody queued before it:
  // a queued op is a write (or a read behind one), which must go first.
  if (!running_write_ && queue_.empty()) {
    ++running_reads_;
    return true;
  }
  queue_.push_back({op, false});
  return false;
}

bool Var::append_write(Op* op) {
  std::lock_guard<std::mutex> hold(lock_);
  if (!running_write_ && running_reads_ == 0 && queue_.empty()) {
    running_write_ = true;
    running_writer_ = op;
    return true;
  }
  queue_.push_back({op, true});
  return false;
}

void Var::grant_queued_locked(std::vector<Op*>& granted) {
  // Grant the longest prefix the rule allows: one write when nothing runs,
  // or a run of reads when no write runs.
  while (!queue_.empty() && !running_write_) {
    Waiter next = queue_.front();
    if (next.write) {
      if (running_reads_ != 0) return;
      running_write_ = true;
      running_writer_ = next.op;
    } else {
      ++running_reads_;
    }
    queue_.pop_front();
    granted.push_back(next.op);
  }
}

bool Var::complete_read(std::vector<Op*>& granted) {
  std::lock_guard<std::mutex> hold(lock_);
  --running_reads_;
  grant_queued_locked(granted);
  return delete_when_idle_ && idle_locked();
}

bool Var::complete_write(std::vector<Op*>& granted) {
  std::lock_guard<std::mutex> hold(lock_);
  running_write_ = false;
  running_writer_ = nullptr;
  grant_queued_locked(granted);
  return delete_when_idle_ && idle_locked();
}

bool Var::release_for_delete(std::vector<Op*>& granted) {
  std::lock_guard<std::mutex> hold(lock_);
  delete_when_idle_ = true;
  running_write_ = false;
  running_writer_ = nullptr;
  // Anything queued here was pushed after delete_var: a caller bug, but
  // running it beats hanging it; the Var dies when they are done.
  grant_queued_locked(granted);
  return idle_locked();
}

bool Var::no_pending_writes() const {
  std::lock_guard<std::mutex> hold(lock_);
  if (running_write_) return false;
  for (const Waiter& w : queue_)
    if (w.write) return false;
  return true;
}

std::string Var::describe() const {
  std::lock_guard<std::mutex> hold(lock_);
  std::ostringstream out;
  out << "var " << id_ << ": ";
  if (running_write_) {
    out << "write running (op '" << running_writer_->name << "' #" << running_writer_->seq << ")";
  } else {
    out << running_reads_ << " read(s) running";
  }
  if (failure) out << ", failed";
  out << ", " << queue_.size() << " queued";
  std::size_t shown = 0;
  for (const Waiter& w : queue_) {
    if (shown++ == 4) {
      out << " ...";
      break;
    }
    out << (shown == 1 ? ": " : ", ") << (w.write ? "W" : "R") << "#" << w.op->seq << " '"
        << w.op->name << "'";
  }
  return out.str();
}

}  // namespace loom::engine
