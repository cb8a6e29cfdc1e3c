// Ordering between a GPU's kernel stream and its side streams.
//
// Every loom CUDA kernel, cuBLAS/cuDNN call and device copy is queued on
// the device's default stream (the kernel stream), which orders them among
// themselves. Work that should overlap them runs on a side stream of its
// own, today the comm lane's NCCL collectives (runtime/comm). Such work
// must start after the kernels that wrote its inputs, and the kernels
// queued later must not read its outputs, nor overwrite its inputs, before
// it has finished. Neither needs the host to wait:
//
//   order_after_kernel_stream(side, dev)   side waits for the kernel stream
//   fence = fence_after(side, dev)         "what side has queued so far"
//   fence->order_kernel_stream()           the kernel stream waits for it
//
// The runtime attaches a fence to every allocation the side work touches
// (Storage::add_fence), and the first raw pointer taken to one of them
// afterwards orders the kernel stream after it: only the kernels that
// touch those arrays wait, everything else overlaps. (A pointer does not
// say whether it will be read or written, so a kernel that only reads a
// collective's input waits too.) The memory's reuse is ordered by the
// caching allocator: the side stream is record_stream()ed on the block.
#pragma once

#include <memory>

#include "microkernel/storage/device.h"

namespace loom::storage {

// What a side stream has queued up to some point.
class StreamFence {
 public:
  virtual ~StreamFence() = default;
  // Queues, on the fenced device's kernel stream, a wait for that work, and
  // returns at once. Throws loom::Error when the device refuses.
  virtual void order_kernel_stream() = 0;
  // The side stream it fences: a stream runs in order, so a later fence of
  // the same stream covers an earlier one.
  virtual const void* stream() const = 0;
};

// A new stream on `device` that runs concurrently with its kernel stream
// (a CUDA non-blocking stream). It lives as long as the process.
void* create_side_stream(Device device);
// Makes `stream` wait for everything queued on `device`'s kernel stream so far.
void order_after_kernel_stream(void* stream, Device device);
// A fence for everything queued on `stream` (of `device`) so far.
std::shared_ptr<StreamFence> fence_after(void* stream, Device device);

}  // namespace loom::storage
