// See stream_fence.h. The CUDA calls are in gpu_cuda.cc (gpu_none.cc
// throws), so this file builds without the toolkit.
#include "microkernel/storage/stream_fence.h"

#include "microkernel/base/error.h"
#include "microkernel/storage/gpu_backend.h"

namespace loom::storage {
namespace {

class EventFence final : public StreamFence {
 public:
  EventFence(void* event, void* stream, int device_id) : event_(event), stream_(stream), device_id_(device_id) {}
  ~EventFence() override { gpu::destroy_event(event_, device_id_); }
  EventFence(const EventFence&) = delete;
  EventFence& operator=(const EventFence&) = delete;

  void order_kernel_stream() override { gpu::wait_event(nullptr, event_, device_id_); }
  const void* stream() const override { return stream_; }

 private:
  void* event_;
  void* stream_;
  int device_id_;
};

void check_gpu(Device device, const char* what) {
  LOOM_CHECK(device.is_gpu(), "storage: ", what, " needs a GPU, got ", device.str());
}

}  // namespace

void* create_side_stream(Device device) {
  check_gpu(device, "a side stream");
  return gpu::create_stream(device.id);
}

void order_after_kernel_stream(void* stream, Device device) {
  check_gpu(device, "ordering after the kernel stream");
  void* event = gpu::record_event(nullptr, device.id);
  try {
    gpu::wait_event(stream, event, device.id);
  } catch (...) {
    gpu::destroy_event(event, device.id);
    throw;
  }
  gpu::destroy_event(event, device.id);  // CUDA keeps it until the wait is done
}

std::shared_ptr<StreamFence> fence_after(void* stream, Device device) {
  check_gpu(device, "a stream fence");
  return std::make_shared<EventFence>(gpu::record_event(stream, device.id), stream, device.id);
}

}  // namespace loom::storage
