// GPU storage through the CUDA runtime (built only with CUDA). Unpooled for
// now: the microkernel issue brings the stream-aware caching allocator.
#include <cuda_runtime_api.h>

#include "microkernel/base/error.h"
#include "microkernel/storage/gpu_backend.h"

namespace loom::storage::gpu {
namespace {

void check_device(int device_id, const char* what, std::size_t bytes) {
  int n = count();
  LOOM_CHECK_KIND(device_id >= 0 && device_id < n, ErrorKind::kValue, "storage: cannot ", what,
                  " ", bytes, " bytes on gpu(", device_id, "): ", n,
                  " GPU(s) visible to this process");
  cudaError_t err = cudaSetDevice(device_id);
  LOOM_CHECK_KIND(err == cudaSuccess, ErrorKind::kRuntime, "storage: cudaSetDevice(", device_id,
                  ") failed: ", cudaGetErrorString(err));
}

}  // namespace

void* alloc(std::size_t bytes, int device_id) {
  check_device(device_id, "allocate", bytes);
  void* ptr = nullptr;
  cudaError_t err = cudaMalloc(&ptr, bytes);
  LOOM_CHECK_KIND(err == cudaSuccess, ErrorKind::kRuntime, "storage: cudaMalloc of ", bytes,
                  " bytes on gpu(", device_id, ") failed: ", cudaGetErrorString(err));
  return ptr;
}

void free(void* ptr, int device_id) noexcept {
  if (cudaSetDevice(device_id) == cudaSuccess) cudaFree(ptr);
}

int count() noexcept {
  int n = 0;
  // No driver or no device is not an error for a CPU user: it means zero GPUs.
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error
    return 0;
  }
  return n;
}

void copy(void* dst, Device dst_device, const void* src, Device src_device,
          std::size_t bytes) {
  Device gpu_side = dst_device.is_gpu() ? dst_device : src_device;
  check_device(gpu_side.id, "copy", bytes);
  cudaError_t err = cudaMemcpy(dst, src, bytes, cudaMemcpyDefault);
  LOOM_CHECK_KIND(err == cudaSuccess, ErrorKind::kRuntime, "storage: copy of ", bytes,
                  " bytes from ", src_device.str(), " to ", dst_device.str(),
                  " failed: ", cudaGetErrorString(err));
}

}  // namespace loom::storage::gpu
