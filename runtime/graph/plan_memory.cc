#include "runtime/graph/plan_memory.h"

#include <algorithm>
#include <iterator>
#include <unordered_map>

#include "microkernel/base/error.h"

namespace loom::graph {
namespace {

// May the step's output be written over value `c`'s storage? Only when
// the step reads that storage through values that each cover it whole (a
// reshape does; x + x.T would read elements it had already overwritten).
bool may_overwrite(const PlanProblem& p, const PlanProblem::Step& step, int c) {
  const int st = p.storage_of[c];
  if (st < 0) return false;
  auto whole = [&](int v) { return v == p.storages[st].maker || (!p.whole.empty() && p.whole[v]); };
  return std::all_of(step.reads.begin(), step.reads.end(),
                     [&](int r) { return p.storage_of[r] != st || whole(r); });
}

}  // namespace

std::vector<int> inplace_slots(const OpSchema& op, std::size_t inputs) {
  std::vector<int> slots;
  const int count = static_cast<int>(inputs);
  if (op.inplace_slot >= 0 && op.inplace_slot < count) slots.push_back(op.inplace_slot);
  for (int i = 0; op.elementwise && i < count; ++i) {
    if (i != op.inplace_slot) slots.push_back(i);
  }
  return slots;
}

bool covers_storage(const NDArray& a) {
  return a.offset() == 0 && a.is_contiguous() && a.nbytes() == a.storage()->bytes();
}

PlanSolution solve_memory_plan(const PlanProblem& p) {
  const std::size_t count = p.storages.size();
  PlanSolution out;
  MemoryPlan& plan = out.stats;
  out.buffer_of.assign(count, -1);
  std::vector<int> last_use(count, -1), made_at(count, -1);
  for (std::size_t s = 0; s < p.steps.size(); ++s) {
    for (int v : p.steps[s].reads) {
      if (const int st = p.storage_of[v]; st >= 0) last_use[st] = static_cast<int>(s);
    }
    for (int v : p.steps[s].makes) {
      const int st = p.storage_of[v];
      if (st < 0 || made_at[st] >= 0 || p.storages[st].maker != v) continue;
      made_at[st] = static_cast<int>(s);
      last_use[st] = std::max(last_use[st], static_cast<int>(s));  // made and never read: dies at once
    }
  }
  std::vector<std::vector<int>> dies_at(p.steps.size());
  for (std::size_t st = 0; st < count; ++st) {
    const PlanProblem::Storage& info = p.storages[st];
    if (info.input) plan.external_bytes += info.bytes;
    if (info.output && !info.input && made_at[st] >= 0) plan.output_bytes += info.bytes;
    if (info.input || info.output || made_at[st] < 0) continue;
    dies_at[last_use[st]].push_back(static_cast<int>(st));
  }

  std::multimap<std::int64_t, int> free_buffers;  // size -> buffer
  std::vector<int> holding(count, -1);             // the buffer a live storage holds
  std::vector<char> alive(count, 0);
  std::int64_t live = 0;  // bytes of the values alive right now
  for (std::size_t s = 0; s < p.steps.size(); ++s) {
    const PlanProblem::Step& step = p.steps[s];
    for (std::size_t k = 0; k < step.makes.size(); ++k) {
      const int st = p.storage_of[step.makes[k]];
      if (st < 0 || made_at[st] != static_cast<int>(s) || p.storages[st].maker != step.makes[k]) continue;
      const PlanProblem::Storage& info = p.storages[st];
      if (info.input || info.output) continue;
      const std::int64_t need = info.bytes;
      ++plan.values;
      plan.unplanned_bytes += need;
      live += need;
      alive[st] = 1;
      if (!info.placeable) {
        plan.self_allocated_bytes += need;
        continue;
      }
      int buffer = -1;
      // In place: over an input that dies here and has exactly the output's
      // size (so the same shape: a broadcast input would be read after its
      // elements were overwritten).
      for (int c : k == 0 ? step.inplace_candidates : std::vector<int>{}) {
        const int cs = p.storage_of[c];
        if (cs < 0 || holding[cs] < 0 || last_use[cs] != static_cast<int>(s) || p.storages[cs].bytes != need ||
            !may_overwrite(p, step, c)) {
          continue;
        }
        buffer = holding[cs];
        holding[cs] = -1;  // handed over: not freed below
        alive[cs] = 0;
        live -= need;
        ++plan.inplace;
        break;
      }
      if (buffer < 0 && !free_buffers.empty()) {
        // The smallest free buffer that fits, else the largest, grown to fit
        // (sizes are only decided when the plan is done).
        auto fit = free_buffers.lower_bound(need);
        if (fit == free_buffers.end() || (fit != free_buffers.begin() &&
                                          need - std::prev(fit)->first < fit->first - need)) {
          fit = std::prev(fit);
        }
        buffer = fit->second;
        free_buffers.erase(fit);
        ++plan.shared;
      }
      if (buffer < 0) {
        buffer = static_cast<int>(out.buffer_bytes.size());
        out.buffer_bytes.push_back(0);
        out.buffer_last_use.push_back(0);
      }
      out.buffer_bytes[buffer] = std::max(out.buffer_bytes[buffer], need);
      out.buffer_last_use[buffer] = std::max(out.buffer_last_use[buffer], last_use[st]);
      holding[st] = buffer;
      out.buffer_of[st] = buffer;
    }
    plan.peak_live_bytes = std::max(plan.peak_live_bytes, live);
    // Free what died here (inputs read for the last time, outputs never read).
    for (int st : dies_at[s]) {
      if (!alive[st]) continue;
      alive[st] = 0;
      live -= p.storages[st].bytes;
      if (holding[st] >= 0) free_buffers.emplace(out.buffer_bytes[holding[st]], holding[st]);
      holding[st] = -1;
    }
  }
  for (std::int64_t size : out.buffer_bytes) plan.planned_bytes += size;
  plan.buffers = static_cast<std::int64_t>(out.buffer_bytes.size());
  return out;
}

MemoryPlan plan_memory(const Symbol& symbol, const std::map<std::string, Shape>& shapes,
                       const std::map<std::string, DType>& dtypes) {
  const InferResult inferred = infer(symbol, shapes, dtypes);
  PlanProblem problem;
  std::unordered_map<const void*, int> storage_ids;
  std::unordered_map<const Node*, int> first_value;
  auto value_of = [&](const Node* n, std::uint32_t k) -> int {
    auto it = inferred.arrays.find(n);
    LOOM_CHECK(it != inferred.arrays.end() && k < it->second.size() && it->second[k].defined(),
               "plan_memory: the shape of node '", n->name, "' is unknown; give every argument's shape");
    return first_value.at(n) + static_cast<int>(k);
  };
  for (const Node* n : symbol.topo_order()) {
    auto it = inferred.arrays.find(n);
    LOOM_CHECK(it != inferred.arrays.end(), "plan_memory: the shape of node '", n->name,
               "' is unknown; give every argument's shape");
    first_value.emplace(n, static_cast<int>(problem.storage_of.size()));
    for (std::uint32_t k = 0; k < n->num_outputs(); ++k) {
      const int v = static_cast<int>(problem.storage_of.size());
      if (k >= it->second.size() || !it->second[k].defined()) {
        problem.storage_of.push_back(-1);
        problem.whole.push_back(0);
        continue;
      }
      const NDArray& a = it->second[k];
      const Storage* st = a.storage().get();
      auto [id, fresh] = storage_ids.emplace(st, static_cast<int>(problem.storages.size()));
      if (fresh) problem.storages.push_back({static_cast<std::int64_t>(st->bytes()), n->is_variable(), false, true, v});
      problem.storage_of.push_back(id->second);
      problem.whole.push_back(covers_storage(a));
    }
    if (n->is_variable()) continue;
    PlanProblem::Step step;
    for (const NodeEntry& in : n->inputs) {
      if (in.present()) step.reads.push_back(value_of(in.node.get(), in.index));
    }
    for (std::uint32_t k = 0; k < n->num_outputs(); ++k) step.makes.push_back(value_of(n, k));
    for (int i : inplace_slots(*n->op, n->inputs.size())) {
      if (n->inputs[i].present()) step.inplace_candidates.push_back(value_of(n->inputs[i].node.get(), n->inputs[i].index));
    }
    problem.steps.push_back(std::move(step));
  }
  // The graph's outputs go to the caller (MXNet binds them to its arrays:
  // outputs and gradients), so they are not planned either.
  for (const NodeEntry& e : symbol.outputs()) {
    const int st = problem.storage_of[value_of(e.node.get(), e.index)];
    if (st >= 0) problem.storages[st].output = true;
  }
  return solve_memory_plan(problem).stats;
}

}  // namespace loom::graph
