// The engine and host allocator benchmark: the same work through loom's
// engines and, when given --mxnet=PATH/libmxnet.so, through MXNet's engine
// via its C API (MXEnginePushSyncND), so both are timed in C++ without any
// Python in the loop. Prints one JSON object per line; bench/bench_engine.py
// runs it and prints the table with ratios.
//
//   engine_bench [--quick] [--only=loom|mxnet|alloc] [--mxnet=/path/libmxnet.so]
//
// MXNet's engine type comes from MXNET_ENGINE_TYPE, which libmxnet reads on
// first use; the driver runs this program once per type.
#include <dlfcn.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "microkernel/engine/engine.h"
#include "microkernel/storage/storage.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

void emit(const char* impl, const char* name, double ns_per_op, std::int64_t ops) {
  std::printf("{\"impl\": \"%s\", \"case\": \"%s\", \"ns_per_op\": %.1f, \"ops\": %lld}\n", impl, name,
              ns_per_op, static_cast<long long>(ops));
  std::fflush(stdout);
}

// Busy for `ms` milliseconds of wall time (a stand-in for a real kernel).
void spin_for_ms(double ms) {
  auto end = Clock::now() + std::chrono::duration<double, std::milli>(ms);
  while (Clock::now() < end) {
  }
}

// One engine, seen through the operations the cases need.
struct EngineUnderTest {
  std::string name;
  std::function<void*()> new_var;
  // Pushes fn(arg) writing `writes` (may be empty).
  std::function<void(void (*fn)(void*), void* arg, std::vector<void*>& writes)> push;
  std::function<void()> wait_all;
};

std::atomic<std::int64_t> g_counter{0};
void count_one(void*) { g_counter.fetch_add(1, std::memory_order_relaxed); }
void spin_one_ms(void*) { spin_for_ms(1.0); }

void run_cases(EngineUnderTest& e, bool quick) {
  const std::int64_t n = quick ? 100000 : 1000000;
  std::vector<void*> none;

  {  // trivial ops, no vars, one pushing thread: push + run, end to end
    e.wait_all();
    auto start = Clock::now();
    for (std::int64_t i = 0; i < n; ++i) e.push(count_one, nullptr, none);
    e.wait_all();
    emit(e.name.c_str(), "empty op, 1 pusher", seconds_since(start) * 1e9 / n, n);
  }
  {  // the same from two threads
    auto start = Clock::now();
    std::vector<std::thread> pushers;
    for (int t = 0; t < 2; ++t)
      pushers.emplace_back([&] {
        std::vector<void*> no_vars;
        for (std::int64_t i = 0; i < n / 2; ++i) e.push(count_one, nullptr, no_vars);
      });
    for (auto& t : pushers) t.join();
    e.wait_all();
    emit(e.name.c_str(), "empty op, 2 pushers", seconds_since(start) * 1e9 / n, n);
  }
  {  // a chain: every op writes the same var, so each waits for the last
    std::vector<void*> one = {e.new_var()};
    auto start = Clock::now();
    for (std::int64_t i = 0; i < n; ++i) e.push(count_one, nullptr, one);
    e.wait_all();
    emit(e.name.c_str(), "chain of dependent ops", seconds_since(start) * 1e9 / n, n);
  }
  {  // independent ops, each writing one of 4096 vars round robin
    std::vector<void*> vars;
    for (int i = 0; i < 4096; ++i) vars.push_back(e.new_var());
    std::vector<void*> one(1);
    auto start = Clock::now();
    for (std::int64_t i = 0; i < n; ++i) {
      one[0] = vars[i % 4096];
      e.push(count_one, nullptr, one);
    }
    e.wait_all();
    emit(e.name.c_str(), "independent ops (4096 vars)", seconds_since(start) * 1e9 / n, n);
  }
  {  // parallelism: two independent chains of 1 ms ops vs one chain
    const int length = quick ? 10 : 40;
    std::vector<void*> a = {e.new_var()}, b = {e.new_var()};
    auto start = Clock::now();
    for (int i = 0; i < length; ++i) e.push(spin_one_ms, nullptr, a);
    e.wait_all();
    double one_chain = seconds_since(start);
    start = Clock::now();
    for (int i = 0; i < length; ++i) {
      e.push(spin_one_ms, nullptr, a);
      e.push(spin_one_ms, nullptr, b);
    }
    e.wait_all();
    double two_chains = seconds_since(start);
    // Reported as ns per op of the two-chain run; the driver prints the
    // two/one ratio (1.0 = perfect overlap on 2 cores, 2.0 = serialized).
    emit(e.name.c_str(), "1 ms ops: one chain", one_chain * 1e9 / length, length);
    emit(e.name.c_str(), "1 ms ops: two chains", two_chains * 1e9 / length, 2 * length);
  }
}

EngineUnderTest loom_engine(const std::string& kind) {
  auto engine = std::shared_ptr<loom::engine::Engine>(loom::engine::make_engine(kind));
  EngineUnderTest e;
  e.name = "loom " + kind;
  e.new_var = [engine] { return static_cast<void*>(engine->new_var()); };
  e.push = [engine](void (*fn)(void*), void* arg, std::vector<void*>& writes) {
    engine->push([fn, arg](const loom::engine::RunContext&) { fn(arg); }, {}, {},
                 loom::engine::VarList(reinterpret_cast<loom::engine::Var* const*>(writes.data()),
                                       writes.size()),
                 0, "bench");
  };
  e.wait_all = [engine] { engine->wait_all(); };
  return e;
}

