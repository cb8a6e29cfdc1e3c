// The engine's promises one by one: ordering, concurrency, errors, deletion,
// nested pushes, priorities, backpressure, the watchdog, shutdown and the
// profiler. Most run on both engines; the threaded-only ones build a
// ThreadedEngine with an explicit configuration.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "microkernel/base/error.h"
#include "microkernel/engine/engine.h"
#include "microkernel/engine/op_block.h"
#include "microkernel/engine/profiler.h"
#include "microkernel/engine/threaded_engine.h"
#include "microkernel/storage/storage.h"

namespace loom::engine {
namespace {

using namespace std::chrono_literals;

// A gate ops can block on, opened by the test (the engine's own latch); waits
// are bounded so a bug shows up as a failure, not a hung test.
struct Gate {
  FinishLatch latch;
  void release() { latch.signal(); }
  bool wait(double seconds = 5.0) { return latch.wait(seconds); }
};

std::unique_ptr<ThreadedEngine> threaded(int cpu_threads, std::int64_t max_pending = 65536,
                                         double watchdog = 0) {
  EngineConfig config;
  config.cpu_threads = cpu_threads;
  config.max_pending = max_pending;
  config.watchdog_seconds = watchdog;
  return std::make_unique<ThreadedEngine>(config);
}

class EngineBoth : public ::testing::TestWithParam<std::string> {
 protected:
  std::unique_ptr<Engine> engine_ = make_engine(GetParam());
};

TEST_P(EngineBoth, WritesToOneVarRunInPushOrder) {
  Var* v = engine_->new_var();
  std::vector<int> log;
  for (int i = 0; i < 2000; ++i)
    engine_->push([&log, i](const RunContext&) { log.push_back(i); }, {}, {}, {v});
  engine_->wait_for_var(v);
  ASSERT_EQ(log.size(), 2000u);
  for (int i = 0; i < 2000; ++i) ASSERT_EQ(log[i], i);
  engine_->delete_var(v);
}

TEST_P(EngineBoth, ReadSeesEveryEarlierWriteAndNoLaterOne) {
  Var* v = engine_->new_var();
  int value = 0;
  std::vector<int> seen(100, -1);
  for (int i = 0; i < 100; ++i) {
    engine_->push([&value](const RunContext&) { ++value; }, {}, {}, {v});
    engine_->push([&, i](const RunContext&) { seen[i] = value; }, {}, {v}, {});
  }
  engine_->wait_all();
  for (int i = 0; i < 100; ++i) EXPECT_EQ(seen[i], i + 1);
  engine_->delete_var(v);
}

TEST_P(EngineBoth, WaitAllOnAnIdleEngineReturnsAtOnce) {
  auto start = std::chrono::steady_clock::now();
  engine_->wait_all();
  engine_->wait_all();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 100ms);
  EXPECT_EQ(engine_->pending(), 0);
}

TEST_P(EngineBoth, FailureSkipsDependantsAndIsRaisedByWaitNamingTheOp) {
  Var* a = engine_->new_var();
  Var* b = engine_->new_var();
  Var* unrelated = engine_->new_var();
  bool dependant_ran = false, unrelated_ran = false;
  engine_->push([](const RunContext&) { LOOM_THROW(ErrorKind::kValue, "shapes (2, 3) and (4,) differ"); },
                {}, {}, {a}, 0, "broken_op");
  engine_->push([&](const RunContext&) { dependant_ran = true; }, {}, {a}, {b}, 0, "dependant");
  engine_->push([&](const RunContext&) { unrelated_ran = true; }, {}, {}, {unrelated}, 0, "fine");

  for (Var* failed : {a, b}) {
    try {
      engine_->wait_for_var(failed);
      FAIL() << "wait_for_var should raise";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kValue);  // the kind survives the trip
      EXPECT_NE(std::string(e.what()).find("shapes (2, 3) and (4,) differ"), std::string::npos);
      EXPECT_NE(std::string(e.what()).find("'broken_op'"), std::string::npos) << e.what();
    }
  }
  engine_->wait_for_var(unrelated);
  EXPECT_TRUE(unrelated_ran);
  EXPECT_FALSE(dependant_ran);
  EXPECT_NO_THROW(engine_->wait_all());  // already reported by the waits above
  EXPECT_THROW(engine_->wait_for_var(b), Error);  // but the var stays failed
  // A write to a failed var is skipped too: no silently stale value.
  bool overwrite_ran = false;
  engine_->push([&](const RunContext&) { overwrite_ran = true; }, {}, {}, {a});
  EXPECT_THROW(engine_->wait_for_var(a), Error);
  EXPECT_FALSE(overwrite_ran);
  // A failure nobody waited for is raised by wait_all, once.
  engine_->push([](const RunContext&) { LOOM_THROW(ErrorKind::kValue, "unseen"); }, {}, {}, {unrelated}, 0, "quiet_op");
  EXPECT_THROW(engine_->wait_all(), Error);
  EXPECT_NO_THROW(engine_->wait_all());  // reported once
  for (Var* v : {a, b, unrelated}) engine_->delete_var(v);
  engine_->wait_all();
}

