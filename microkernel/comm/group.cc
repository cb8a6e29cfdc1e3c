// See group.h.
#include "microkernel/comm/group.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "microkernel/base/error.h"

namespace loom::comm {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int kMemberKinds = 3;  // Members::kWorkers, kServers, kAll

std::string env(const char* name, const char* fallback = nullptr) {
  const char* v = std::getenv(name);
  if (v != nullptr && *v != '\0') return v;
  LOOM_CHECK(fallback != nullptr, "comm: the environment variable ", name,
             " is not set (python -m loom.launch sets it; see docs/distributed.md)");
  return fallback;
}

std::int64_t env_int(const char* name, const char* fallback = nullptr) {
  const std::string text = env(name, fallback);
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  LOOM_CHECK(end != text.c_str() && *end == '\0' && v >= 0, "comm: ", name, "=", text,
             " is not a non-negative integer");
  return v;
}

milliseconds env_seconds(const char* name, const char* fallback) {
  const std::string text = env(name, fallback);
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  LOOM_CHECK(end != text.c_str() && *end == '\0' && v > 0, "comm: ", name, "=", text, " is not a positive number of seconds");
  return milliseconds(static_cast<std::int64_t>(v * 1000));
}

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// "tcp://host:port" -> "port". ZeroMQ binds to interfaces, not host names,
// so a node binds on every interface and tells the others host:port.
std::string port_of(const std::string& address) {
  const auto colon = address.rfind(':');
  LOOM_CHECK(colon != std::string::npos && colon + 1 < address.size(), "comm: ", address,
             " has no port (expected tcp://host:port)");
  return address.substr(colon + 1);
}

// A barrier's members from a message, or -1 when the text is not one.
int parse_members(const std::string& text) {
  if (text.size() != 1 || text[0] < '0' || text[0] >= '0' + kMemberKinds) return -1;
  return text[0] - '0';
}

}  // namespace

const char* role_name(Role role) {
  switch (role) {
    case Role::kScheduler: return "scheduler";
    case Role::kServer: return "server";
    case Role::kWorker: return "worker";
  }
  return "?";
}

GroupConfig GroupConfig::from_env() {
  GroupConfig c;
  const std::string role = env("LOOM_ROLE");
  if (role == "scheduler") {
    c.role = Role::kScheduler;
  } else if (role == "server") {
    c.role = Role::kServer;
  } else if (role == "worker") {
    c.role = Role::kWorker;
  } else {
    LOOM_THROW(ErrorKind::kValue, "comm: LOOM_ROLE=", role, " is not scheduler, server or worker");
  }
  c.rank = static_cast<std::int32_t>(env_int("LOOM_RANK", "0"));
  c.num_workers = static_cast<std::int32_t>(env_int("LOOM_NUM_WORKER"));
  c.num_servers = static_cast<std::int32_t>(env_int("LOOM_NUM_SERVER", "0"));
  c.scheduler = "tcp://" + env("LOOM_SCHEDULER");
  c.host = env("LOOM_NODE_HOST", "127.0.0.1");
  c.timeout = env_seconds("LOOM_TIMEOUT", "30");
  c.heartbeat = env_seconds("LOOM_HEARTBEAT", "1");
  return c;
}

namespace {

std::int32_t node_of(const GroupConfig& c) {
  LOOM_CHECK(c.num_workers >= 1 && c.num_servers >= 0, "comm: a group needs at least one worker and no negative "
             "count of servers, got ", c.num_workers, " workers and ", c.num_servers, " servers");
  switch (c.role) {
    case Role::kScheduler:
      return 0;
    case Role::kServer:
      LOOM_CHECK(c.rank >= 0 && c.rank < c.num_servers, "comm: server rank ", c.rank, " is not in [0, ",
                 c.num_servers, ")");
      return 1 + c.rank;
    case Role::kWorker:
      LOOM_CHECK(c.rank >= 0 && c.rank < c.num_workers, "comm: worker rank ", c.rank, " is not in [0, ",
                 c.num_workers, ")");
      return 1 + c.num_servers + c.rank;
  }
  return -1;
}

}  // namespace

