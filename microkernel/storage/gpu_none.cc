// GPU storage for a build without CUDA: every request is a clear error.
#include "microkernel/base/error.h"
#include "microkernel/storage/gpu_backend.h"

namespace loom::storage::gpu {

[[noreturn]] static void no_cuda(const char* what, int device_id) {
  LOOM_THROW(ErrorKind::kNotImplemented, "cannot ", what, " gpu(", device_id,
             "): this loom was built without CUDA (configure.py found no usable CUDA toolkit "
             "or was given --without-cuda)");
}

std::unique_ptr<DeviceMemoryApi> make_memory_api(int device_id) {
  no_cuda("allocate memory on", device_id);
}
void* alloc_pinned(std::size_t) { return nullptr; }  // never called: count() is 0
void free_pinned(void*) {}
int count() noexcept { return 0; }
void copy(void*, Device dst_device, const void*, Device src_device, std::size_t bytes) {
  LOOM_THROW(ErrorKind::kNotImplemented, "storage: cannot copy ", bytes, " bytes from ",
             src_device.str(), " to ", dst_device.str(), ": this loom was built without CUDA");
}

void set_device(int device_id) { no_cuda("select", device_id); }
void* create_stream(int device_id) { no_cuda("create a stream on", device_id); }
void destroy_stream(void*, int) noexcept {}
void sync_stream(void*, int device_id) { no_cuda("synchronize a stream on", device_id); }
void sync_device(int device_id) { no_cuda("synchronize", device_id); }
void* record_event(void*, int device_id) { no_cuda("record an event on", device_id); }
void wait_event(void*, void*, int device_id) { no_cuda("order a stream on", device_id); }
void destroy_event(void*, int) noexcept {}

}  // namespace loom::storage::gpu
