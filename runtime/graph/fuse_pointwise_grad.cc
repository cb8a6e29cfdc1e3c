#include "runtime/graph/fuse_pointwise_grad.h"

#include "loom/ops/add.h"
#include "microkernel/base/error.h"
#include "runtime/autograd/functions.h"
#include "runtime/autograd/grad_mode.h"
#include "runtime/autograd/record.h"
#include "runtime/dispatch/launch.h"
#include "runtime/graph/fusion_source.h"
#include "runtime/graph/gradient_paths.h"
#include "runtime/kernels/cpu/fused_tiles.h"

namespace loom::graph {

std::shared_ptr<const GroupBackward> make_group_backward(const PointwiseGroup& group,
                                                         const std::vector<const Node*>& member_nodes) {
  auto b = std::make_shared<GroupBackward>();
  for (std::size_t m = 0; m < member_nodes.size(); ++m) {
    if (!group.kernels[m]->backward) return nullptr;
    b->members.push_back({member_nodes[m]->op, member_nodes[m]->attrs, group.kernels[m]});
  }
  b->refs = group.refs;
  b->attrs = group.attrs;
  return b;
}

namespace {

bool float_dtype(DType d) {
  return d == DType::kFloat32 || d == DType::kFloat64 || d == DType::kFloat16 || d == DType::kBFloat16;
}

// What the tiles compute half arrays in.
DType compute_dtype(DType d) { return d == DType::kFloat64 ? d : DType::kFloat32; }

// The backward a recorded run leaves: on the CPU the tiles' gradient
// functions, on a GPU the group's compiled backward kernel.
struct FusedBackwardKernels {
  GradientPaths paths;
  std::vector<std::vector<kernels::TileGradFn>> tile_fns;  // CPU: per member, per argument (nullptr: skipped)
  FusedKernelSpec gpu_spec;                                // GPU: the backward kernel's spec
  FusedCudaKernel gpu_kernel = nullptr;
};

class FusedPointwiseBackward final : public autograd::Node {
 public:
  FusedPointwiseBackward(std::shared_ptr<const GroupBackward> group, const FusedOperands& f, FusedBackwardKernels k)
      : group_(std::move(group)), scalar_(f.scalar), shape_(f.shape), dtype_(f.dtype), device_(f.device),
        kernels_(std::move(k)) {
    for (const NDArray& a : f.reads) saved_.emplace_back(a);
  }

  std::string name() const override {
    std::string ops;
    for (const GroupBackward::Member& m : group_->members) ops += (ops.empty() ? "" : ", ") + m.op->name;
    return "FusedPointwiseBackward[" + ops + "]";
  }

  std::vector<NDArray> apply(std::vector<NDArray>& grads) override {
    const NDArray& grad = grads.at(0);
    LOOM_CHECK(grad.shape() == shape_ && grad.device() == device_, name(), ": the gradient is ", grad.describe(),
               " but the group's result has shape ", shape_str(shape_), " on ", device_.str());
    // create_graph: the gradients must themselves be differentiable, and
    // every member is recomputed recorded. Otherwise the fused walk reads
    // only the inputs its formulas need (the others stay unread: changing
    // one in place after the forward is then no error, as op by op).
    const bool recording = autograd::is_recording();
    std::vector<NDArray> inputs;
    for (std::size_t k = 0; k < saved_.size(); ++k) {
      inputs.push_back(recording || kernels_.paths.input_read[k] ? saved_[k].unpack(*this, "input of a fused group")
                                                                 : NDArray());
    }
    if (recording) return apply_op_by_op(inputs, grad);
    return device_.is_cpu() ? apply_cpu(inputs, grad) : apply_gpu(inputs, grad);
  }

  void release_saved() override {
    for (autograd::SavedTensor& s : saved_) s.release();
  }

 private:
  // One new array per input a gradient reaches (undefined for the others).
  std::vector<NDArray> gradient_arrays(std::size_t inputs, std::vector<NDArray>& writes) const {
    std::vector<NDArray> results(inputs);
    for (std::size_t k = 0; k < inputs; ++k) {
      if (!kernels_.paths.input_reached[k]) continue;
      results[k] = NDArray::empty(shape_, dtype_, device_);
      writes.push_back(results[k]);
    }
    return results;
  }

