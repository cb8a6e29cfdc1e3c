// The process-wide engine: creation from the environment, fork() and exit.
// Also the small pieces both engines share (engine_internal.h).
#include "microkernel/engine/engine.h"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

#include "microkernel/engine/engine_internal.h"
#include "microkernel/engine/naive_engine.h"
#include "microkernel/engine/threaded_engine.h"
#include "microkernel/engine/var.h"
#include "microkernel/storage/storage.h"

namespace loom::engine {

// ------------------------------------------------------------------ shared pieces

namespace detail {

Var* new_var() {
  static std::atomic<std::uint64_t> next_id{0};
  return new Var(next_id.fetch_add(1, std::memory_order_relaxed));
}

void destroy_var(Var* var) { delete var; }

void collect_vars(const char* op_name, VarList reads, VarList writes, VarSet& out_reads,
                  VarSet& out_writes) {
  for (Var* var : writes) {
    LOOM_CHECK(var != nullptr, "engine: op '", op_name, "' was pushed with a null var to write");
    if (!out_writes.contains(var)) out_writes.push_back(var);
  }
  for (Var* var : reads) {
    LOOM_CHECK(var != nullptr, "engine: op '", op_name, "' was pushed with a null var to read");
    if (!out_writes.contains(var) && !out_reads.contains(var)) out_reads.push_back(var);
  }
}

FailurePtr first_failure(const Op& op) {
  for (Var* var : op.reads)
    if (var->failure) return var->failure;
  for (Var* var : op.writes)
    if (var->failure) return var->failure;
  return nullptr;
}

namespace {
thread_local std::shared_ptr<const std::string> tl_origin;
}

std::shared_ptr<const std::string> current_origin() { return tl_origin; }

}  // namespace detail

OriginScope::OriginScope(std::string origin)
    : previous_(std::exchange(detail::tl_origin, std::make_shared<const std::string>(std::move(origin)))) {}

OriginScope::~OriginScope() { detail::tl_origin = std::move(previous_); }

FailurePtr make_failure(std::exception_ptr error, const char* op_name,
                        const std::shared_ptr<const std::string>& origin) {
  auto failure = std::make_shared<Failure>();
  std::string what;
  try {
    std::rethrow_exception(error);
  } catch (const Error& e) {
    failure->kind = e.kind();
    what = e.what();
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
    what = "an exception that is not a std::exception";
  }
  failure->message = what + " [in engine op '" + op_name + "'";
  if (origin) failure->message += ", pushed by " + *origin;
  failure->message += "]";
  return failure;
}

struct Completion::Target {
  const char* op_name;
  std::function<void(std::exception_ptr)> complete;
  std::atomic<bool> called{false};
};

void Completion::operator()(std::exception_ptr error) const {
  if (!target_) {
    std::fprintf(stderr, "loom engine: an empty Completion was called; ignored\n");
    return;
  }
  if (target_->called.exchange(true)) {
    std::fprintf(stderr, "loom engine: async op '%s' completed twice; the second call is ignored\n",
                 target_->op_name);
    return;
  }
  target_->complete(std::move(error));
}

Completion detail::make_completion(const char* op_name,
                                   std::function<void(std::exception_ptr)> complete) {
  auto target = std::make_shared<Completion::Target>();
  target->op_name = op_name;
  target->complete = std::move(complete);
  return Completion(std::move(target));
}

// ------------------------------------------------------------------ configuration

namespace {

long env_long(const char* name, long fallback, long min_value) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  char* end = nullptr;
  long value = std::strtol(text, &end, 10);
  if (*end != '\0' || value < min_value) {
    std::fprintf(stderr, "loom: ignoring %s=%s (expected an integer >= %ld); using %ld\n", name,
                 text, min_value, fallback);
    return fallback;
  }
  return value;
}

// Physical cores: hyperthreads share a core's arithmetic units, so more
// workers than cores only adds contention for compute-bound ops.
int physical_cores() {
  std::set<std::pair<std::string, std::string>> cores;
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line, physical_id = "0";
  while (std::getline(cpuinfo, line)) {
    auto value = [&] { return line.substr(line.find(':') + 1); };
    if (line.rfind("physical id", 0) == 0) physical_id = value();
    if (line.rfind("core id", 0) == 0) cores.insert({physical_id, value()});
  }
  int logical = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (cores.empty()) return logical;
  return std::min(logical, static_cast<int>(cores.size()));
}

}  // namespace

