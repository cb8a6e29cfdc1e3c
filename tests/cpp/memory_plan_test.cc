// The memory planner's walk (solve_memory_plan, plan_memory.h) on problems
// written out by hand: co-sharing, in-place only where it is safe, values
// their ops allocate themselves, and the caller's storages.
#include <gtest/gtest.h>

#include "runtime/graph/plan_memory.h"

namespace loom::graph {
namespace {

using Storage = PlanProblem::Storage;
using Step = PlanProblem::Step;

// Storage k made by value k, `bytes` each; value 0 is the caller's input.
PlanProblem chain(int values, std::int64_t bytes) {
  PlanProblem p;
  for (int v = 0; v < values; ++v) {
    p.storages.push_back(Storage{bytes, v == 0, false, true, v});
    p.storage_of.push_back(v);
  }
  return p;
}

TEST(MemoryPlan, ChainCoSharesTwoBuffers) {
  // v1 = f(v0), v2 = f(v1), ..., v5 = f(v4): no in-place form.
  PlanProblem p = chain(6, 100);
  for (int v = 1; v < 6; ++v) p.steps.push_back(Step{{v - 1}, {v}, {}});
  p.storages[5].output = true;
  const PlanSolution s = solve_memory_plan(p);
  EXPECT_EQ(s.stats.values, 4);
  EXPECT_EQ(s.stats.buffers, 2);
  EXPECT_EQ(s.stats.planned_bytes, 200);
  EXPECT_EQ(s.stats.unplanned_bytes, 400);
  EXPECT_EQ(s.stats.shared, 2);
  EXPECT_EQ(s.stats.external_bytes, 100);
  EXPECT_EQ(s.stats.output_bytes, 100);
  EXPECT_EQ(s.buffer_of[1], s.buffer_of[3]);
  EXPECT_NE(s.buffer_of[1], s.buffer_of[2]);
  EXPECT_EQ(s.buffer_of[0], -1);  // the caller's
  EXPECT_EQ(s.buffer_of[5], -1);
}

TEST(MemoryPlan, InPlaceOverADyingInputOnly) {
  // v1 = g(v0); v2 = relu(v1) may overwrite v1; v3 = v2 + v1 reads v1 after
  // relu in the second problem, so there relu must not.
  PlanProblem p = chain(4, 64);
  p.steps = {Step{{0}, {1}, {}}, Step{{1}, {2}, {1}}, Step{{2}, {3}, {2}}};
  p.storages[3].output = true;
  PlanSolution s = solve_memory_plan(p);
  EXPECT_EQ(s.stats.inplace, 1);
  EXPECT_EQ(s.buffer_of[1], s.buffer_of[2]);
  EXPECT_EQ(s.stats.buffers, 1);

  p.steps = {Step{{0}, {1}, {}}, Step{{1}, {2}, {1}}, Step{{2, 1}, {3}, {2, 1}}};
  s = solve_memory_plan(p);
  EXPECT_NE(s.buffer_of[1], s.buffer_of[2]);
  EXPECT_EQ(s.stats.inplace, 0);  // the add makes the output: the caller's
}

TEST(MemoryPlan, NoInPlaceOverAStorageReadThroughAView) {
  // v1 = exp(v0); v2 = transpose(v1), a view on v1's storage; v3 = v1 + v2:
  // v1 dies there, but writing v3 over it would read overwritten elements.
  PlanProblem p = chain(5, 64);
  p.storage_of[2] = 1;  // the view
  p.steps = {Step{{0}, {1}, {}}, Step{{1}, {2}, {}}, Step{{1, 2}, {3}, {1, 2}}, Step{{3}, {4}, {3}}};
  p.storages[4].output = true;
  const PlanSolution s = solve_memory_plan(p);
  EXPECT_NE(s.buffer_of[3], s.buffer_of[1]);
  EXPECT_EQ(s.stats.inplace, 0);
  EXPECT_EQ(s.stats.values, 2);  // v1 and v3; the view has no storage of its own
}

TEST(MemoryPlan, SelfAllocatedValuesTakeNoBuffer) {
  PlanProblem p = chain(4, 32);
  p.storages[2].placeable = false;  // an op with several outputs, say
  p.steps = {Step{{0}, {1}, {}}, Step{{1}, {2}, {1}}, Step{{2}, {3}, {2}}};
  p.storages[3].output = true;
  const PlanSolution s = solve_memory_plan(p);
  EXPECT_EQ(s.buffer_of[2], -1);
  EXPECT_EQ(s.stats.self_allocated_bytes, 32);
  EXPECT_EQ(s.stats.inplace, 0);  // not over v1, and nothing over v2: it is not in a buffer
  EXPECT_EQ(s.stats.planned_bytes, 32);
  EXPECT_EQ(s.stats.unplanned_bytes, 64);
  EXPECT_EQ(s.stats.peak_live_bytes, 64);  // v1 and v2 at the second step
}

}  // namespace
}  // namespace loom::graph