  std::vector<NDArray> apply_cpu(std::vector<NDArray>& reads, const NDArray& given) const {
    kernels::FusedBackwardPlan plan;
    kernels::FusedTilePlan& f = plan.forward;
    const DType compute = compute_dtype(dtype_);  // the tiles' (half arrays are widened per tile)
    for (const GroupBackward::Member& m : group_->members) f.fns.push_back(m.kernel->for_dtype(compute));
    f.scalar = scalar_;
    f.refs = group_->refs;
    f.attrs = group_->attrs;
    f.n = shape_numel(shape_);
    f.elem = dtype_size(compute);
    f.storage = dtype_;
    plan.grad_fns = kernels_.tile_fns;
    plan.member_needed = kernels_.paths.member_needed;
    plan.member_computed = kernels_.paths.member_computed;
    std::vector<NDArray> writes;
    std::vector<NDArray> results = gradient_arrays(reads.size(), writes);
    if (f.n == 0) return results;
    reads.push_back(given.astype(dtype_).contiguous());
    launch("fused pointwise backward", reads, writes, [plan = std::move(plan), reads, results]() mutable {
      for (std::size_t k = 0; k + 1 < reads.size(); ++k) {  // nullptr: not read
        plan.forward.inputs.push_back(reads[k].defined() ? static_cast<const char*>(reads[k].raw_data()) : nullptr);
      }
      plan.grad = static_cast<const char*>(reads.back().raw_data());
      for (const NDArray& r : results) plan.input_grads.push_back(r.defined() ? static_cast<char*>(r.raw_data()) : nullptr);
      kernels::run_fused_backward_tiles(plan);
    });
    return results;
  }

  std::vector<NDArray> apply_gpu(std::vector<NDArray>& reads, const NDArray& given) const {
    std::vector<NDArray> writes;
    std::vector<NDArray> results = gradient_arrays(reads.size(), writes);
    const std::int64_t n = shape_numel(shape_);
    if (n == 0) return results;
    reads.push_back(given.astype(dtype_).contiguous());
    // GPU work is launched at once on the device's stream (launch.h), which orders it.
    launch("fused pointwise backward", reads, writes,
           [spec = kernels_.gpu_spec, kernel = kernels_.gpu_kernel, reads, writes, n, gpu = device_.id]() {
             std::vector<const void*> in;  // nullptr: an input the kernel does not read
             for (const NDArray& a : reads) in.push_back(a.defined() ? a.raw_data() : nullptr);
             std::vector<void*> out;
             for (const NDArray& a : writes) out.push_back(a.raw_data());
             launch_fused_cuda(kernel, spec, in, out, n, gpu);
           });
    return results;
  }

  // The members recomputed recorded, from the saved inputs with their
  // histories, and each one's own node run in the engine's order: under
  // create_graph the gradients are then recorded ops of the inputs.
  std::vector<NDArray> apply_op_by_op(const std::vector<NDArray>& inputs, const NDArray& grad) const {
    const std::vector<GroupBackward::Member>& members = group_->members;
    std::vector<NDArray> results(members.size()), member_grads(members.size()), input_grads(inputs.size());
    std::vector<NDArray> args;
    auto value = [&](int r) -> const NDArray& { return r >= 0 ? inputs[r] : results[-r - 1]; };
    for (std::size_t m = 0; m < members.size(); ++m) {
      args.clear();
      for (int r : group_->refs[m]) args.push_back(value(r));
      results[m] = invoke(*members[m].op, args, members[m].attrs).at(0);
    }
    member_grads.back() = grad;
    for (std::size_t m = members.size(); m-- > 0;) {
      const std::shared_ptr<autograd::Meta>& meta = results[m].autograd_meta();
      if (!member_grads[m].defined() || !meta || !meta->grad_fn) continue;  // nothing it read requires grad
      std::vector<NDArray> incoming{member_grads[m]};
      std::vector<NDArray> parts = meta->grad_fn->apply(incoming);
      for (std::size_t k = 0; k < parts.size() && k < group_->refs[m].size(); ++k) {
        if (!parts[k].defined()) continue;
        const int r = group_->refs[m][k];
        const NDArray& to = value(r);
        NDArray part = autograd::astype(autograd::sum_to(parts[k], to.shape()), to.dtype());
        NDArray& sum = r >= 0 ? input_grads[r] : member_grads[-r - 1];
        sum = sum.defined() ? op::add(sum, part) : part;
      }
    }
    for (std::size_t k = 0; k < inputs.size(); ++k) {
      if (!kernels_.paths.input_reached[k]) input_grads[k] = NDArray();
    }
    return input_grads;
  }

