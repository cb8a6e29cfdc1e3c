// GPU storage for a build without CUDA: every request is a clear error.
#include "microkernel/base/error.h"
#include "microkernel/storage/gpu_backend.h"

namespace loom::storage::gpu {

void* alloc(std::size_t bytes, int device_id) {
  LOOM_THROW(ErrorKind::kNotImplemented, "storage: cannot allocate ", bytes, " bytes on gpu(",
             device_id, "): this loom was built without CUDA (configure.py found no usable CUDA toolkit or was given --without-cuda)");
}
void free(void*, int) noexcept {}
int count() noexcept { return 0; }
void copy(void*, Device dst_device, const void*, Device src_device, std::size_t bytes) {
  LOOM_THROW(ErrorKind::kNotImplemented, "storage: cannot copy ", bytes, " bytes from ",
             src_device.str(), " to ", dst_device.str(), ": this loom was built without CUDA");
}

}  // namespace loom::storage::gpu
