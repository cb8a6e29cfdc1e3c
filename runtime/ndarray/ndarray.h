// NDArray: an n-dimensional view (shape, strides, offset, dtype) on a shared
// storage chunk that lives on one device.
//
// Contract: copying an NDArray copies the view, not the data (views share
// their Storage through a shared_ptr, the one place where sharing is real).
// A default-constructed NDArray is "undefined" (defined() == false); every
// accessor except defined() requires a defined array. Ops on the data run
// asynchronously on the engine (runtime/dispatch/launch.h): raw_data() is for
// kernels, which the engine runs in order; host code reads the data only
// after wait_to_read() (copy_to_host() waits itself). Not thread-safe for
// concurrent writes of the same elements, like any array.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>

#include "microkernel/storage/device.h"
#include "runtime/core/dtype.h"
#include "runtime/core/shape.h"

namespace loom {

namespace autograd {
struct Meta;  // runtime/autograd/meta.h: how an array takes part in autograd
}
namespace engine {
class Var;  // microkernel/engine/engine.h
}
namespace storage {
class StreamFence;  // microkernel/storage/stream_fence.h
}

// One allocation. Freed when the last view of it goes away.
class Storage {
 public:
  Storage(std::size_t bytes, Device device);
  // Memory owned elsewhere (an array imported through DLPack): `release`
  // runs when the last view goes, instead of loom's allocator.
  Storage(void* data, std::size_t bytes, Device device, std::function<void()> release);
  // Memory never allocated: an array of abstract evaluation (abstract_eval.h).
  static std::shared_ptr<Storage> abstract(std::size_t bytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  bool is_abstract() const { return abstract_; }
  std::size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

  // Counts writes into this allocation (out=, in-place ops). Every view of
  // it shares the counter, so autograd can tell when a tensor it saved for a
  // backward pass was overwritten afterwards.
  std::uint64_t version() const { return version_.load(std::memory_order_relaxed); }
  void bump_version() { version_.fetch_add(1, std::memory_order_relaxed); }

  // The engine variable that orders the ops on this allocation, made on
  // first use (arrays no op ever touches never need one).
  engine::Var* engine_var();
  // The variable if one was made, else null (for waits: nothing to wait for).
  engine::Var* existing_engine_var() const { return var_.load(std::memory_order_acquire); }

  // Work on a side stream (a collective on the comm lane) still reads or
  // writes this allocation (microkernel/storage/stream_fence.h). The next
  // raw pointer taken to it, which every kernel launch and device copy goes
  // through (NDArray::raw_data), first makes the kernel stream wait for
  // that work. A newer fence of the same stream replaces a pending one (the
  // stream runs in order); one of another stream orders the pending one at
  // once. Reuse of the memory is the caller's to order: loom's allocator
  // through storage::record_stream; memory owned elsewhere gets the wait
  // when the allocation is dropped, and should rather not be fenced at all
  // (shared_outside()).
  void add_fence(std::shared_ptr<storage::StreamFence> fence);
  // Memory that code outside loom may touch without NDArray::raw_data:
  // imported through DLPack (owned elsewhere), or exported through it.
  bool shared_outside() const { return release_ != nullptr || exported_.load(std::memory_order_acquire); }
  void mark_exported() { exported_.store(true, std::memory_order_release); }
  // Hands a pending fence to the kernel stream; nothing when there is none.
  void order_after_fence() {
    if (fenced_.load(std::memory_order_acquire)) [[unlikely]] order_after_fence_slow();
  }

 private:
  void order_after_fence_slow();

  void* data_;
  std::size_t bytes_;
  Device device_;
  std::atomic<std::uint64_t> version_{0};
  std::atomic<engine::Var*> var_{nullptr};
  std::function<void()> release_;  // set for external memory
  bool abstract_ = false;
  std::atomic<bool> exported_{false};
  std::atomic<bool> fenced_{false};  // fence_ is set: the fast check in order_after_fence
  std::mutex fence_mutex_;
  std::shared_ptr<storage::StreamFence> fence_;
};

class NDArray {
 public:
  NDArray() = default;