std::string Group::describe(std::int32_t node) const {
  if (node == 0) return "the scheduler (node 0)";
  if (node <= config_.num_servers) return "server " + std::to_string(node - 1) + " (node " + std::to_string(node) + ")";
  return "worker " + std::to_string(node - 1 - config_.num_servers) + " (node " + std::to_string(node) + ")";
}

Group::Group(GroupConfig config)
    : config_(std::move(config)),
      node_(node_of(config_)),
      num_nodes_(1 + config_.num_servers + config_.num_workers),
      endpoint_(node_),
      addresses_(num_nodes_),
      barrier_done_(kMemberKinds, 0),
      barrier_called_(kMemberKinds, 0),
      barrier_arrived_(kMemberKinds),
      last_seen_(num_nodes_, Clock::now()),
      left_(num_nodes_, false),
      started_(Clock::now()) {
  LOOM_CHECK(config_.heartbeat < config_.timeout, "comm: the heartbeat (", config_.heartbeat.count(),
             " ms) must be shorter than the timeout (", config_.timeout.count(), " ms)");
  auto deadline = Clock::now() + config_.timeout;
  if (node_ == 0) {
    endpoint_.bind("tcp://*:" + port_of(config_.scheduler));
    addresses_[0] = config_.scheduler;
    if (num_nodes_ == 1) ready_ = true;
  } else {
    addresses_[node_] = "tcp://" + config_.host + ":" + port_of(endpoint_.bind("tcp://*:*"));
    endpoint_.connect(0, config_.scheduler);
    // The scheduler may start after us: try until the deadline.
    Message reg;
    reg.kind = MessageKind::kControl;
    reg.key = "register";
    reg.meta = addresses_[node_];
    for (;;) {
      try {
        endpoint_.send(0, reg, milliseconds(200));
        break;
      } catch (const Error&) {
        if (Clock::now() > deadline) {
          LOOM_THROW(ErrorKind::kRuntime, "comm: ", describe(node_), " could not reach the scheduler at ",
                     config_.scheduler, " within ", seconds(config_.timeout), " s");
        }
      }
    }
  }
  if (node_ != 0) deadline = Clock::now() + config_.timeout;  // counted from the registration
  receiver_ = std::thread([this] { receive_loop(); });
  // A node waits half a timeout longer than the scheduler waits for the
  // others: when one never comes, the scheduler's error, which names it,
  // arrives before this node gives up on its own.
  const auto wait_until = node_ == 0 ? deadline : deadline + config_.timeout / 2;
  std::unique_lock<std::mutex> lock(mutex_);
  const bool arrived = changed_.wait_until(lock, wait_until, [&] { return ready_ || !failure_.empty(); });
  if (!arrived) {
    std::string missing;
    if (node_ == 0) {
      for (std::int32_t n = 1; n < num_nodes_; ++n) {
        if (addresses_[n].empty()) missing += (missing.empty() ? "" : ", ") + describe(n);
      }
      lock.unlock();
      set_failure("the group did not form within " + std::to_string(seconds(config_.timeout)) +
                      " s: no registration from " + missing, true);
    } else {
      lock.unlock();
      set_failure(describe(node_) + " did not hear back from the scheduler within " +
                      std::to_string(seconds(config_.timeout)) + " s of registering", false);
    }
    lock.lock();
  }
  if (!failure_.empty()) {
    const std::string why = failure_;
    stopping_ = true;
    lock.unlock();
    receiver_.join();
    LOOM_THROW(ErrorKind::kRuntime, "comm: ", why);
  }
}

Group::~Group() {
  const bool healthy = failure().empty();
  if (healthy && node_ != 0) {
    try {
      control(0, "bye", "");
    } catch (const Error&) {
    }
  }
  if (healthy && node_ == 0) {
    // Outlive the nodes, so none mistakes a clean end for a dead scheduler.
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait_for(lock, config_.timeout, [&] {
      if (!failure_.empty()) return true;
      for (std::int32_t n = 1; n < num_nodes_; ++n) {
        if (!left_[n]) return false;
      }
      return true;
    });
  }
  {
    std::lock_guard<std::mutex> hold(mutex_);
    stopping_ = true;
  }
  if (receiver_.joinable()) receiver_.join();
}

