// The process-wide engine across fork() and exit. Each case runs in a fresh
// process (gtest's "threadsafe" death-test style re-executes this binary and
// runs only that case), so a hang or crash there is a failed test here,
// bounded by alarm(), and the case never inherits through fork() the engine
// threads that earlier tests started (ThreadSanitizer cannot follow a fork
// of a process with live threads; the cases fork their own).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>

#include "microkernel/engine/engine.h"
#include "microkernel/storage/storage.h"

namespace loom::engine {
namespace {

using namespace std::chrono_literals;

// Runs `body` in a fresh process and expects exit status 0 with stderr
// matching `stderr_regex`.
void expect_clean_child_exit(const std::function<int()>& body, const char* stderr_regex = "",
                             int seconds = 20) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        alarm(seconds);  // a hang becomes SIGALRM, never a stuck test run
        std::fflush(nullptr);
        std::exit(body());
      },
      ::testing::ExitedWithCode(0), stderr_regex);
}

TEST(EngineLifetime, ExitWithPendingOpsRunsThemAndExitsCleanly) {
  // Each op writes one 'x' to stderr; all 200 must appear although the child
  // exits with them pending.
  expect_clean_child_exit(
      [] {
        Engine& engine = Engine::get();
        Var* v = engine.new_var();
        for (int i = 0; i < 200; ++i) {
          engine.push(
              [](const RunContext&) {
                std::this_thread::sleep_for(100us);
                char byte = 'x';
                if (write(2, &byte, 1) != 1) std::abort();
              },
              {}, {}, {v});
        }
        engine.delete_var(v);
        return 0;  // exit() with ops pending, no wait_all
      },
      "^x{200}$");
}

TEST(EngineLifetime, ForkedChildGetsAFreshWorkingEngine) {
  expect_clean_child_exit([] {
    // A parent that uses the engine (its workers are running) and forks
    // while ops are in flight, as a data loader does.
    Engine& engine = Engine::get();
    Var* v = engine.new_var();
    std::atomic<int> parent_runs{0};
    for (int i = 0; i < 100; ++i)
      engine.push([&](const RunContext&) { ++parent_runs; }, {}, {}, {v});
    void* block = storage::alloc(1000, Device::cpu());
    pid_t pid = fork();
    if (pid == 0) {
      alarm(10);
      Engine& child_engine = Engine::get();
      int child_runs = 0;
      Var* w = child_engine.new_var();
      for (int i = 0; i < 100; ++i)
        child_engine.push([&](const RunContext&) { ++child_runs; }, {}, {}, {w, v});
      child_engine.delete_var(w);
      child_engine.wait_all();
      storage::free(storage::alloc(1000, Device::cpu()), 1000, Device::cpu());
      std::_Exit(child_runs == 100 ? 0 : 3);
    }
    int child_status = 0;
    waitpid(pid, &child_status, 0);
    engine.delete_var(v);
    engine.wait_all();  // the parent keeps working too
    storage::free(block, 1000, Device::cpu());
    if (!WIFEXITED(child_status)) return 4;
    if (WEXITSTATUS(child_status) != 0) return 10 + WEXITSTATUS(child_status);
    return parent_runs.load() == 100 ? 0 : 5;
  });
}

TEST(EngineLifetime, NaiveEngineIsChosenByTheEnvironment) {
  expect_clean_child_exit([] {
    setenv("LOOM_ENGINE", "naive", 1);
    Engine& engine = Engine::get();
    Var* v = engine.new_var();
    bool ran = false;
    engine.push([&](const RunContext&) { ran = true; }, {}, {}, {v});
    engine.delete_var(v);
    // Naive: done by the time push returns.
    return std::string(engine.kind()) == "naive" && ran ? 0 : 1;
  });
}

}  // namespace
}  // namespace loom::engine
