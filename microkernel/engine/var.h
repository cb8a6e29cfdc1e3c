// Var: one variable's dependency queue. Private to microkernel/engine.
//
// A Var grants access in push order: any number of readers at once, or one
// writer alone. An op asking for access is either granted at once or queued
// behind the ops pushed before it; completing an access grants the next
// ones. Appends happen under the engine's push lock (so every Var sees the
// same push order); completions may come from any thread, so each Var also
// has its own small lock. Locks of two Vars are never held together.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "microkernel/engine/op_block.h"

namespace loom::engine {

class Var {
 public:
  explicit Var(std::uint64_t id) : id_(id) {}

  std::uint64_t id() const { return id_; }

  // Each returns true when `op` is granted at once; otherwise `op` waits in
  // the queue and a later complete_*() grants it.
  bool append_read(Op* op);
  bool append_write(Op* op);

  // Ends one access. Ops granted by it are appended to `granted`. Returns
  // true when the Var was marked for deletion and is now idle: the caller
  // then deletes it (after this call, never inside it).
  bool complete_read(std::vector<Op*>& granted);
  bool complete_write(std::vector<Op*>& granted);

  // Marks the Var for deletion once idle; returns true if already idle.
  // Called by the delete op while it holds write access, so usually true.
  bool release_for_delete(std::vector<Op*>& granted);

  // True when no write is running or queued: a waiter need not wait.
  bool no_pending_writes() const;

  // The failure recorded by the last failing writer, or null. Written only
  // by an op holding write access and read only by ops granted after it,
  // so the grant hand-off orders the accesses.
  FailurePtr failure;

  // "var 12: write running (op 'relu' #41), 3 queued: W#45 'add' ..."
  std::string describe() const;

 private:
  struct Waiter {
    Op* op;
    bool write;
  };
  void grant_queued_locked(std::vector<Op*>& granted);
  bool idle_locked() const { return !running_write_ && running_reads_ == 0 && queue_.empty(); }

  const std::uint64_t id_;
  mutable std::mutex lock_;
  std::deque<Waiter> queue_;
  int running_reads_ = 0;
  Op* running_writer_ = nullptr;  // non-null while a write is granted
  bool running_write_ = false;
  bool delete_when_idle_ = false;
};

}  // namespace loom::engine