void Group::control(std::int32_t node, const std::string& command, const std::string& meta, std::uint64_t request) {
  Message m;
  m.kind = MessageKind::kControl;
  m.key = command;
  m.meta = meta;
  m.request = request;
  endpoint_.send(node, std::move(m), config_.timeout);
}

// A send from the receive thread: it must not stall heartbeats for a whole
// timeout, and a node it cannot reach fails the job, named.
bool Group::reply(std::int32_t node, const std::string& command, const std::string& meta) {
  Message m;
  m.kind = MessageKind::kControl;
  m.key = command;
  m.meta = meta;
  try {
    endpoint_.send(node, std::move(m), std::max<milliseconds>(config_.heartbeat, milliseconds(1000)));
    return true;
  } catch (const Error& e) {
    set_failure(describe(node) + " could not be reached: " + e.what(), node_ == 0);
    return false;
  }
}

std::vector<std::int32_t> Group::members(Members which) const {
  std::vector<std::int32_t> out;
  for (std::int32_t n = 0; n < num_nodes_; ++n) {
    const bool server = n >= 1 && n <= config_.num_servers, worker = n > config_.num_servers;
    if (which == Members::kAll || (which == Members::kServers && server) || (which == Members::kWorkers && worker)) {
      out.push_back(n);
    }
  }
  return out;
}

void Group::receive_loop() {
  auto next_beat = Clock::now();
  for (;;) {
    {
      std::lock_guard<std::mutex> hold(mutex_);
      if (stopping_) return;
    }
    const auto wait = std::min<milliseconds>(config_.heartbeat, milliseconds(50));
    try {
      if (std::optional<Message> m = endpoint_.poll(wait)) handle(std::move(*m));
    } catch (const std::exception& e) {
      // A malformed message is the sender's fault, not ours: say so, go on.
      std::fprintf(stderr, "loom: %s\n", e.what());
    }
    if (Clock::now() >= next_beat) {
      next_beat = Clock::now() + config_.heartbeat;
      bool ready, failed;
      {
        std::lock_guard<std::mutex> hold(mutex_);
        ready = ready_;
        failed = !failure_.empty();
      }
      if (!failed) {
        Message beat;
        beat.kind = MessageKind::kHeartbeat;
        if (node_ != 0) {
          try {
            endpoint_.send(0, beat, config_.heartbeat);
          } catch (const Error&) {  // a lost scheduler shows as silence
          }
        } else if (ready) {
          for (std::int32_t n = 1; n < num_nodes_; ++n) {
            if (left_[n]) continue;
            try {
              endpoint_.send(n, beat, config_.heartbeat);
            } catch (const Error&) {  // a lost node shows as silence
            }
          }
        }
        if (ready) check_heartbeats();
      }
    }
  }
}

void Group::check_heartbeats() {
  const auto now = Clock::now();
  std::string dead;
  {
    std::lock_guard<std::mutex> hold(mutex_);
    if (node_ == 0) {
      for (std::int32_t n = 1; n < num_nodes_ && dead.empty(); ++n) {
        if (!left_[n] && now - last_seen_[n] > config_.timeout) {
          dead = describe(n) + " stopped answering: no heartbeat for " + std::to_string(seconds(now - last_seen_[n])) +
                 " s (it was killed, crashed or cut off)";
        }
      }
    } else if (now - last_seen_[0] > config_.timeout) {
      dead = "the scheduler (node 0) stopped answering: nothing heard for " + std::to_string(seconds(now - last_seen_[0])) +
             " s (it was killed, crashed or cut off)";
    }
  }
  if (!dead.empty()) set_failure(dead, node_ == 0);
}

