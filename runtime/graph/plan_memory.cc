#include "runtime/graph/plan_memory.h"

#include <algorithm>
#include <iterator>
#include <limits>
#include <unordered_map>
#include <unordered_set>

#include "microkernel/base/error.h"

namespace loom::graph {
namespace {

constexpr int kForever = std::numeric_limits<int>::max();

}  // namespace

MemoryPlan plan_memory(const Symbol& symbol, const std::map<std::string, Shape>& shapes,
                       const std::map<std::string, DType>& dtypes) {
  const InferResult inferred = infer(symbol, shapes, dtypes);
  const auto order = symbol.topo_order();
  MemoryPlan plan;

  // Storages: the caller's (variables), and each operator-made one with the
  // step that makes it and the last step that reads it (through any view).
  std::unordered_set<const void*> external;
  std::unordered_map<const void*, int> last_use;
  std::unordered_map<const void*, std::int64_t> bytes;
  auto storage_of = [&](const Node* n, std::uint32_t k) -> const void* {
    auto it = inferred.arrays.find(n);
    LOOM_CHECK(it != inferred.arrays.end() && k < it->second.size() && it->second[k].defined(),
               "plan_memory: the shape of node '", n->name, "' is unknown; give every argument's shape");
    return it->second[k].storage().get();
  };
  for (std::size_t s = 0; s < order.size(); ++s) {
    const Node* n = order[s];
    if (n->is_variable()) {
      const void* st = storage_of(n, 0);
      if (external.insert(st).second) plan.external_bytes += static_cast<std::int64_t>(inferred.arrays.at(n)[0].nbytes());
      continue;
    }
    for (const NodeEntry& in : n->inputs) {
      if (in.present()) last_use[storage_of(in.node.get(), in.index)] = static_cast<int>(s);
    }
    for (std::uint32_t k = 0; k < n->num_outputs(); ++k) {
      const void* st = storage_of(n, k);
      if (external.count(st) || bytes.count(st)) continue;  // a view of something earlier
      bytes[st] = static_cast<std::int64_t>(inferred.arrays.at(n)[k].storage()->bytes());
      last_use.emplace(st, static_cast<int>(s));           // made and never read: dies at once
    }
  }
  // The graph's outputs go to the caller (MXNet binds them to its arrays:
  // outputs and gradients), so they are not planned either.
  for (const NodeEntry& e : symbol.outputs()) {
    const void* st = storage_of(e.node.get(), e.index);
    last_use[st] = kForever;
    if (!external.count(st) && bytes.count(st)) {
      external.insert(st);
      plan.output_bytes += bytes.at(st);
    }
  }

  // The walk: buffers by id, their sizes, and the free ones.
  std::vector<std::int64_t> buffer_size;
  std::multimap<std::int64_t, int> free_buffers;  // size -> buffer
  std::unordered_map<const void*, int> buffer_of;
  std::unordered_set<const void*> placed;
  std::int64_t live = 0;  // bytes of the values alive right now
  for (std::size_t s = 0; s < order.size(); ++s) {
    const Node* n = order[s];
    if (n->is_variable()) continue;
    const int inplace_slot = n->op->inplace_slot;
    for (std::uint32_t k = 0; k < n->num_outputs(); ++k) {
      const void* st = storage_of(n, k);
      if (external.count(st) || placed.count(st)) continue;
      placed.insert(st);
      const std::int64_t need = bytes.at(st);
      ++plan.values;
      plan.unplanned_bytes += need;
      int buffer = -1;
      // In place: over an input that dies here and has exactly the output's
      // size (so the same shape: a broadcast input would be read after its
      // elements were overwritten). The slot the YAML's in-place variant
      // overwrites first; a pointwise op may take any other input too.
      if (k == 0) {
        std::vector<int> slots;
        if (inplace_slot >= 0) slots.push_back(inplace_slot);
        for (int i = 0; n->op->elementwise && i < static_cast<int>(n->inputs.size()); ++i) {
          if (i != inplace_slot) slots.push_back(i);
        }
        for (int slot : slots) {
          if (slot >= static_cast<int>(n->inputs.size()) || !n->inputs[slot].present()) continue;
          const void* in = storage_of(n->inputs[slot].node.get(), n->inputs[slot].index);
          auto b = buffer_of.find(in);
          if (b == buffer_of.end() || last_use.at(in) != static_cast<int>(s)) continue;
          if (bytes.at(in) != need) continue;
          buffer = b->second;
          buffer_size[buffer] = std::max(buffer_size[buffer], need);
          buffer_of.erase(b);  // handed over: not freed below
          live -= bytes.at(in);
          ++plan.inplace;
          break;
        }
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
        buffer_size[buffer] = std::max(buffer_size[buffer], need);
        ++plan.shared;
      }
      if (buffer < 0) {
        buffer = static_cast<int>(buffer_size.size());
        buffer_size.push_back(need);
      }
      buffer_of[st] = buffer;
      live += need;
    }
    plan.peak_live_bytes = std::max(plan.peak_live_bytes, live);
    // Free what died here (inputs read for the last time, outputs never read).
    std::vector<const void*> dead;
    for (const auto& [st, b] : buffer_of) {
      if (last_use.at(st) == static_cast<int>(s)) dead.push_back(st);
    }
    for (const void* st : dead) {
      live -= bytes.at(st);
      free_buffers.emplace(buffer_size[buffer_of.at(st)], buffer_of.at(st));
      buffer_of.erase(st);
    }
  }
  for (std::int64_t size : buffer_size) plan.planned_bytes += size;
  plan.buffers = static_cast<std::int64_t>(buffer_size.size());
  return plan;
}

}  // namespace loom::graph
