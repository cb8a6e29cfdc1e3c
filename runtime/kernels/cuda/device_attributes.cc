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

// `attr` of `device`, or `fallback` when the driver cannot say. A failed
// query leaves its error for the next launch check to report, so it is
// cleared, unless an earlier error was already pending (that one is left
// for its own check).
int attribute_or(cudaDeviceAttr attr, int device, int fallback) {
  const cudaError_t pending = cudaPeekAtLastError();
  int value = 0;
  if (cudaDeviceGetAttribute(&value, attr, device) != cudaSuccess || value <= 0) {
    if (pending == cudaSuccess) cudaGetLastError();
    return fallback;
  }
  return value;
}

// The cached value of `attr`, asked once per device.
int cached_attribute(std::array<std::atomic<int>, kDevices>& cache, cudaDeviceAttr attr, int device, int fallback) {
  check_device(device);
  int value = cache[device].load(std::memory_order_relaxed);
  if (value > 0) return value;
  value = attribute_or(attr, device, fallback);
  cache[device].store(value, std::memory_order_relaxed);
  return value;
}

}  // namespace

int cuda_device_sm_count(int device) {
  static std::array<std::atomic<int>, kDevices> counts{};
  return cached_attribute(counts, cudaDevAttrMultiProcessorCount, device, 80);
}

int cuda_device_max_shared_per_block(int device) {
  static std::array<std::atomic<int>, kDevices> bytes{};
  return cached_attribute(bytes, cudaDevAttrMaxSharedMemoryPerBlockOptin, device, 48 * 1024);
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
