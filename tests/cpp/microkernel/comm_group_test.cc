// Groups of nodes over TCP loopback: they form, barrier and exchange
// messages; a node that never comes, dies (a forked process killed
// mid-run) or fails on purpose ends every other node's wait with an error
// naming it, within the timeout. Skipped without ZeroMQ.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "microkernel/base/error.h"
#include "microkernel/comm/group.h"
#include "tests/cpp/error_text.h"

namespace loom::comm {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// A port that was free a moment ago (the scheduler needs one known up front).
std::string free_address() {
  Endpoint probe(0);
  return probe.bind("tcp://127.0.0.1:*");
}

GroupConfig config(Role role, std::int32_t rank, const std::string& scheduler, int workers, int servers,
                   milliseconds timeout = milliseconds(10000)) {
  GroupConfig c;
  c.role = role;
  c.rank = rank;
  c.num_workers = workers;
  c.num_servers = servers;
  c.scheduler = scheduler;
  c.timeout = timeout;
  c.heartbeat = milliseconds(100);
  return c;
}

using loom::testing::error_text;

class CommGroup : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!transport_available()) GTEST_SKIP() << "built without ZeroMQ";
  }
};

TEST_F(CommGroup, FormsBarriersAndCarriesMessages) {
  const std::string scheduler = free_address();
  constexpr int kWorkers = 2, kServers = 2;
  std::vector<std::string> errors(1 + kWorkers + kServers);
  std::vector<std::thread> nodes;
  auto run = [&](int slot, Role role, int rank) {
    nodes.emplace_back([&, slot, role, rank] {
      errors[slot] = error_text([&] {
        Group g(config(role, rank, scheduler, kWorkers, kServers));
        for (int round = 0; round < 3; ++round) g.barrier(Members::kAll);
        if (role == Role::kWorker) {
          g.barrier(Members::kWorkers);
          // each worker asks server (rank % servers) and gets its key back with the server's node id
          Message ask;
          ask.kind = MessageKind::kData;
          ask.key = "from worker " + std::to_string(rank);
          ask.set_body_copy(ask.key.data(), ask.key.size());
          g.send(g.server_node(rank % kServers), ask);
          const Message reply = g.recv(milliseconds(5000));
          if (reply.key != ask.key || reply.sender != g.server_node(rank % kServers)) throw Error(ErrorKind::kValue, "wrong reply " + reply.key);
        }
        if (role == Role::kServer) {
          g.barrier(Members::kServers);
          const Message m = g.recv(milliseconds(5000));
          Message reply;
          reply.kind = MessageKind::kData;
          reply.key = std::string(static_cast<const char*>(m.body), m.body_bytes);
          g.send(m.sender, reply);
        }
        g.barrier(Members::kAll);
      });
    });
  };
  run(0, Role::kScheduler, 0);
  for (int s = 0; s < kServers; ++s) run(1 + s, Role::kServer, s);
  for (int w = 0; w < kWorkers; ++w) run(1 + kServers + w, Role::kWorker, w);
  for (auto& t : nodes) t.join();
  for (const std::string& e : errors) EXPECT_EQ(e, "(no error)");
}

TEST_F(CommGroup, ANodeThatNeverComesFailsTheOthersNamingIt) {
  const std::string scheduler = free_address();
  std::string scheduler_error, worker_error;
  const auto start = Clock::now();
  std::thread s([&] { scheduler_error = error_text([&] { Group g(config(Role::kScheduler, 0, scheduler, 2, 0, milliseconds(1000))); }); });
  std::thread w([&] { worker_error = error_text([&] { Group g(config(Role::kWorker, 0, scheduler, 2, 0, milliseconds(1000))); }); });
  s.join();
  w.join();
  EXPECT_NE(scheduler_error.find("did not form within 1.0"), std::string::npos) << scheduler_error;
  EXPECT_NE(scheduler_error.find("no registration from worker 1 (node 2)"), std::string::npos) << scheduler_error;
  EXPECT_NE(worker_error.find("no registration from worker 1 (node 2)"), std::string::npos) << worker_error;
  EXPECT_LT(Clock::now() - start, milliseconds(5000));
}