EngineConfig EngineConfig::from_environment() {
  EngineConfig config;
  config.cpu_threads = static_cast<int>(env_long("LOOM_CPU_WORKER_NTHREADS", physical_cores(), 1));
  config.max_pending = env_long("LOOM_ENGINE_MAX_PENDING", 65536, 1);
  if (const char* text = std::getenv("LOOM_ENGINE_WATCHDOG"); text && *text) {
    char* end = nullptr;
    double seconds = std::strtod(text, &end);
    if (*end == '\0' && seconds > 0) config.watchdog_seconds = seconds;
    else std::fprintf(stderr, "loom: ignoring LOOM_ENGINE_WATCHDOG=%s (expected seconds > 0)\n", text);
  }
  return config;
}

std::unique_ptr<Engine> make_engine(const std::string& kind) {
  if (kind == "naive") return std::make_unique<NaiveEngine>();
  LOOM_CHECK(kind == "threaded", "engine: unknown engine kind '", kind,
             "' (expected 'threaded' or 'naive')");
  return std::make_unique<ThreadedEngine>(EngineConfig::from_environment());
}

// ------------------------------------------------------------------ the process-wide engine
//
// Created on first use and never destroyed by a static destructor: at exit an
// atexit handler drains it (pending ops finish; Python programs that forgot
// wait_all() exit cleanly) and stops its workers, and from then on a naive
// engine serves late callers (arrays freed during interpreter teardown).
// fork(): the prepare handler drains the engine so no Var is mid-update; the
// child then abandons the parent's engine — its worker threads do not exist
// in the child — and creates a fresh one on next use. The parent keeps its
// workers.

namespace {

std::mutex g_engine_lock;
std::atomic<Engine*> g_engine{nullptr};
bool g_exiting = false;
// Engines a fork() child inherited: their workers do not exist there, so
// they can neither run nor be destroyed; kept reachable, never used.
Engine* g_abandoned_in_child = nullptr;

double exit_timeout_seconds() {
  return static_cast<double>(env_long("LOOM_ENGINE_EXIT_TIMEOUT", 60, 1));
}

void shutdown_at_exit() {
  std::lock_guard<std::mutex> hold(g_engine_lock);
  Engine* engine = g_engine.load();
  g_exiting = true;
  if (auto* threaded = dynamic_cast<ThreadedEngine*>(engine)) {
    bool drained = threaded->drain(exit_timeout_seconds());
    if (!drained) {
      std::string report = threaded->describe_pending();
      std::fprintf(stderr,
                   "loom: exiting with engine ops still running after %.0f s "
                   "(LOOM_ENGINE_EXIT_TIMEOUT); abandoning them\n%s",
                   exit_timeout_seconds(), report.c_str());
    }
    threaded->stop_workers(/*join=*/drained);
    g_engine.store(new NaiveEngine());
    if (drained) delete threaded;  // else ops still hold it: leave it be
  }
}

// The engine lock is held across fork() so no thread is half-way through
// creating the engine when the child is cut off from it.
void fork_prepare() {
  g_engine_lock.lock();
  Engine* engine = g_engine.load();
  if (auto* threaded = dynamic_cast<ThreadedEngine*>(engine)) threaded->drain(0);
  storage::fork_prepare();
}

void fork_parent() {
  storage::fork_parent();
  g_engine_lock.unlock();
}

void fork_child() {
  storage::fork_child();
  if (Engine* inherited = g_engine.exchange(nullptr)) g_abandoned_in_child = inherited;
  g_engine_lock.unlock();
}

Engine* create_engine() {
  static bool hooks_installed = [] {
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    std::atexit(shutdown_at_exit);
    return true;
  }();
  (void)hooks_installed;
  const char* kind = std::getenv("LOOM_ENGINE");
  std::string name = kind && *kind ? kind : "threaded";
  if (g_exiting) name = "naive";
  if (name != "threaded" && name != "naive") {
    std::fprintf(stderr, "loom: LOOM_ENGINE=%s is not 'threaded' or 'naive'; using threaded\n",
                 name.c_str());
    name = "threaded";
  }
  return make_engine(name).release();
}

}  // namespace

Engine& Engine::get() {
  if (Engine* engine = g_engine.load(std::memory_order_acquire)) return *engine;
  std::lock_guard<std::mutex> hold(g_engine_lock);
  if (Engine* engine = g_engine.load()) return *engine;
  Engine* engine = create_engine();
  g_engine.store(engine, std::memory_order_release);
  return *engine;
}

}  // namespace loom::engine
