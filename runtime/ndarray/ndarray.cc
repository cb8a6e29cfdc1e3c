#include "runtime/ndarray/ndarray.h"

#include <limits>
#include <utility>

#include "loom/ops/copy.h"
#include "microkernel/base/error.h"
#include "microkernel/engine/engine.h"
#include "microkernel/storage/storage.h"
#include "microkernel/storage/stream_fence.h"
#include "runtime/dispatch/launch.h"
#include "runtime/autograd/grad_mode.h"
#include "runtime/ndarray/abstract_eval.h"
#include "runtime/graph/trace.h"
#include "runtime/ndarray/device_cast.h"
#include "runtime/ndarray/host_copy.h"

namespace loom {

Storage::Storage(std::size_t bytes, Device device)
    : data_(storage::alloc(bytes, device)), bytes_(bytes), device_(device) {}

Storage::Storage(void* data, std::size_t bytes, Device device, std::function<void()> release)
    : data_(data), bytes_(bytes), device_(device), release_(std::move(release)) {}

std::shared_ptr<Storage> Storage::abstract(std::size_t bytes, Device device) {
  auto storage = std::make_shared<Storage>(nullptr, bytes, device, [] {});
  storage->abstract_ = true;
  return storage;
}

Storage::~Storage() {
  // Every op on this storage owns a reference to it, so none is pending now;
  // the Var goes at once.
  if (engine::Var* var = var_.load(std::memory_order_acquire)) engine::Engine::get().delete_var(var);
  // Side-stream work may still use memory owned elsewhere: its owner may
  // hand it out again at once, to work on the kernel stream, which waits
  // first. (loom's allocator delays the reuse itself: record_stream.) A
  // destructor cannot report the device's refusal.
  if (fence_ && release_) {
    try {
      fence_->order_kernel_stream();
    } catch (...) {
    }
  }
  if (release_) {
    release_();
  } else {
    storage::free(data_, bytes_, device_);
  }
}

void Storage::add_fence(std::shared_ptr<storage::StreamFence> fence) {
  std::lock_guard<std::mutex> hold(fence_mutex_);
  std::shared_ptr<storage::StreamFence> earlier = std::exchange(fence_, std::move(fence));
  fenced_.store(fence_ != nullptr, std::memory_order_release);
  // A pending fence of the same stream is covered by the new one. Another
  // stream's is handed to the kernel stream now; if the device refuses, the
  // error reaches the caller (a device refusing waits is beyond repair).
  if (earlier && (!fence_ || earlier->stream() != fence_->stream())) earlier->order_kernel_stream();
}

void Storage::order_after_fence_slow() {
  std::lock_guard<std::mutex> hold(fence_mutex_);
  if (!fence_) return;  // another thread ordered it first
  fence_->order_kernel_stream();
  fence_.reset();
  fenced_.store(false, std::memory_order_release);
}

engine::Var* Storage::engine_var() {
  engine::Var* var = var_.load(std::memory_order_acquire);
  if (var != nullptr) return var;
  engine::Engine& engine = engine::Engine::get();
  engine::Var* made = engine.new_var();
  if (var_.compare_exchange_strong(var, made, std::memory_order_acq_rel)) return made;
  engine.delete_var(made);  // another thread made one first
  return var;
}

NDArray NDArray::on_storage(std::shared_ptr<Storage> storage, const Shape& shape, const Strides& strides,
                            std::int64_t offset, DType dtype) {
  const std::size_t item = dtype_size(dtype);
  const std::int64_t elements = static_cast<std::int64_t>(storage->bytes() / item);
  NDArray base(std::move(storage), Shape{elements}, Strides{1}, 0, dtype);
  return base.as_strided(shape, strides, offset);
}

NDArray::NDArray(std::shared_ptr<Storage> storage, Shape shape, Strides strides,
                 std::int64_t offset, DType dtype)
    : storage_(std::move(storage)),
      shape_(std::move(shape)),
      strides_(std::move(strides)),
      offset_(offset),
      dtype_(dtype) {}

NDArray NDArray::empty(const Shape& shape, DType dtype, Device device) {
  for (auto d : shape) {
    LOOM_CHECK(d >= 0, "empty: negative dimension in shape ", shape_str(shape));
  }
  const std::int64_t numel = shape_numel(shape);
  // The byte count must not wrap: 2^62 float32 elements made 0 bytes, and
  // the kernel that filled them ran off the end of a 0-byte block.
  const auto item = static_cast<std::int64_t>(dtype_size(dtype));
  LOOM_CHECK(numel <= std::numeric_limits<std::int64_t>::max() / item, "empty: shape ", shape_str(shape), " of ",
             dtype_name(dtype), " needs ", numel, " x ", item, " bytes, past the 64-bit byte range");
  const auto bytes = static_cast<std::size_t>(numel) * static_cast<std::size_t>(item);
  auto storage = abstract_eval() ? Storage::abstract(bytes, device) : std::make_shared<Storage>(bytes, device);
  return NDArray(std::move(storage), shape, contiguous_strides(shape), 0, dtype);
}

NDArray NDArray::from_host(const void* src, std::int64_t count, const Shape& shape, DType dtype,
                           Device device) {
  LOOM_CHECK(count == shape_numel(shape), "array: ", count, " elements cannot have shape ",
             shape_str(shape));
  // Real memory even in abstract evaluation: host data (a scalar operand) is known.
  auto storage = std::make_shared<Storage>(static_cast<std::size_t>(count) * dtype_size(dtype), device);
  NDArray out(std::move(storage), shape, contiguous_strides(shape), 0, dtype);
  storage::copy(out.raw_data(), device, src, Device::cpu(), out.nbytes());
  return out;
}

NDArray NDArray::as_strided(const Shape& shape, const Strides& strides, std::int64_t offset) const {
  LOOM_CHECK(shape.size() == strides.size(), "as_strided: shape ", shape_str(shape), " and strides ",
             shape_str(strides), " differ in length");
  LOOM_CHECK(offset >= 0, "as_strided: negative offset ", offset);
  const std::int64_t capacity =
      static_cast<std::int64_t>(storage_->bytes() / dtype_size(dtype_));
  bool empty = false;
  for (auto d : shape) {
    LOOM_CHECK(d >= 0, "as_strided: negative dimension in shape ", shape_str(shape));
    empty |= d == 0;
  }
  const auto [lowest, highest, overflow] = element_range(shape, strides, offset);
  shape_numel(shape);  // throws if the element count overflows
  LOOM_CHECK_KIND(empty || (!overflow && lowest >= 0 && highest < capacity), ErrorKind::kIndex,
                  "as_strided: shape ", shape_str(shape), " with strides ", shape_str(strides),
                  " and offset ", offset, " reaches elements ", overflow ? std::string("beyond the 64-bit range") :
                  "[" + std::to_string(lowest) + ", " + std::to_string(highest) + "]",
                  " outside the storage of ", capacity, " elements");
  return NDArray(storage_, shape, strides, offset, dtype_);
}

NDArray NDArray::transpose() const {
  return NDArray(storage_, Shape(shape_.rbegin(), shape_.rend()),
                 Strides(strides_.rbegin(), strides_.rend()), offset_, dtype_);
}

Device NDArray::device() const { return storage_->device(); }

bool NDArray::is_contiguous() const {
  std::int64_t expected = 1;
  for (std::size_t i = shape_.size(); i-- > 0;) {
    if (shape_[i] == 1) continue;  // any stride is fine for a size-1 dim
    if (strides_[i] != expected) return false;
    expected *= shape_[i];
  }
  return true;
}

void* NDArray::raw_data() const {
  if (storage_->is_abstract()) [[unlikely]] {
    LOOM_THROW(ErrorKind::kValue, "the values of ", describe(),
               " are not known while shapes are inferred: an operation reads its input's values on the host, so "
               "its result's shape depends on the data and cannot be planned ahead");
  }
  storage_->order_after_fence();
  return static_cast<char*>(storage_->data()) + offset_ * static_cast<std::int64_t>(dtype_size(dtype_));
}

NDArray NDArray::to(Device device) const {
  NDArray src = contiguous().without_autograd();
  NDArray out = empty(shape_, dtype_, device);
  if (src.device().is_cpu() && device.is_cpu()) {
    launch("copy to device", {&src, 1}, {&out, 1}, [src, out] {
      storage::copy(out.raw_data(), Device::cpu(), src.raw_data(), Device::cpu(), src.nbytes());
    });
    return out;
  }
  // A GPU end: the device's stream orders it; the host end must be ready.
  // Shapes only while they are inferred (a traced block on a GPU).
  if (abstract_eval()) return out;
  if (src.device().is_cpu() && !in_kernel()) src.wait_to_read();
  storage::copy(out.raw_data(), device, src.raw_data(), src.device(), nbytes());
  return out;
}

NDArray NDArray::contiguous() const {
  if (is_contiguous()) return *this;
  // While tracing, as the copy op, so the graph has the step.
  if (graph::tracing()) return op::copy(*this);
  if (!device().is_cpu()) {
    // On a GPU the generated copy op's strided kernel gathers the view
    // (never recorded: callers that need a gradient record their own node).
    autograd::ModeScope not_recorded(false);
    return op::copy(*this);
  }
  const NDArray src = without_autograd();
  NDArray out = empty(shape_, dtype_, device());
  launch("contiguous", {&src, 1}, {&out, 1}, [src, out] { copy_strided_host(src, out.raw_data()); });
  return out;
}

NDArray NDArray::astype(DType dtype) const {
  if (dtype == dtype_) return *this;
  if (graph::tracing()) [[unlikely]] {
    graph::TraceCall trace;  // the conversion as a graph node (the cast op, opdefs/elementwise/cast.yaml)
    NDArray out = astype_untraced(dtype);
    trace.record("cast", {this}, graph::AttrMap{{"dtype", graph::AttrValue(static_cast<std::int64_t>(dtype))}},
                 {&out, 1});
    return out;
  }
  return astype_untraced(dtype);
}

NDArray NDArray::astype_untraced(DType dtype) const {
  if (!device().is_cpu()) {
#if LOOM_WITH_CUDA
    const NDArray src = contiguous().without_autograd();
    NDArray out = empty(shape_, dtype, device());
    // On the GPU, no round trip through the host; launch() runs it at once
    // (skipped while shapes are inferred).
    launch("astype", {&src, 1}, {&out, 1}, [src, out]() mutable { cast_cuda(src, out); });
    return out;
#else
    LOOM_THROW(ErrorKind::kNotImplemented, "astype: ", describe(), " is on a GPU in a build without CUDA");
#endif
  }
  const NDArray src = contiguous().without_autograd();
  NDArray out = empty(shape_, dtype, device());
  launch("astype", {&src, 1}, {&out, 1},
         [src, out] { cast_host(src.raw_data(), src.dtype(), out.raw_data(), out.dtype(), src.numel()); });
  return out;
}

void NDArray::copy_to_host(void* dst) const {
  if (device().is_cpu()) {
    if (!in_kernel()) wait_to_read();
    copy_strided_host(*this, dst);
    return;
  }
  NDArray src = contiguous();
  storage::copy(dst, Device::cpu(), src.raw_data(), src.device(), nbytes());
}

void NDArray::wait_to_read() const {
  if (engine::Var* var = storage_->existing_engine_var()) engine::Engine::get().wait_for_var(var);
}

void NDArray::wait_to_write() const {
  engine::Var* var = storage_->existing_engine_var();
  if (var == nullptr) return;
  engine::Engine& engine = engine::Engine::get();
  // A no-op writer queues behind every pending reader; waiting for it waits
  // for them all.
  engine.push_or_run([](const engine::RunContext&) {}, engine::Context{}, {}, {var}, 0, "wait_to_write");
  engine.wait_for_var(var);
}

std::string NDArray::describe() const {
  if (!defined()) return "NDArray(undefined)";
  return "NDArray(shape=" + shape_str(shape_) + ", dtype=" + std::string(dtype_name(dtype_)) +
         ", device=" + device().str() + ")";
}

std::int64_t dim_size(const NDArray& a, std::int64_t dim) {
  const std::int64_t n = a.ndim();
  LOOM_CHECK_KIND(dim >= -n && dim < n, ErrorKind::kIndex, "dim ", dim, " is out of range for ", a.describe());
  return a.shape()[dim < 0 ? dim + n : dim];
}

}  // namespace loom