void Group::handle(Message m) {
  const std::int32_t from = m.sender;
  if (from < 0 || from >= num_nodes_) {
    std::fprintf(stderr, "loom: comm: ignored a message from node %d, which is not in this group of %d\n", from,
                 num_nodes_);
    return;
  }
  {
    std::lock_guard<std::mutex> hold(mutex_);
    last_seen_[from] = Clock::now();
  }
  switch (m.kind) {
    case MessageKind::kHeartbeat:
      return;
    case MessageKind::kError:
      set_failure(m.meta, node_ == 0);
      return;
    case MessageKind::kData:
      break;
    case MessageKind::kControl:
      if (m.key == "register" && node_ == 0) return on_register(m);
      if (m.key == "barrier" && node_ == 0) return on_barrier(m);
      if (m.key == "bye" && node_ == 0) {
        {
          std::lock_guard<std::mutex> hold(mutex_);
          left_[from] = true;
          changed_.notify_all();
        }
        check_barriers_for_leavers();
        return;
      }
      if (m.key == "topology" && from == 0) {
        std::vector<std::string> table;
        std::istringstream lines(m.meta);
        for (std::string line; std::getline(lines, line);) table.push_back(line);
        if (static_cast<std::int32_t>(table.size()) != num_nodes_) {
          set_failure("the scheduler's address table lists " + std::to_string(table.size()) + " nodes, this " +
                          describe(node_) + " expects " + std::to_string(num_nodes_) +
                          " (were all started with the same LOOM_NUM_WORKER and LOOM_NUM_SERVER?)", false);
          return;
        }
        for (std::int32_t n = 1; n < num_nodes_; ++n) {
          if (n != node_) endpoint_.connect(n, table[n]);
        }
        std::lock_guard<std::mutex> hold(mutex_);
        addresses_ = table;
        ready_ = true;
        changed_.notify_all();
        return;
      }
      if (m.key == "barrier_done" && from == 0) {
        const int which = parse_members(m.meta);
        if (which < 0) break;  // not ours: the user layer sees it
        std::lock_guard<std::mutex> hold(mutex_);
        ++barrier_done_[which];
        changed_.notify_all();
        return;
      }
      break;
  }
  std::lock_guard<std::mutex> hold(mutex_);
  inbox_.push_back(std::move(m));
  changed_.notify_all();
}

void Group::on_register(const Message& m) {
  std::string table;
  {
    std::lock_guard<std::mutex> hold(mutex_);
    if (!addresses_[m.sender].empty()) {
      std::fprintf(stderr, "loom: comm: %s registered twice; keeping its first address\n", describe(m.sender).c_str());
      return;
    }
    addresses_[m.sender] = m.meta;
  }
  endpoint_.connect(m.sender, m.meta);
  {
    std::lock_guard<std::mutex> hold(mutex_);
    for (const std::string& a : addresses_) {
      if (a.empty()) return;  // more to come
    }
    for (const std::string& a : addresses_) table += a + "\n";
  }
  for (std::int32_t n = 1; n < num_nodes_; ++n) {
    if (!reply(n, "topology", table)) return;
  }
  std::lock_guard<std::mutex> hold(mutex_);
  ready_ = true;
  for (auto& t : last_seen_) t = Clock::now();  // heartbeats count from here
  changed_.notify_all();
}

// A barrier that waits for a node which has left can never complete: fail
// it rather than let the others hang (MXNet's dist_sync did, when workers
// had uneven numbers of batches).
void Group::check_barriers_for_leavers() {
  std::string why;
  {
    std::lock_guard<std::mutex> hold(mutex_);
    for (int which = 0; which < kMemberKinds && why.empty(); ++which) {
      const auto& arrived = barrier_arrived_[which];
      if (arrived.empty()) continue;
      for (std::int32_t n : members(static_cast<Members>(which))) {
        if (left_[n] && std::find(arrived.begin(), arrived.end(), n) == arrived.end()) {
          why = describe(n) + " left the job while " + std::to_string(arrived.size()) +
                " other node(s) wait for it in a barrier (did it run fewer steps than the others?)";
          break;
        }
      }
    }
  }
  if (!why.empty()) set_failure(why, true);
}