TEST_P(EngineBoth, ErrorNamesTheUserLevelCallThatPushedIt) {
  Var* v = engine_->new_var();
  {
    OriginScope origin("lm.nd.relu(x) at train.py:12");
    engine_->push([](const RunContext&) { throw std::runtime_error("bad"); }, {}, {}, {v}, 0, "relu");
  }
  try {
    engine_->wait_for_var(v);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kRuntime);
    EXPECT_NE(std::string(e.what()).find("train.py:12"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(engine_->wait_all());  // the wait above reported it
  engine_->delete_var(v);
}

TEST_P(EngineBoth, AsyncOpCompletesFromAnotherThread) {
  Var* v = engine_->new_var();
  std::vector<std::thread> helpers;
  std::mutex helpers_lock;
  int value = 0;
  engine_->push_async(
      [&](const RunContext&, Completion done) {
        std::lock_guard<std::mutex> hold(helpers_lock);
        helpers.emplace_back([&value, done] {
          std::this_thread::sleep_for(20ms);
          value = 42;
          done();
        });
      },
      {}, {}, {v}, 0, "network_recv");
  int seen = 0;
  engine_->push([&](const RunContext&) { seen = value; }, {}, {v}, {});
  engine_->wait_all();
  EXPECT_EQ(seen, 42);
  {
    std::lock_guard<std::mutex> hold(helpers_lock);  // the worker may still be inside emplace_back
    for (auto& t : helpers) t.join();
  }
  engine_->delete_var(v);
}

TEST_P(EngineBoth, AsyncOpCompletingWithAnErrorFailsItsVars) {
  Var* v = engine_->new_var();
  // The helper may complete the op (and release the wait below) before the
  // worker has finished move-assigning its handle, so the handle is guarded.
  std::mutex helper_mu;
  std::thread helper;
  engine_->push_async(
      [&](const RunContext&, Completion done) {
        std::lock_guard<std::mutex> lock(helper_mu);
        helper = std::thread([done] {
          done(std::make_exception_ptr(Error(ErrorKind::kRuntime, "connection reset by peer")));
        });
      },
      {}, {}, {v}, 0, "allreduce");
  try {
    engine_->wait_for_var(v);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("connection reset by peer"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("'allreduce'"), std::string::npos);
  }
  {
    std::lock_guard<std::mutex> lock(helper_mu);
    helper.join();
  }
  // An async fn that throws before completing counts the same.
  Var* w = engine_->new_var();
  engine_->push_async([](const RunContext&, Completion) { throw std::runtime_error("early"); }, {},
                      {}, {w}, 0, "thrower");
  EXPECT_THROW(engine_->wait_for_var(w), Error);
  EXPECT_NO_THROW(engine_->wait_all());  // the wait above reported it
  engine_->delete_var(v);
  engine_->delete_var(w);
}

TEST_P(EngineBoth, OpsMayPushOps) {
  Var* v = engine_->new_var();
  std::atomic<int> runs{0};
  std::function<void(int)> spawn = [&](int depth) {
    engine_->push(
        [&, depth](const RunContext&) {
          ++runs;
          if (depth < 50) spawn(depth + 1);
        },
        {}, {}, {v});
  };
  spawn(0);
  engine_->wait_all();  // must also wait for ops pushed while it waited
  EXPECT_EQ(runs.load(), 51);
  engine_->delete_var(v);
}

TEST_P(EngineBoth, DeleteVarWaitsForPendingOps) {
  std::vector<int> log;
  Var* v = engine_->new_var();
  for (int i = 0; i < 100; ++i)
    engine_->push([&log, i](const RunContext&) { log.push_back(i); }, {}, {}, {v});
  engine_->push([&log](const RunContext&) { log.push_back(-1); }, {}, {v}, {});
  engine_->delete_var(v);  // AddressSanitizer would catch a premature free
  engine_->wait_all();
  ASSERT_EQ(log.size(), 101u);
  EXPECT_EQ(log.back(), -1);
}

TEST_P(EngineBoth, DuplicateAndReadWriteListsAreHarmless) {
  Var* v = engine_->new_var();
  int value = 0;
  engine_->push([&](const RunContext&) { ++value; }, {}, {v, v}, {v, v});
  engine_->push([&](const RunContext&) { ++value; }, {}, {v}, {v});
  engine_->wait_for_var(v);
  EXPECT_EQ(value, 2);
  engine_->delete_var(v);
}

TEST_P(EngineBoth, NullVarAndMissingGpuAreErrorsAtPush) {
  EXPECT_THROW(engine_->push([](const RunContext&) {}, {}, {nullptr}, {}), Error);
  if (storage::gpu_count() == 0) {
    EXPECT_THROW(engine_->push([](const RunContext&) {}, Context{Device::gpu(0)}, {}, {}), Error);
  }
  EXPECT_EQ(engine_->pending(), 0);
}

TEST_P(EngineBoth, GpuOpsRunOnAStreamWhenAGpuIsPresent) {
  if (storage::gpu_count() == 0) GTEST_SKIP() << "no GPU on this machine";
  Var* v = engine_->new_var();
  Device seen_device = Device::cpu();
  engine_->push([&](const RunContext& run) { seen_device = run.device; }, Context{Device::gpu(0)},
                {}, {v});
  engine_->push([](const RunContext&) {}, Context{Device::gpu(0), Lane::kCopy}, {v}, {});
  engine_->wait_all();
  EXPECT_EQ(seen_device, Device::gpu(0));
  engine_->delete_var(v);
}

INSTANTIATE_TEST_SUITE_P(Engine, EngineBoth, ::testing::Values("threaded", "naive"),
                         [](const auto& info) { return info.param; });

TEST_P(EngineBoth, PushOrRunRunsInPlaceWhenNothingIsPending) {
  Var* a = engine_->new_var();
  Var* b = engine_->new_var();
  std::thread::id ran_on;
  const bool here = engine_->push_or_run([&](const RunContext&) { ran_on = std::this_thread::get_id(); },
                                         {}, {a}, {b}, 0, "cheap");
  EXPECT_TRUE(here);
  EXPECT_EQ(ran_on, std::this_thread::get_id());  // done before push_or_run returned
  // An exception goes to the caller, and the Vars stay usable.
  EXPECT_THROW(engine_->push_or_run([](const RunContext&) { LOOM_THROW(ErrorKind::kIndex, "index 7 out of range"); },
                                    {}, {a}, {b}),
               Error);
  EXPECT_NO_THROW(engine_->wait_for_var(b));
  EXPECT_NO_THROW(engine_->wait_all());
  // A failed input is not run in place: the failure travels on as with push().
  engine_->push([](const RunContext&) { LOOM_THROW(ErrorKind::kValue, "broken"); }, {}, {}, {a}, 0, "broken_op");
  bool ran = false;
  engine_->push_or_run([&](const RunContext&) { ran = true; }, {}, {a}, {b});
  EXPECT_THROW(engine_->wait_for_var(b), Error);
  EXPECT_FALSE(ran);
  EXPECT_NO_THROW(engine_->wait_all());  // the wait above reported it
  for (Var* v : {a, b}) engine_->delete_var(v);
  engine_->wait_all();
}

// ------------------------------------------------------------------ threaded only

TEST(ThreadedEngine, IndependentReadersRunConcurrently) {
  auto engine = threaded(2);
  Var* v = engine->new_var();
  std::atomic<int> arrived{0};
  std::atomic<bool> overlapped{false};
  for (int i = 0; i < 2; ++i) {
    engine->push(
        [&](const RunContext&) {
          ++arrived;
          auto deadline = std::chrono::steady_clock::now() + 2s;
          while (arrived.load() < 2 && std::chrono::steady_clock::now() < deadline)
            std::this_thread::yield();
          if (arrived.load() == 2) overlapped = true;
        },
        {}, {v}, {});
  }
  engine->wait_all();
  EXPECT_TRUE(overlapped.load()) << "two readers of one var never ran at the same time";
  engine->delete_var(v);
}

TEST(ThreadedEngine, HigherPriorityRunsFirstAmongReadyOps) {
  auto engine = threaded(1);
  Gate gate, started;
  Var* blocker = engine->new_var();
  engine->push(
      [&](const RunContext&) {
        started.release();
        gate.wait();
      },
      {}, {}, {blocker});
  // The single worker must be busy before the others are pushed; otherwise
  // it may rightly pick a higher-priority op before the blocker.
  ASSERT_TRUE(started.wait());
  std::mutex order_lock;
  std::vector<int> order;
  for (int p : {1, 5, 3, 9, 0}) {
    engine->push(
        [&, p](const RunContext&) {
          std::lock_guard<std::mutex> hold(order_lock);
          order.push_back(p);
        },
        {}, {}, {}, p);
  }
  gate.release();
  engine->wait_all();
  EXPECT_EQ(order, (std::vector<int>{9, 5, 3, 1, 0}));
  engine->delete_var(blocker);
}

TEST(ThreadedEngine, HighPriorityLaneRunsWhileThePoolIsBusy) {
  auto engine = threaded(1);
  Gate gate;
  engine->push([&](const RunContext&) { EXPECT_TRUE(gate.wait()); }, {}, {}, {});
  // The only pool worker is blocked on the gate; the lane must open it.
  engine->push([&](const RunContext&) { gate.release(); }, {}, {}, {}, kHighPriority, "urgent");
  auto start = std::chrono::steady_clock::now();
  engine->wait_all();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 4s);
}

TEST(ThreadedEngine, PushOrRunQueuesBehindAPendingWriter) {
  auto engine = threaded(2);
  Var* v = engine->new_var();
  Gate gate;
  std::atomic<int> value{0};
  engine->push([&](const RunContext&) {
    EXPECT_TRUE(gate.wait());
    value = 1;
  }, {}, {}, {v});
  std::atomic<int> seen{-1};
  std::thread::id ran_on;
  const bool here = engine->push_or_run([&](const RunContext&) {
    seen = value.load();
    ran_on = std::this_thread::get_id();
  }, {}, {v}, {});
  EXPECT_FALSE(here);  // returned at once, without running
  gate.release();
  engine->wait_all();
  EXPECT_EQ(seen.load(), 1);  // ran after the writer, on a worker
  EXPECT_NE(ran_on, std::this_thread::get_id());
  engine->delete_var(v);
}

TEST(ThreadedEngine, StreamLaneRunsOneOpAtATimeInReadyOrder) {
  auto engine = threaded(2);
  std::atomic<int> running{0}, most{0};
  std::mutex order_lock;
  std::vector<int> order;
  for (int i = 0; i < 64; ++i) {
    engine->push(
        [&, i](const RunContext&) {
          most = std::max(most.load(), ++running);
          std::this_thread::sleep_for(50us);
          {
            std::lock_guard<std::mutex> hold(order_lock);
            order.push_back(i);
          }
          --running;
        },
        Context{Device::cpu(), Lane::kStream}, {}, {});  // independent ops: the pool would overlap them
  }
  engine->wait_all();
  EXPECT_EQ(most.load(), 1);
  ASSERT_EQ(order.size(), 64u);
  for (int i = 0; i < 64; ++i) EXPECT_EQ(order[i], i);
}

TEST(ThreadedEngine, BackpressureBoundsPendingOps) {
  auto engine = threaded(1, /*max_pending=*/16);
  Var* v = engine->new_var();
  std::int64_t most = 0;
  for (int i = 0; i < 500; ++i) {
    engine->push([](const RunContext&) { std::this_thread::sleep_for(20us); }, {}, {}, {v});
    most = std::max(most, engine->pending());
  }
  engine->wait_all();
  EXPECT_LE(most, 17);
  engine->delete_var(v);
}

TEST(ThreadedEngine, WaitInsideAnOpHelpsInsteadOfDeadlocking) {
  auto engine = threaded(1);
  Var* produced = engine->new_var();
  Var* result = engine->new_var();
  int value = 0, seen = 0;
  engine->push(
      [&](const RunContext&) {
        // Pushed from inside an op, then waited on, with one worker: only a
        // worker that runs other ops while it waits can make progress.
        engine->push([&](const RunContext&) { value = 7; }, {}, {}, {produced});
        engine->wait_for_var(produced);
        seen = value;
      },
      {}, {}, {result});
  engine->wait_all();
  EXPECT_EQ(seen, 7);
  engine->delete_var(produced);
  engine->delete_var(result);
}

TEST(ThreadedEngine, WaitingOnItsOwnOutputInsideAnOpIsAnErrorNotAHang) {
  auto engine = threaded(2);
  Var* v = engine->new_var();
  engine->push([&](const RunContext&) { engine->wait_for_var(v); }, {}, {}, {v}, 0, "self_waiter");
  EXPECT_THROW(engine->wait_for_var(v), Error);
  EXPECT_NO_THROW(engine->wait_all());  // the wait above reported it
  engine->delete_var(v);
}

TEST(ThreadedEngine, WatchdogReportsAStuckWait) {
  auto engine = threaded(1, 65536, /*watchdog=*/0.2);
  Var* v = engine->new_var();
  Gate gate;
  engine->push([&](const RunContext&) { gate.wait(); }, {}, {}, {v}, 0, "stuck_op");
  std::thread opener([&] {
    std::this_thread::sleep_for(700ms);
    gate.release();
  });
  ::testing::internal::CaptureStderr();
  engine->wait_all();
  std::string report = ::testing::internal::GetCapturedStderr();
  opener.join();
  EXPECT_NE(report.find("watchdog"), std::string::npos) << report;
  EXPECT_NE(report.find("stuck_op"), std::string::npos) << report;
  engine->delete_var(v);
}

TEST(ThreadedEngine, DestroyingWithPendingOpsFinishesThem) {
  std::atomic<int> runs{0};
  {
    auto engine = threaded(2);
    Var* v = engine->new_var();
    for (int i = 0; i < 1000; ++i)
      engine->push([&](const RunContext&) { ++runs; }, {}, {}, {v});
    engine->delete_var(v);
  }  // no wait_all: the destructor must drain, then join
  EXPECT_EQ(runs.load(), 1000);
}

TEST(ThreadedEngine, ProfilerWritesAChromeTraceAndATable) {
  auto engine = threaded(2);
  profiler::clear();
  profiler::start();
  Var* v = engine->new_var();
  for (int i = 0; i < 10; ++i)
    engine->push([](const RunContext&) { std::this_thread::sleep_for(100us); }, {}, {}, {v}, 0,
                 "profiled_op");
  engine->wait_all();
  profiler::stop();
  engine->push([](const RunContext&) {}, {}, {}, {v}, 0, "not_profiled");
  engine->wait_all();
  std::string path = ::testing::TempDir() + "loom_trace.json";
  profiler::dump(path);
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  std::string trace = text.str();
  EXPECT_NE(trace.find("\"traceEvents\""), std::string::npos);
  std::size_t count = 0;
  for (std::size_t at = trace.find("\"profiled_op\""); at != std::string::npos;
       at = trace.find("\"profiled_op\"", at + 1))
    ++count;
  EXPECT_EQ(count, 10u);
  EXPECT_EQ(trace.find("not_profiled"), std::string::npos);
  EXPECT_NE(trace.find("cpu worker"), std::string::npos);
  std::string table = profiler::summary();
  EXPECT_NE(table.find("profiled_op"), std::string::npos) << table;
  EXPECT_NE(table.find(" 10 "), std::string::npos) << table;
  EXPECT_THROW(profiler::dump("/nonexistent-dir/trace.json"), Error);
  profiler::clear();
  EXPECT_EQ(profiler::record_count(), 0u);
  engine->delete_var(v);
}

}  // namespace
}  // namespace loom::engine
