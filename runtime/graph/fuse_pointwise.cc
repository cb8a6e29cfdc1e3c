#include "runtime/graph/fuse_pointwise.h"

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <numeric>
#include <unordered_map>

#include "runtime/autograd/grad_mode.h"
#include "runtime/dispatch/launch.h"
#include "runtime/graph/fuse_pointwise_cuda.h"
#include "runtime/graph/fuse_pointwise_grad.h"
#include "runtime/kernels/cpu/fused_tiles.h"
#include "runtime/ndarray/abstract_eval.h"


namespace loom::graph {
namespace {

int find_root(std::vector<int>& parent, int k) {
  while (parent[k] != k) k = parent[k] = parent[parent[k]];
  return k;
}

// A node's attributes in its schema's order as doubles, or false when one
// is not a number (an unset optional): that node then runs on its own.
bool scalar_attrs(const Node& n, std::vector<double>& out) {
  out.clear();
  for (const ArgSchema& a : n.op->args) {
    if (a.kind != ArgKind::kAttr) continue;
    auto it = n.attrs.find(a.name);
    if (it == n.attrs.end()) return false;
    if (const auto* d = std::get_if<double>(&it->second)) {
      out.push_back(*d);
    } else if (const auto* i = std::get_if<std::int64_t>(&it->second)) {
      // passed as a double: exact up to 2^53, past which the node runs alone
      if (*i > (std::int64_t{1} << 53) || *i < -(std::int64_t{1} << 53)) return false;
      out.push_back(static_cast<double>(*i));
    } else if (const auto* b = std::get_if<bool>(&it->second)) {
      out.push_back(*b ? 1.0 : 0.0);
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace

bool pointwise_fusion_enabled() {
  static const bool enabled = [] {
    const char* env = std::getenv("LOOM_GRAPH_FUSION");
    return env == nullptr || std::strcmp(env, "0") != 0;
  }();
  return enabled;
}

// See PointwiseGroup::gpu_kernels.
struct GroupGpuKernels {
  struct Entry {
    int device;
    DType dtype;
    std::vector<unsigned char> scalar;
    std::vector<unsigned char> wants_grad;  // empty: the forward kernel
    FusedCudaKernel kernel;  // nullptr: NVRTC failed, the group runs unfused
  };
  std::mutex mutex;
  std::vector<Entry> entries;  // a handful at most: linear search

  // The kernel for `spec` on `device`, compiled on the first call.
  FusedCudaKernel find(int device, const FusedKernelSpec& spec) {
    {
      std::lock_guard lock(mutex);
      for (const Entry& e : entries) {
        if (e.device == device && e.dtype == spec.dtype && e.scalar == spec.scalar && e.wants_grad == spec.wants_grad) {
          return e.kernel;
        }
      }
    }
    // compiles outside the lock (the global cache dedupes)
    const FusedCudaKernel kernel = fused_cuda_kernel(spec, device);
    std::lock_guard lock(mutex);
    entries.push_back({device, spec.dtype, spec.scalar, spec.wants_grad, kernel});
    return kernel;
  }
};

FusedCudaKernel PointwiseGroup::gpu_kernel(const FusedKernelSpec& spec, int device) const {
  return gpu_kernels->find(device, spec);
}

std::vector<PointwiseGroup> find_pointwise_groups(const std::vector<const Node*>& nodes,
                                                  const std::vector<std::vector<int>>& inputs,
                                                  const std::vector<int>& first_output,
                                                  const std::vector<int>& readers, std::vector<int>& group_of) {
  const int count = static_cast<int>(nodes.size());
  group_of.assign(count, -1);
  std::vector<const kernels::TileKernel*> tile(count, nullptr);
  std::vector<std::vector<double>> attrs(count);
  std::unordered_map<int, int> producer;  // value index -> node
  for (int k = 0; k < count; ++k) {
    const Node* n = nodes[k];
    if (n->num_outputs() == 1 && scalar_attrs(*n, attrs[k])) tile[k] = kernels::find_tile_kernel(n->op->name.c_str());
    producer.emplace(first_output[k], k);
  }
  std::vector<int> parent(count);
  std::iota(parent.begin(), parent.end(), 0);
  for (int k = 0; k < count; ++k) {
    if (tile[k] == nullptr) continue;
    for (int v : inputs[k]) {
      auto it = v < 0 ? producer.end() : producer.find(v);
      if (it == producer.end() || tile[it->second] == nullptr || readers[v] != 1) continue;
      parent[find_root(parent, it->second)] = find_root(parent, k);
    }
  }
  std::unordered_map<int, std::vector<int>> by_root;
  for (int k = 0; k < count; ++k) {
    if (tile[k] != nullptr) by_root[find_root(parent, k)].push_back(k);
  }
  std::vector<PointwiseGroup> groups;
  for (int k = 0; k < count; ++k) {  // in topological order of the roots: deterministic
    auto it = by_root.find(k);
    if (it == by_root.end() || it->second.size() < 2) continue;
    PointwiseGroup g;
    g.gpu_kernels = std::make_shared<GroupGpuKernels>();
    g.members = it->second;  // ascending = topological
    std::unordered_map<int, int> member_of_value, external_slot;
    for (std::size_t m = 0; m < g.members.size(); ++m) member_of_value[first_output[g.members[m]]] = static_cast<int>(m);
    for (int node : g.members) {
      std::vector<int> refs;
      for (int v : inputs[node]) {
        if (auto mv = member_of_value.find(v); mv != member_of_value.end()) {
          refs.push_back(-(mv->second + 1));
          continue;
        }
        auto [slot, fresh] = external_slot.emplace(v, static_cast<int>(g.external.size()));
        if (fresh) g.external.push_back(v);
        refs.push_back(slot->second);
      }
      g.refs.push_back(std::move(refs));
      g.kernels.push_back(tile[node]);
      g.ops.push_back(nodes[node]->op->name);
      g.attrs.push_back(attrs[node]);
    }
    std::vector<const Node*> member_nodes;
    for (int node : g.members) member_nodes.push_back(nodes[node]);
    g.backward = make_group_backward(g, member_nodes);
    for (int node : g.members) group_of[node] = static_cast<int>(groups.size());
    groups.push_back(std::move(g));
  }
  return groups;
}

namespace {

// False when the inputs do not allow the fused kernels: undefined or
// strided inputs, mixed dtypes or devices, a dtype other than float32,
// float64, float16 and bfloat16 (the half types compute in float), or
// broadcasting beyond single values.
bool gather_operands(const std::vector<int>& external, const std::vector<NDArray>& values, FusedOperands& f) {
  for (std::size_t k = 0; k < external.size(); ++k) {
    const NDArray& a = values[external[k]];
    if (!a.defined() || !a.is_contiguous()) return false;
    if (k == 0) {
      f.dtype = a.dtype();
      f.device = a.device();
    }
    if (a.dtype() != f.dtype || a.device() != f.device) return false;
    if (a.numel() != 1 && f.shape.empty() && a.ndim() > 0) f.shape = a.shape();
    f.reads.push_back(a);
  }
  if (f.dtype != DType::kFloat32 && f.dtype != DType::kFloat64 && f.dtype != DType::kFloat16 &&
      f.dtype != DType::kBFloat16) {
    return false;
  }
  // Every input is the broadcast shape or one element; the result has the
  // broadcast shape, which among one-element inputs is the one of most dims.
  for (const NDArray& a : f.reads) {
    if (a.numel() == 1) {
      if (a.ndim() > static_cast<int>(f.shape.size()) && shape_numel(f.shape) <= 1) f.shape = a.shape();
      f.scalar.push_back(1);
    } else {
      if (a.shape() != f.shape) return false;
      f.scalar.push_back(0);
    }
  }
  for (const NDArray& a : f.reads) {
    if (a.numel() == 1 && a.ndim() > static_cast<int>(f.shape.size())) return false;  // would add dims
  }
  return true;
}

// `into` when it can hold the result (a planned buffer), else a new array.
NDArray result_array(const FusedOperands& f, const NDArray* into) {
  const bool fits = into != nullptr && into->shape() == f.shape && into->dtype() == f.dtype &&
                    into->device() == f.device && into->is_contiguous();
  return fits ? *into : NDArray::empty(f.shape, f.dtype, f.device);
}

}  // namespace

NDArray PointwiseGroup::run(const std::vector<NDArray>& values, const NDArray* into) const {
  if (abstract_eval()) return NDArray();
  FusedOperands f;
  if (!gather_operands(external, values, f)) return NDArray();
  if (autograd::is_recording()) return run_recorded(f);
  return f.device.is_cpu() ? run_cpu(f, into) : run_gpu(f, into);
}

NDArray PointwiseGroup::run_cpu(FusedOperands& f, const NDArray* into) const {
  kernels::FusedTilePlan plan;
  const bool half = f.dtype == DType::kFloat16 || f.dtype == DType::kBFloat16;
  const DType compute = half ? DType::kFloat32 : f.dtype;  // half arrays are widened per tile
  for (const kernels::TileKernel* k : kernels) {
    kernels::TileFn fn = k->for_dtype(compute);
    if (fn == nullptr) return NDArray();
    plan.fns.push_back(fn);
  }
  plan.scalar = std::move(f.scalar);
  plan.refs = refs;
  plan.attrs = attrs;
  plan.n = shape_numel(f.shape);
  plan.elem = dtype_size(compute);
  plan.storage = f.dtype;
  NDArray out = result_array(f, into);
  if (plan.n == 0) return out;
  launch("fused pointwise", f.reads, {&out, 1}, [plan = std::move(plan), reads = f.reads, out]() mutable {
    for (const NDArray& a : reads) plan.inputs.push_back(static_cast<const char*>(a.raw_data()));
    plan.out = static_cast<char*>(out.raw_data());
    kernels::run_fused_tiles(plan);
  });
  return out;
}

NDArray PointwiseGroup::run_gpu(FusedOperands& f, const NDArray* into) const {
  if (!fused_cuda_available()) return NDArray();
  const int gpu = f.device.id;
  FusedKernelSpec spec{ops, refs, std::move(f.scalar), f.dtype, attrs, {}};
  // compiled once; nullptr: run unfused
  const FusedCudaKernel kernel = gpu_kernel(spec, gpu);
  if (kernel == nullptr) return NDArray();
  NDArray out = result_array(f, into);
  const std::int64_t n = shape_numel(f.shape);
  if (n == 0) return out;
  // GPU work is launched at once on the device's stream (launch.h), which orders it.
  launch("fused pointwise", f.reads, {&out, 1}, [spec = std::move(spec), kernel, reads = f.reads, out, n, gpu]() {
    std::vector<const void*> inputs;
    for (const NDArray& a : reads) inputs.push_back(a.raw_data());
    launch_fused_cuda(kernel, spec, inputs, {out.raw_data()}, n, gpu);
  });
  return out;
}

}  // namespace loom::graph
