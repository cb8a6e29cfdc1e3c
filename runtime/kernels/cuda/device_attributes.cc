// See device_attributes.h.
#include "runtime/kernels/cuda/device_attributes.h"

#if LOOM_WITH_CUDA
#include <cuda_runtime.h>

#include <array>
#include <atomic>

#include "microkernel/base/error.h"

namespace loom::kernels {
namespace {

constexpr int kDevices = 64;

void check_device(int device) {
  LOOM_CHECK_KIND(device >= 0 && device < kDevices, ErrorKind::kValue, "gpu(", device, ") is beyond the ", kDevices,
                  " devices loom tracks");
}

}  // namespace

int cuda_device_sm_count(int device) {
  static std::array<std::atomic<int>, kDevices> counts{};
  check_device(device);
  int n = counts[device].load(std::memory_order_relaxed);
  if (n > 0) return n;
  if (cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device) != cudaSuccess || n <= 0) {
    cudaGetLastError();  // not sticky: clear it for the next launch's check
    n = 80;
  }
  counts[device].store(n, std::memory_order_relaxed);
  return n;
}

int cuda_device_arch(int device) {
  static std::array<std::atomic<int>, kDevices> archs{};
  check_device(device);
  int arch = archs[device].load(std::memory_order_relaxed);
  if (arch > 0) return arch;
  int major = 0, minor = 0;
  cudaError_t err = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
  if (err == cudaSuccess) err = cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
  LOOM_CHECK_KIND(err == cudaSuccess, ErrorKind::kRuntime, "gpu(", device,
                  "): cudaDeviceGetAttribute (compute capability) failed: ", cudaGetErrorString(err));
  arch = 10 * major + minor;
  archs[device].store(arch, std::memory_order_relaxed);
  return arch;
}

}  // namespace loom::kernels
#endif  // LOOM_WITH_CUDA
