// The process-wide engine across fork() and exit. Each case runs in a child
// process so a hang or crash there is a failed test here, bounded by alarm().
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

// Runs `body` in a child; returns its exit status (or 128 + signal).
int run_in_child(const std::function<int()>& body, int seconds = 20) {
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    alarm(seconds);  // a hang becomes SIGALRM, never a stuck test run
    std::exit(body());
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

TEST(EngineLifetime, ExitWithPendingOpsRunsThemAndExitsCleanly) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  int status = run_in_child([&] {
    close(fds[0]);
    Engine& engine = Engine::get();
    Var* v = engine.new_var();
    for (int i = 0; i < 200; ++i) {
      engine.push(
          [fd = fds[1]](const RunContext&) {
            std::this_thread::sleep_for(100us);
            char byte = 'x';
            if (write(fd, &byte, 1) != 1) std::abort();
          },
          {}, {}, {v});
    }
    engine.delete_var(v);
    return 0;  // exit() with ops pending, no wait_all
  });
  close(fds[1]);
  int bytes = 0;
  char buffer[256];
  for (ssize_t n; (n = read(fds[0], buffer, sizeof buffer)) > 0;) bytes += static_cast<int>(n);
  close(fds[0]);
  EXPECT_EQ(status, 0);
  EXPECT_EQ(bytes, 200) << "ops pending at exit were dropped";
}

TEST(EngineLifetime, ForkedChildGetsAFreshWorkingEngine) {
  int status = run_in_child([] {
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
  EXPECT_EQ(status, 0);
}

TEST(EngineLifetime, NaiveEngineIsChosenByTheEnvironment) {
  int status = run_in_child([] {
    setenv("LOOM_ENGINE", "naive", 1);
    Engine& engine = Engine::get();
    Var* v = engine.new_var();
    bool ran = false;
    engine.push([&](const RunContext&) { ran = true; }, {}, {}, {v});
    engine.delete_var(v);
    // Naive: done by the time push returns.
    return std::string(engine.kind()) == "naive" && ran ? 0 : 1;
  });
  EXPECT_EQ(status, 0);
}

}  // namespace
}  // namespace loom::engine