TEST_F(CommGroup, AKilledNodeFailsEveryOtherNodeWithinTheTimeout) {
  const std::string scheduler = free_address();
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {  // worker 1: joins, then dies without a word
    try {
      Group g(config(Role::kWorker, 1, scheduler, 2, 0, milliseconds(1500)));
      std::this_thread::sleep_for(milliseconds(300));
      _exit(9);  // before the destructor: no goodbye, like a kill -9
    } catch (...) {
    }
    _exit(1);
  }
  std::string scheduler_error, worker_error;
  const auto start = Clock::now();
  std::thread s([&] {
    scheduler_error = error_text([&] {
      Group g(config(Role::kScheduler, 0, scheduler, 2, 0, milliseconds(1500)));
      g.barrier(Members::kAll);  // worker 1 never arrives: it is dead
    });
  });
  std::thread w([&] {
    worker_error = error_text([&] {
      Group g(config(Role::kWorker, 0, scheduler, 2, 0, milliseconds(1500)));
      g.recv(milliseconds(20000));  // waits for a message that will never come
    });
  });
  s.join();
  w.join();
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_NE(scheduler_error.find("worker 1 (node 2) stopped answering"), std::string::npos) << scheduler_error;
  EXPECT_NE(worker_error.find("worker 1 (node 2) stopped answering"), std::string::npos) << worker_error;
  EXPECT_LT(Clock::now() - start, milliseconds(8000));  // the 1.5 s timeout, not the 20 s wait
}

TEST_F(CommGroup, FailReachesEveryNodeWithTheCause) {
  const std::string scheduler = free_address();
  std::vector<std::string> errors(3);
  std::vector<std::thread> nodes;
  nodes.emplace_back([&] {
    errors[0] = error_text([&] {
      Group g(config(Role::kScheduler, 0, scheduler, 2, 0));
      g.barrier(Members::kAll);
      g.barrier(Members::kAll);
    });
  });
  nodes.emplace_back([&] {
    errors[1] = error_text([&] {
      Group g(config(Role::kWorker, 0, scheduler, 2, 0));
      g.barrier(Members::kAll);
      g.fail("bad batch 17");
      g.barrier(Members::kAll);
    });
  });
  nodes.emplace_back([&] {
    errors[2] = error_text([&] {
      Group g(config(Role::kWorker, 1, scheduler, 2, 0));
      g.barrier(Members::kAll);
      g.barrier(Members::kAll);
    });
  });
  for (auto& t : nodes) t.join();
  for (const std::string& e : errors) {
    EXPECT_NE(e.find("the job failed: worker 0 (node 1) failed: bad batch 17"), std::string::npos) << e;
  }
}

TEST_F(CommGroup, ANodeLeavingWhileOthersWaitForItInABarrierFailsThem) {
  const std::string scheduler = free_address();
  std::vector<std::string> errors(3);
  std::vector<std::thread> nodes;
  nodes.emplace_back([&] { errors[0] = error_text([&] { Group g(config(Role::kScheduler, 0, scheduler, 2, 0)); g.barrier(Members::kAll); }); });
  nodes.emplace_back([&] { errors[1] = error_text([&] { Group g(config(Role::kWorker, 0, scheduler, 2, 0)); g.barrier(Members::kAll); }); });
  nodes.emplace_back([&] { errors[2] = error_text([&] { Group g(config(Role::kWorker, 1, scheduler, 2, 0)); }); });  // leaves at once
  for (auto& t : nodes) t.join();
  EXPECT_EQ(errors[2], "(no error)");
  for (int i : {0, 1}) {
    EXPECT_NE(errors[i].find("worker 1 (node 2) left the job while"), std::string::npos) << errors[i];
  }
}

TEST(CommGroupConfig, TheEnvironmentIsReadAndBadValuesNamed) {
  setenv("LOOM_ROLE", "worker", 1);
  setenv("LOOM_RANK", "1", 1);
  setenv("LOOM_NUM_WORKER", "2", 1);
  setenv("LOOM_NUM_SERVER", "1", 1);
  setenv("LOOM_SCHEDULER", "10.0.0.1:9000", 1);
  setenv("LOOM_TIMEOUT", "2.5", 1);
  const GroupConfig c = GroupConfig::from_env();
  EXPECT_EQ(c.role, Role::kWorker);
  EXPECT_EQ(c.rank, 1);
  EXPECT_EQ(c.num_workers, 2);
  EXPECT_EQ(c.num_servers, 1);
  EXPECT_EQ(c.scheduler, "tcp://10.0.0.1:9000");
  EXPECT_EQ(c.timeout, milliseconds(2500));
  setenv("LOOM_ROLE", "boss", 1);
  EXPECT_NE(error_text([] { GroupConfig::from_env(); }).find("LOOM_ROLE=boss is not scheduler, server or worker"),
            std::string::npos);
  setenv("LOOM_ROLE", "worker", 1);
  setenv("LOOM_NUM_WORKER", "two", 1);
  EXPECT_NE(error_text([] { GroupConfig::from_env(); }).find("LOOM_NUM_WORKER=two is not a non-negative integer"),
            std::string::npos);
  unsetenv("LOOM_NUM_WORKER");
  EXPECT_NE(error_text([] { GroupConfig::from_env(); }).find("LOOM_NUM_WORKER is not set"), std::string::npos);
  for (const char* v : {"LOOM_ROLE", "LOOM_RANK", "LOOM_NUM_SERVER", "LOOM_SCHEDULER", "LOOM_TIMEOUT"}) unsetenv(v);
}

}  // namespace
}  // namespace loom::comm