  // A new contiguous array; its contents are unspecified.
  static NDArray empty(const Shape& shape, DType dtype, Device device = Device::cpu());
  // A view of `storage` (any layout that stays inside it; checked).
  static NDArray on_storage(std::shared_ptr<Storage> storage, const Shape& shape, const Strides& strides,
                            std::int64_t offset, DType dtype);
  // A new contiguous array on `device` holding a copy of `count` elements of
  // `dtype` read from host memory at `src` (row-major). Throws if `shape`
  // does not hold exactly that many elements.
  static NDArray from_host(const void* src, std::int64_t count, const Shape& shape, DType dtype,
                           Device device = Device::cpu());

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  const Strides& strides() const { return strides_; }
  std::int64_t offset() const { return offset_; }
  DType dtype() const { return dtype_; }
  Device device() const;
  int ndim() const { return static_cast<int>(shape_.size()); }
  std::int64_t numel() const { return shape_numel(shape_); }
  std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * dtype_size(dtype_); }
  bool is_contiguous() const;
  const std::shared_ptr<Storage>& storage() const { return storage_; }

  // Address of element 0 of this view (storage base + offset).
  void* raw_data() const;
  template <typename T>
  T* data() const { return static_cast<T*>(raw_data()); }

  // A view of the same storage with other shape/strides/offset (in elements).
  // Throws unless every element it can address lies inside the storage.
  NDArray as_strided(const Shape& shape, const Strides& strides, std::int64_t offset) const;
  // A view with the axes reversed (NumPy's .T); no copy.
  NDArray transpose() const;

  // Copies into a new contiguous array on `device`.
  NDArray to(Device device) const;
  // A contiguous array with the same values: *this if already contiguous.
  NDArray contiguous() const;
  // Values converted to `dtype`: float->int truncates toward zero, NaN gives
  // 0 and out-of-range values saturate. Returns *this when the dtype matches.
  NDArray astype(DType dtype) const;
  NDArray astype_untraced(DType dtype) const;  // astype, never recorded as a graph node
  // Writes the elements, row-major, into host memory of nbytes() bytes
  // (after the pending ops that write them).
  void copy_to_host(void* dst) const;

  // Blocks until every pending op that writes this array's storage has
  // finished; raises the error of one that failed. Host code reading the
  // data directly (raw_data()) calls it first.
  void wait_to_read() const;
  // Blocks until every pending op that reads or writes the storage has
  // finished: before the host, or another library through DLPack, writes it.
  void wait_to_write() const;

  // "NDArray(shape=(2, 3), dtype=float32, device=cpu(0))", for messages.
  std::string describe() const;

  // Autograd state, shared by every copy of this NDArray value (copies are
  // the same variable); null for arrays autograd has never seen. Views made
  // by as_strided/transpose/contiguous/astype start without it: the
  // differentiable versions live in runtime/autograd/functions.h.
  const std::shared_ptr<autograd::Meta>& autograd_meta() const { return autograd_; }
  void set_autograd_meta(std::shared_ptr<autograd::Meta> meta) { autograd_ = std::move(meta); }
  // Same data and view, no autograd state (the array detached from its graph).
  NDArray without_autograd() const {
    NDArray copy = *this;
    copy.autograd_.reset();
    return copy;
  }

 private:
  NDArray(std::shared_ptr<Storage> storage, Shape shape, Strides strides, std::int64_t offset,
          DType dtype);

  std::shared_ptr<Storage> storage_;
  Shape shape_;
  Strides strides_;
  std::int64_t offset_ = 0;
  DType dtype_ = DType::kFloat32;
  std::shared_ptr<autograd::Meta> autograd_;
};

// The size of dim `dim` of `a` (negative counts from the end); IndexError
// when out of range. What `size(x, i)` in a YAML check compiles to.
std::int64_t dim_size(const NDArray& a, std::int64_t dim);

}  // namespace loom