void Group::on_barrier(const Message& m) {
  const int which = parse_members(m.meta);
  if (which < 0) {
    std::fprintf(stderr, "loom: comm: ignored a barrier from %s with members '%s'\n", describe(m.sender).c_str(),
                 m.meta.c_str());
    return;
  }
  std::vector<std::int32_t> done;
  {
    std::lock_guard<std::mutex> hold(mutex_);
    auto& arrived = barrier_arrived_[which];
    arrived.push_back(m.sender);
    const std::vector<std::int32_t> expected = members(static_cast<Members>(which));
    if (arrived.size() < expected.size()) {
      done.clear();
    } else {
      arrived.clear();
      done = expected;
    }
  }
  if (done.empty()) {
    check_barriers_for_leavers();
    return;
  }
  for (std::int32_t n : done) {
    if (n == 0) {
      std::lock_guard<std::mutex> hold(mutex_);
      ++barrier_done_[which];
      changed_.notify_all();
    } else if (!reply(n, "barrier_done", std::to_string(which))) {
      return;
    }
  }
}

void Group::barrier(Members which) {
  const int index = static_cast<int>(which);
  const std::vector<std::int32_t> expected = members(which);
  LOOM_CHECK(std::find(expected.begin(), expected.end(), node_) != expected.end(), "comm: ", describe(node_),
             " is not among the nodes of this barrier");
  std::uint64_t generation;
  {
    std::lock_guard<std::mutex> hold(mutex_);
    throw_if_failed();
    generation = ++barrier_called_[index];
  }
  if (node_ == 0) {
    Message self;
    self.sender = 0;
    self.meta = std::to_string(index);
    on_barrier(self);
  } else {
    control(0, "barrier", std::to_string(index));
  }
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [&] { return barrier_done_[index] >= generation || !failure_.empty(); });
  throw_if_failed();
}

void Group::send(std::int32_t node, Message m) {
  LOOM_CHECK(node >= 0 && node < num_nodes_ && node != node_, "comm: ", describe(node_), " cannot send to node ",
             node, " (the group has nodes 0 to ", num_nodes_ - 1, ")");
  {
    std::lock_guard<std::mutex> hold(mutex_);
    throw_if_failed();
  }
  endpoint_.send(node, std::move(m), config_.timeout);
}

Message Group::recv(std::chrono::milliseconds timeout) {
  std::optional<Message> m = poll(timeout);
  if (!m) LOOM_THROW(ErrorKind::kRuntime, "comm: ", describe(node_), " received nothing within ", timeout.count(), " ms");
  return std::move(*m);
}

std::optional<Message> Group::poll(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  const bool got = changed_.wait_for(lock, timeout, [&] { return !inbox_.empty() || !failure_.empty(); });
  throw_if_failed();
  if (!got) return std::nullopt;
  Message m = std::move(inbox_.front());
  inbox_.pop_front();
  return m;
}

void Group::fail(const std::string& why) {
  const std::string message = describe(node_) + " failed: " + why;
  set_failure(message, node_ == 0);
  if (node_ != 0) {
    Message e;
    e.kind = MessageKind::kError;
    e.meta = message;
    try {
      endpoint_.send(0, std::move(e), config_.heartbeat);
    } catch (const Error&) {  // the scheduler is gone too; our own failure is set
    }
  }
}

bool Group::all_left() const {
  std::lock_guard<std::mutex> hold(mutex_);
  for (std::int32_t n = 1; n < num_nodes_; ++n) {
    if (!left_[n]) return false;
  }
  return true;
}

std::string Group::failure() const {
  std::lock_guard<std::mutex> hold(mutex_);
  return failure_;
}

void Group::throw_if_failed() const {
  if (!failure_.empty()) LOOM_THROW(ErrorKind::kRuntime, "comm: the job failed: ", failure_);
}

void Group::set_failure(const std::string& why, bool tell_others) {
  {
    std::lock_guard<std::mutex> hold(mutex_);
    if (!failure_.empty()) return;
    failure_ = why;
    changed_.notify_all();
  }
  if (!tell_others) return;
  for (std::int32_t n = 1; n < num_nodes_; ++n) {
    bool skip;
    {
      std::lock_guard<std::mutex> hold(mutex_);
      skip = left_[n] || addresses_[n].empty() || n == node_;
    }
    if (skip) continue;
    Message e;
    e.kind = MessageKind::kError;
    e.meta = why;
    try {
      endpoint_.send(n, std::move(e), config_.heartbeat);
    } catch (const Error&) {  // that node is gone as well
    }
  }
}

}  // namespace loom::comm
