// How an operator's kernel reaches the engine.
//
// An op checks its arguments and infers its output's shape and dtype at once,
// on the calling thread, so a mistake raises where it was made. Its kernel is
// then handed to launch() with the arrays it reads and writes, and launch()
// pushes it onto the engine with their storages' Vars: the call returns
// before the kernel runs, and every later op touching those storages (an
// in-place `x += y`, a host read through asnumpy()) is ordered after it.
//
//   A CPU kernel runs in place, on the calling thread, when nothing it
//   touches can be pending: at once if no engine op has ever been queued on
//   its storages (they have no engine Var yet: the common case, at no
//   cost), else through Engine::push_or_run when their Vars are idle. One
//   thread then forks every OpenMP team, and the hand-off costs nothing. A
//   kernel touching more than inline_work_limit() elements (no limit unless
//   set: LOOM_INLINE_WORK, or set_inline_work_limit) is queued on the
//   engine's CPU stream lane, one at a time, each free to use every core;
//   so is one whose arrays have ops queued before it, and it runs when they
//   finish. An in-place kernel's exceptions reach the caller directly; a
//   queued kernel's exception fails the arrays it writes and surfaces, with
//   the same text, at the next wait on them.
//   (Two threads that use one array at the same time without waiting for
//   each other race, as in any array library; the engine orders the ops of
//   one thread, and of threads that synchronise.)
//   GPU kernels are launched at once: they queue on the device's stream,
//   which orders them and returns before they run; host copies wait.
//   Inside a running kernel, launch() runs its kernel directly: the
//   enclosing op already holds every array it touches, and the temporaries
//   it creates are private to it.
//
// The kernel must own (capture by value) every array it uses: it may run
// after the caller's arrays are gone.
#pragma once

#include <cstdint>
#include <span>
#include <utility>

#include "microkernel/engine/engine.h"
#include "runtime/ndarray/ndarray.h"

namespace loom {

// Elements (read plus written) up to which a kernel with nothing pending
// runs in place: no limit (INT64_MAX) unless LOOM_INLINE_WORK sets one; 0
// sends every CPU kernel to the engine (CI runs the suites once that way).
std::int64_t inline_work_limit();
// Sets it (a negative value: no limit) and returns the previous one. Kernels
// above the limit are queued even when nothing is pending: on a machine
// with cores to spare for the calling thread, Python then runs ahead of
// large kernels.
std::int64_t set_inline_work_limit(std::int64_t elements);

// True on a thread that is running a kernel (see launch()).
bool in_kernel();

// False while shapes are only inferred (abstract evaluation: arrays have no
// memory). GPU kernels are launched at once from the calling thread (the
// device's stream orders them) rather than through launch(), which skips
// host kernels in that mode by itself; every such call is guarded with this.
bool should_run_kernels();

// Records that an op is about to overwrite `a` (out=, in place): arrays
// autograd saved from its storage are then stale. Not inside a kernel: the
// ops a kernel runs write the enclosing op's own outputs, which were made at
// its dispatch, and that is no overwrite (and counting it at run time, after
// later ops saved those outputs, would wrongly mark them stale).
void note_overwrite(const NDArray& a);

namespace detail {

enum class Route {
  kSkip,     // abstract evaluation (abstract_eval.h): shapes only, no kernel
  kDirect,   // a GPU op, or a launch inside a running kernel: run it as is
  kInPlace,  // cheap, and no engine op was ever queued on its storages
  kEngine,   // through the engine (pushed, or run in place if idle)
};
Route route(std::span<const NDArray> reads, std::span<const NDArray> writes);
void submit(const char* op, std::span<const NDArray> reads, std::span<const NDArray> writes,
            engine::SyncFn body);

// Marks this thread as running a kernel for its lifetime.
class KernelScope {
 public:
  KernelScope();
  ~KernelScope();
  KernelScope(const KernelScope&) = delete;
  KernelScope& operator=(const KernelScope&) = delete;
};

}  // namespace detail

// Runs `kernel` (a callable taking no arguments) for op `op`, which must name a
// string with static lifetime (a literal), in order with every other op on
// the storages of `reads` and `writes`. See the top of this file.
template <typename Kernel>
void launch(const char* op, std::span<const NDArray> reads, std::span<const NDArray> writes, Kernel&& kernel) {
  switch (detail::route(reads, writes)) {
    case detail::Route::kSkip:
      return;
    case detail::Route::kDirect:
      kernel();
      return;
    case detail::Route::kInPlace: {
      detail::KernelScope scope;
      kernel();
      return;
    }
    case detail::Route::kEngine:
      detail::submit(op, reads, writes,
                     [k = std::forward<Kernel>(kernel)](const engine::RunContext&) mutable {
                       detail::KernelScope scope;
                       k();
                     });
      return;
  }
}

}  // namespace loom