  std::shared_ptr<const GroupBackward> group_;
  std::vector<autograd::SavedTensor> saved_;  // the group's inputs, in PointwiseGroup::external's order
  std::vector<unsigned char> scalar_;
  Shape shape_;
  DType dtype_;
  Device device_;
  FusedBackwardKernels kernels_;
};

}  // namespace

NDArray PointwiseGroup::run_recorded(FusedOperands& f) const {
  std::vector<unsigned char> wanted(f.reads.size(), 0);
  bool any = false;
  for (std::size_t k = 0; k < f.reads.size(); ++k) any |= (wanted[k] = autograd::requires_grad(f.reads[k])) != 0;
  if (!any) return f.device.is_cpu() ? run_cpu(f, nullptr) : run_gpu(f, nullptr);  // nothing to record
  const bool cpu = f.device.is_cpu();
  // float16/bfloat16 compute in float and round each gradient once, as
  // the forward rounds its result once.
  if (backward == nullptr || !float_dtype(f.dtype)) return NDArray();
  const DType compute = compute_dtype(f.dtype);
  const std::int64_t n = shape_numel(f.shape);
  for (std::size_t k = 0; k < f.reads.size(); ++k) {
    if (wanted[k] && f.scalar[k] && n != 1) return NDArray();  // its gradient is a sum over the group
  }
  FusedBackwardKernels k;
  if (cpu) {
    auto tile_grad = [&](std::size_t m, std::size_t a) {
      return backward->members[m].kernel->grad_for(static_cast<int>(a), compute);
    };
    k.paths = gradient_paths(refs, wanted, [&](std::size_t m, std::size_t a) { return tile_grad(m, a) != nullptr; });
    // what each formula reads: the same functors' operands as the GPU source's
    mark_reads(refs, k.paths, [&](std::size_t m, std::size_t a) {
      const FusionSource* src = find_fusion_source(ops[m]);
      return src != nullptr && a < static_cast<std::size_t>(kMaxFusionArity) ? src->grads[a].operands
                                                                             : std::string_view("go0123456789");
    });
    k.tile_fns.resize(members.size());
    for (std::size_t m = 0; m < members.size(); ++m) {
      for (std::size_t a = 0; a < refs[m].size(); ++a) k.tile_fns[m].push_back(k.paths.along[m][a] ? tile_grad(m, a) : nullptr);
    }
  } else {
    if (!fused_cuda_available()) return NDArray();
    k.gpu_spec = FusedKernelSpec{ops, refs, f.scalar, f.dtype, attrs, wanted};
    k.paths = fused_backward_paths(k.gpu_spec);
  }
  // No gradient reaches a wanted input (only through ops without one, like
  // floor): op by op nothing would be recorded either.
  if (!k.paths.any) return cpu ? run_cpu(f, nullptr) : run_gpu(f, nullptr);
  if (!cpu && (k.gpu_kernel = gpu_kernel(k.gpu_spec, f.device.id)) == nullptr) return NDArray();
  auto node = std::make_shared<FusedPointwiseBackward>(backward, f, k);
  NDArray out = cpu ? run_cpu(f, nullptr) : run_gpu(f, nullptr);
  if (!out.defined()) return NDArray();  // the GPU forward did not compile: op by op
  for (std::size_t i = 0; i < f.reads.size(); ++i) {
    node->add_input(f.reads[i], k.paths.input_reached[i] ? autograd::gradient_edge(f.reads[i]) : autograd::Edge{});
  }
  autograd::set_outputs(node, {&out});
  return out;
}

}  // namespace loom::graph
