// Memory planning: which values of a graph can share a buffer.
//
// Every value an operator makes needs memory from when it is made until its
// last reader runs (a graph output: until the end). Two values whose
// lifetimes do not overlap can use one buffer (co-sharing), and an operator
// that may overwrite an input (its YAML's `inplace`: a pointwise op, or an
// impl kernel that declares it, such as scatter_add) can write its output
// over that input when this node is the input's last reader (in-place).
// Views (reshape, transpose, ...) share their input's buffer and extend its
// lifetime; arguments, auxiliary states and the
// graph's outputs (the loss and the gradients of a training graph) belong to
// the caller, as in MXNet's executors, and are not planned.
//
// The plan walks the nodes in order: a node's outputs take the input
// buffer it may overwrite when that dies here, else the smallest free
// buffer that is large enough, else the largest free one grown to fit,
// else a new one; then the buffers whose last reader this was are freed. The report compares the bytes of the buffers
// the plan needs with one buffer per value (MXNet's in-place + co-share
// planning, Chen et al. 2015). Shapes come from abstract evaluation, and so
// do the views: an output sharing its input's storage there is a view.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "runtime/graph/infer.h"

namespace loom::graph {

struct MemoryPlan {
  std::int64_t unplanned_bytes = 0;  // one buffer per value an operator makes
  std::int64_t planned_bytes = 0;    // the buffers the plan needs
  std::int64_t peak_live_bytes = 0;  // the most bytes alive at once: no plan of this order needs less
  std::int64_t external_bytes = 0;   // arguments and auxiliary states (the caller's)
  std::int64_t output_bytes = 0;     // the graph's outputs (the caller's too: bound or returned)
  std::int64_t values = 0;           // values with their own storage
  std::int64_t inplace = 0;          // written over an input that died at that node
  std::int64_t shared = 0;           // placed in a buffer an earlier, dead value used
  std::int64_t buffers = 0;
  std::int64_t self_allocated_bytes = 0;  // values their ops allocate (not placeable): in unplanned, not in planned
};

// The problem both the report above and a program running on its plan
// (graph_program.h) solve: values (node outputs) live in storages (a view's
// value shares its base's storage), made and read by steps in run order.
struct PlanProblem {
  struct Storage {
    std::int64_t bytes = 0;
    bool input = false;      // the caller's (an argument or auxiliary state)
    bool output = false;     // the graph returns it: the caller's too, never freed
    bool placeable = true;   // its op can write into a given buffer (else: it allocates its own)
    int maker = -1;          // the value that made it (the others on it are views)
  };
  struct Step {
    std::vector<int> reads;  // values, repeats allowed
    std::vector<int> makes;  // values
    // Values whose storage the first made value may be written over when
    // it dies at this step (the YAML's in-place slot first, then, for a
    // pointwise op, every input), tried in order.
    std::vector<int> inplace_candidates;
  };
  std::vector<Storage> storages;
  std::vector<int> storage_of;  // per value; -1: none (an absent input)
  // Per value: it covers its whole storage, contiguously from the start (a
  // maker, a reshape of one), so element i is at the storage's element i.
  std::vector<char> whole;
  std::vector<Step> steps;
};

struct PlanSolution {
  MemoryPlan stats;
  std::vector<int> buffer_of;               // per storage: its buffer, or -1 (the caller's, a view, self-allocated)
  std::vector<std::int64_t> buffer_bytes;   // per buffer
  std::vector<int> buffer_last_use;          // per buffer: the last step reading a value in it
};

// The input slots (of `inputs`) a node of `op` may write its output over,
// in the order to try them: the YAML's in-place slot, then, for a pointwise
// op, every other input.
std::vector<int> inplace_slots(const OpSchema& op, std::size_t inputs);

// `a` covers its storage whole, contiguously from the start (PlanProblem::whole).
bool covers_storage(const NDArray& a);

// The walk described at the top of this file.
PlanSolution solve_memory_plan(const PlanProblem& problem);

// Needs every shape: throws naming the first node whose shape is unknown.
MemoryPlan plan_memory(const Symbol& symbol, const std::map<std::string, Shape>& shapes,
                       const std::map<std::string, DType>& dtypes);

}  // namespace loom::graph
