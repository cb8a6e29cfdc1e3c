// See comm_lane.h.
#include "runtime/comm/comm_lane.h"

#include <map>
#include <memory>
#include <mutex>

#include "microkernel/base/error.h"
#include "microkernel/storage/storage.h"
#include "microkernel/storage/stream_fence.h"

namespace loom {

void* comm_lane(int device) {
  static std::mutex mutex;
  static std::map<int, void*> lanes;
  std::lock_guard<std::mutex> hold(mutex);
  auto it = lanes.find(device);
  if (it == lanes.end()) it = lanes.emplace(device, storage::create_side_stream(Device::gpu(device))).first;
  return it->second;
}

LaneCall enter_comm_lane(const NDArray& send, const NDArray& recv) {
  LOOM_CHECK(send.device() == recv.device() && send.device().is_gpu(), "comm lane: send (", send.describe(),
             ") and recv (", recv.describe(), ") must be on one GPU");
  LaneCall call;
  call.device = send.device().id;
  // Pointers first: a fence an earlier collective left on either array is
  // then queued on the kernel stream before the lane waits for it.
  call.send = send.raw_data();
  call.recv = recv.raw_data();
  call.stream = comm_lane(call.device);
  storage::order_after_kernel_stream(call.stream, send.device());
  return call;
}

namespace {

void fence_storage(const LaneCall& call, const std::shared_ptr<storage::StreamFence>& fence, Storage& memory) {
  if (memory.shared_outside()) {
    fence->order_kernel_stream();
    return;
  }
  storage::record_stream(memory.data(), Device::gpu(call.device), call.stream);
  memory.add_fence(fence);
}

}  // namespace

void leave_comm_lane(const LaneCall& call, const NDArray& send, const NDArray& recv) {
  std::shared_ptr<storage::StreamFence> fence = storage::fence_after(call.stream, Device::gpu(call.device));
  fence_storage(call, fence, *send.storage());
  if (recv.storage() != send.storage()) fence_storage(call, fence, *recv.storage());
}

void leave_comm_lane_after_error(const LaneCall& call, const NDArray& send, const NDArray& recv) noexcept {
  try {
    leave_comm_lane(call, send, recv);
  } catch (...) {
  }
}

}  // namespace loom
