// A job's processes as one group: a scheduler, servers and workers that
// find each other, wait for each other (barriers), watch each other
// (heartbeats) and fail together.
//
// Every process knows its role and its rank within the role before it
// starts. The launcher, mpirun or srun gives them (loom.launch maps their
// ranks to roles), so node ids are fixed from the start:
//   the scheduler is node 0;
//   server s is node 1 + s;
//   worker w is node 1 + num_servers + w.
// Fixed ids make runs repeatable, so a worker's data shard does not
// depend on who registered first.
//
// Start-up: each node binds its own endpoint and registers its address
// with the scheduler, whose address all know. Once every node has
// registered, the scheduler sends all of them the address table, and the
// Group constructor returns. A node that does not arrive within the
// timeout fails every node that is waiting, and the error names it.
//
// Failure: while the group lives, the scheduler and the nodes exchange
// heartbeats. When a node stops answering for `timeout`, the scheduler
// tells every other node. A node that loses the scheduler fails on its
// own. A node can also fail the group on purpose (fail(), say when a worker
// raised). A failure ends every blocking call on every node with an error
// naming the node and the cause, never a hang. A node that leaves normally
// says so first (the destructor), and is not mistaken for a dead one.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "microkernel/comm/transport.h"

namespace loom::comm {

enum class Role { kScheduler, kServer, kWorker };
const char* role_name(Role role);

struct GroupConfig {
  Role role = Role::kWorker;
  std::int32_t rank = 0;            // within the role
  std::int32_t num_workers = 1;
  std::int32_t num_servers = 0;
  std::string scheduler;            // "tcp://host:port", where the scheduler listens
  std::string host = "127.0.0.1";   // how others reach this node (it listens on every interface)
  // Start-up, and the silence after which a node counts as dead. A barrier
  // waits as long as its members are alive: a slow epoch is not a failure.
  std::chrono::milliseconds timeout{30000};
  std::chrono::milliseconds heartbeat{1000};  // how often nodes say they are alive

  // From the environment the launcher sets:
  //   LOOM_ROLE, LOOM_RANK, LOOM_NUM_WORKER, LOOM_NUM_SERVER,
  //   LOOM_SCHEDULER (host:port), LOOM_NODE_HOST, LOOM_TIMEOUT (seconds),
  //   LOOM_HEARTBEAT (seconds).
  // A missing or malformed variable is an error that names it.
  static GroupConfig from_env();
};

// Which nodes a barrier waits for.
enum class Members { kWorkers, kServers, kAll };

class Group {
 public:
  explicit Group(GroupConfig config);
  ~Group();
  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;

  Role role() const { return config_.role; }
  std::int32_t rank() const { return config_.rank; }
  std::int32_t node() const { return node_; }
  std::int32_t num_workers() const { return config_.num_workers; }
  std::int32_t num_servers() const { return config_.num_servers; }
  std::int32_t server_node(std::int32_t rank) const { return 1 + rank; }
  std::int32_t worker_node(std::int32_t rank) const { return 1 + config_.num_servers + rank; }
  std::string describe(std::int32_t node) const;  // "worker 1 (node 3)"

  // Waits until every member has called barrier() with the same `members`.
  void barrier(Members members);
  // Sends a data or control message to `node` (the user layer's traffic).
  void send(std::int32_t node, Message m);
  // The next message for the user layer, waiting at most `timeout`.
  // Throws when the group has failed, or when nothing arrives in time.
  Message recv(std::chrono::milliseconds timeout);
  // Like recv(), but nothing arriving in time is no error: no message.
  std::optional<Message> poll(std::chrono::milliseconds timeout);
  // Fails the group: every node's blocking calls end with `why`.
  void fail(const std::string& why);
  // The failure, if the group has failed ("" while healthy).
  std::string failure() const;
  // Scheduler: whether every other node has left normally (the job is done).
  bool all_left() const;

 private:
  void receive_loop();
  void handle(Message m);
  void on_register(const Message& m);
  void on_barrier(const Message& m);
  void check_barriers_for_leavers();
  void check_heartbeats();
  void set_failure(const std::string& why, bool tell_others);
  void throw_if_failed() const;
  void control(std::int32_t node, const std::string& command, const std::string& meta, std::uint64_t request = 0);
  bool reply(std::int32_t node, const std::string& command, const std::string& meta);
  std::vector<std::int32_t> members(Members which) const;

  GroupConfig config_;
  std::int32_t node_;
  std::int32_t num_nodes_;
  Endpoint endpoint_;

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::string failure_;
  bool ready_ = false;                         // the address table has arrived
  std::vector<std::string> addresses_;         // by node id
  std::deque<Message> inbox_;                  // for recv()
  std::vector<std::uint64_t> barrier_done_;    // per Members: generations completed
  std::vector<std::uint64_t> barrier_called_;  // per Members: generations this node entered
  // scheduler only
  std::vector<std::vector<std::int32_t>> barrier_arrived_;  // per Members
  std::vector<std::chrono::steady_clock::time_point> last_seen_;
  std::vector<bool> left_;                     // said goodbye
  std::chrono::steady_clock::time_point started_;

  bool stopping_ = false;
  std::thread receiver_;
};

}  // namespace loom::comm
