// The comm lane of each GPU: the stream every collective of that GPU runs
// on, apart from the kernel stream so that the two overlap, and the fences
// that keep the arrays a collective touches in order with the kernels
// (docs/comm.md, "The comm lane"; microkernel/storage/stream_fence.h).
//
//   LaneCall call = enter_comm_lane(send, recv);   // pointers, lane after kernels
//   nccl.all_reduce(call.send, call.recv, ..., call.stream);
//   leave_comm_lane(call, send, recv);             // fences both arrays
#pragma once

#include "runtime/ndarray/ndarray.h"

namespace loom {

// One GPU's part of a collective.
struct LaneCall {
  void* stream = nullptr;     // the comm lane of the arrays' GPU
  const void* send = nullptr;
  void* recv = nullptr;
  int device = 0;
};

// The lane of gpu(device), made on first use and kept for the process.
// Collectives on it run in the order queued, which NCCL needs on every
// rank.
void* comm_lane(int device);

// Takes the device pointers of `send` and `recv` (both on one GPU), which
// queues any fence they carry on the kernel stream, then makes the lane
// wait for everything queued on the kernel stream so far.
LaneCall enter_comm_lane(const NDArray& send, const NDArray& recv);

// After the collective was queued on call.stream (or may have been: call it
// on the error path too): fences `send` and `recv`, so that the kernel
// stream waits for it before touching either, and record_stream()s their
// blocks on the lane, so that the allocator does not hand them out before
// it has finished. Memory that code outside loom may touch
// (Storage::shared_outside, e.g. shared with torch through DLPack) is
// ordered on the kernel stream at once instead: that code never takes the
// pointer through NDArray::raw_data.
void leave_comm_lane(const LaneCall& call, const NDArray& send, const NDArray& recv);
// The same on an error path: a failure here is dropped, so that the caller
// rethrows the error that brought it there.
void leave_comm_lane_after_error(const LaneCall& call, const NDArray& send, const NDArray& recv) noexcept;

}  // namespace loom