// ------------------------------------------------------------------ MXNet through its C API

struct MxApi {
  using SyncFunc = void (*)(void*, void*);
  using Deleter = void (*)(void*);
  int (*push_sync_nd)(SyncFunc, void*, Deleter, const void*, void**, int, void**, int, const void*,
                      int, const char*);
  int (*nd_create)(const std::uint32_t*, std::uint32_t, int, int, int, void**);
  int (*wait_all)();
  const char* (*last_error)();
};

// MXNet's Context {DeviceType dev_type; int32_t dev_id;} with kCPU = 1.
struct MxContext {
  int dev_type = 1;
  int dev_id = 0;
};

struct MxCall {
  void (*fn)(void*);
  void* arg;
};
void mx_trampoline(void* /*run_context*/, void* param) {
  auto* call = static_cast<MxCall*>(param);
  call->fn(call->arg);
}
void mx_delete(void* param) { delete static_cast<MxCall*>(param); }

bool mxnet_engine(const std::string& path, EngineUnderTest& e) {
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    std::fprintf(stderr, "engine_bench: cannot load %s: %s\n", path.c_str(), dlerror());
    return false;
  }
  auto api = std::make_shared<MxApi>();
  api->push_sync_nd = reinterpret_cast<decltype(api->push_sync_nd)>(dlsym(lib, "MXEnginePushSyncND"));
  api->nd_create = reinterpret_cast<decltype(api->nd_create)>(dlsym(lib, "MXNDArrayCreate"));
  api->wait_all = reinterpret_cast<decltype(api->wait_all)>(dlsym(lib, "MXNDArrayWaitAll"));
  api->last_error = reinterpret_cast<decltype(api->last_error)>(dlsym(lib, "MXGetLastError"));
  if (!api->push_sync_nd || !api->nd_create || !api->wait_all || !api->last_error) {
    std::fprintf(stderr, "engine_bench: %s lacks the engine C API\n", path.c_str());
    return false;
  }
  static MxContext cpu;
  const char* type = std::getenv("MXNET_ENGINE_TYPE");
  e.name = std::string("mxnet ") + (type ? type : "ThreadedEnginePerDevice");
  e.new_var = [api]() -> void* {
    std::uint32_t shape[1] = {1};
    void* nd = nullptr;
    if (api->nd_create(shape, 1, 1, 0, 0, &nd) != 0) {
      std::fprintf(stderr, "MXNDArrayCreate: %s\n", api->last_error());
      std::exit(1);
    }
    return nd;  // the NDArray stands for its var; leaked, like the vars above
  };
  e.push = [api](void (*fn)(void*), void* arg, std::vector<void*>& writes) {
    auto* call = new MxCall{fn, arg};
    if (api->push_sync_nd(mx_trampoline, call, mx_delete, &cpu, nullptr, 0,
                          writes.empty() ? nullptr : writes.data(), static_cast<int>(writes.size()),
                          nullptr, 0, "bench") != 0) {
      std::fprintf(stderr, "MXEnginePushSyncND: %s\n", api->last_error());
      std::exit(1);
    }
  };
  e.wait_all = [api] { api->wait_all(); };
  return true;
}

// ------------------------------------------------------------------ allocator

void run_alloc(bool quick) {
  const int n = quick ? 200000 : 2000000;
  for (std::size_t bytes : {std::size_t{64}, std::size_t{4096}, std::size_t{1} << 20}) {
    std::string label = bytes >= (1 << 20) ? std::to_string(bytes >> 20) + " MiB"
                        : bytes >= 1024    ? std::to_string(bytes >> 10) + " KiB"
                                           : std::to_string(bytes) + " B";
    int reps = bytes >= (1 << 20) ? n / 10 : n;
    // Each pair touches one byte so neither side can drop the allocation.
    auto start = Clock::now();
    for (int i = 0; i < reps; ++i) {
      void* p = loom::storage::alloc(bytes, loom::Device::cpu());
      static_cast<volatile char*>(p)[0] = 1;
      loom::storage::free(p, bytes, loom::Device::cpu());
    }
    emit("loom storage", ("alloc+free " + label).c_str(), seconds_since(start) * 1e9 / reps, reps);
    start = Clock::now();
    for (int i = 0; i < reps; ++i) {
      void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
      static_cast<volatile char*>(p)[0] = 1;
      std::free(p);
    }
    emit("malloc", ("alloc+free " + label).c_str(), seconds_since(start) * 1e9 / reps, reps);
  }
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  std::string only, mxnet_path;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--quick") quick = true;
    else if (arg.rfind("--only=", 0) == 0) only = arg.substr(7);
    else if (arg.rfind("--mxnet=", 0) == 0) mxnet_path = arg.substr(8);
    else {
      std::fprintf(stderr, "usage: engine_bench [--quick] [--only=loom|mxnet|alloc] [--mxnet=PATH]\n");
      return 2;
    }
  }
  if (only.empty() || only == "loom") {
    for (const char* kind : {"threaded", "naive"}) {
      EngineUnderTest e = loom_engine(kind);
      run_cases(e, quick);
    }
  }
  if ((only.empty() || only == "mxnet") && !mxnet_path.empty()) {
    EngineUnderTest e;
    if (!mxnet_engine(mxnet_path, e)) return 1;
    run_cases(e, quick);
  }
  if (only.empty() || only == "alloc") run_alloc(quick);
  return 0;
}
