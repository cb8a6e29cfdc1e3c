// The engine against a sequential oracle: many threads push ops over shared
// Vars; each op reads and writes plain (non-atomic) per-Var state, so a
// missing dependency is both a wrong result here and a data race under
// ThreadSanitizer. The oracle replays the ops one by one in push order.
//
// LOOM_STRESS_SEEDS and LOOM_STRESS_OPS scale it (defaults: 20 seeds of
// 100,000 ops over 64 Vars from 8 threads, for each engine).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "microkernel/engine/engine.h"

namespace loom::engine {
namespace {

constexpr int kVars = 64;
constexpr int kThreads = 8;

int env_int(const char* name, int fallback) {
  const char* text = std::getenv(name);
  return text && *text ? std::atoi(text) : fallback;
}

struct PlannedOp {
  std::vector<int> reads, writes;
  std::uint64_t seq = 0;                // filled in after push() returns
  std::vector<std::uint64_t> seen;      // values of `reads`, as the op saw them
};

struct World {
  std::uint64_t value[kVars] = {};      // deliberately not atomic
  std::vector<int> writers[kVars];      // op ids, in the order they ran
};

std::uint64_t mix(std::uint64_t a, std::uint64_t b) {
  std::uint64_t x = (a ^ (b + 0x9e3779b97f4a7c15ULL + (a << 6) + (a >> 2)));
  return x * 0xff51afd7ed558ccdULL;
}

// What one op does, both in the engine and in the oracle.
void apply(int id, PlannedOp& op, World& world) {
  std::uint64_t h = static_cast<std::uint64_t>(id);
  op.seen.clear();
  for (int r : op.reads) {
    op.seen.push_back(world.value[r]);
    h = mix(h, world.value[r]);
  }
  for (int w : op.writes) {
    world.value[w] = mix(world.value[w], h);
    world.writers[w].push_back(id);
  }
}

std::vector<PlannedOp> plan(std::uint32_t seed, int count) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> var(0, kVars - 1), how_many(0, 3);
  std::vector<PlannedOp> ops(count);
  for (PlannedOp& op : ops) {
    int reads = how_many(rng), writes = how_many(rng);
    if (reads + writes == 0) writes = 1;
    // Duplicates and read+write overlap are left in on purpose: the engine
    // must treat them as documented (a var both read and written is written).
    for (int i = 0; i < reads; ++i) op.reads.push_back(var(rng));
    for (int i = 0; i < writes; ++i) op.writes.push_back(var(rng));
  }
  return ops;
}

// What the op's effect is in the oracle: reads exclude vars it also writes
// (it then reads its own write's old value, same as the engine gives it).
void run_seed(const std::string& kind, std::uint32_t seed, int op_count) {
  std::unique_ptr<Engine> engine = make_engine(kind);
  std::vector<Var*> vars(kVars);
  for (Var*& v : vars) v = engine->new_var();

  std::vector<PlannedOp> ops = plan(seed, op_count);
  World world;
  std::vector<std::thread> pushers;
  for (int t = 0; t < kThreads; ++t) {
    pushers.emplace_back([&, t] {
      for (int id = t; id < op_count; id += kThreads) {
        PlannedOp& op = ops[id];
        std::vector<Var*> reads, writes;
        for (int r : op.reads) reads.push_back(vars[r]);
        for (int w : op.writes) writes.push_back(vars[w]);
        op.seq = engine->push([id, &op, &world](const RunContext&) { apply(id, op, world); },
                              Context{}, reads, writes, 0, "stress");
      }
    });
  }
  for (auto& t : pushers) t.join();
  engine->wait_all();

  // The oracle: the same ops, one at a time, in push order.
  std::vector<int> order(op_count);
  for (int i = 0; i < op_count; ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](int a, int b) { return ops[a].seq < ops[b].seq; });
  World expected;
  std::vector<PlannedOp> replay = ops;
  for (int id : order) apply(id, replay[id], expected);

  for (int v = 0; v < kVars; ++v) {
    ASSERT_EQ(world.writers[v], expected.writers[v]) << kind << " seed " << seed << " var " << v;
    ASSERT_EQ(world.value[v], expected.value[v]) << kind << " seed " << seed << " var " << v;
  }
  for (int id = 0; id < op_count; ++id) {
    ASSERT_EQ(ops[id].seen, replay[id].seen) << kind << " seed " << seed << " op " << id;
  }
  for (Var* v : vars) engine->delete_var(v);
  engine->wait_all();
}

class EngineStress : public ::testing::TestWithParam<std::string> {};

TEST_P(EngineStress, RandomDagMatchesSequentialOracle) {
  int seeds = env_int("LOOM_STRESS_SEEDS", 20);
  int op_count = env_int("LOOM_STRESS_OPS", 100000);
  for (int seed = 1; seed <= seeds; ++seed) {
    run_seed(GetParam(), static_cast<std::uint32_t>(seed), op_count);
    if (HasFatalFailure()) return;
  }
}

INSTANTIATE_TEST_SUITE_P(BothEngines, EngineStress, ::testing::Values("threaded", "naive"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace loom::engine
