// NaiveEngine: runs every op inside push(), on the pushing thread, with the
// threaded engine's semantics (dependencies hold trivially; failures travel
// through Vars the same way). For debugging (LOOM_ENGINE=naive): stack traces
// point at the pushing call. Private to microkernel/engine.
#pragma once

#include <mutex>

#include "microkernel/engine/engine.h"
#include "microkernel/engine/op_block.h"

namespace loom::engine {

class NaiveEngine final : public Engine {
 public:
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
  std::int64_t pending() const override { return 0; }
  const char* kind() const override { return "naive"; }
  std::string describe_pending() const override { return "engine (naive): nothing pending\n"; }

 private:
  // `rethrow`: an exception fn throws goes to the caller (push_or_run)
  // instead of failing the Vars.
  // *ran tells whether fn ran (it does not after an input failed).
  std::uint64_t run(Op& op, VarList reads, VarList writes, bool rethrow = false, bool* ran = nullptr);

  // Held while an op runs: pushes from several threads execute one at a
  // time, in the order they took it, which is the push order. Recursive so an
  // op may push (its child runs at once, inside it).
  std::recursive_mutex run_lock_;
  std::uint64_t next_seq_ = 0;
  FailureLog failures_;
};

}  // namespace loom::engine
