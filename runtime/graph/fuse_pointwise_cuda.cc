#include "runtime/graph/fuse_pointwise_cuda.h"

#include "microkernel/base/error.h"

#if LOOM_WITH_CUDA && LOOM_WITH_NVRTC
#include <cuda_runtime.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <string>

#include "runtime/graph/nvrtc_compile.h"
#endif

namespace loom::graph {

#if LOOM_WITH_CUDA && LOOM_WITH_NVRTC

namespace {

void check_cuda(cudaError_t err, const char* what, const std::string& signature) {
  LOOM_CHECK_KIND(err == cudaSuccess, ErrorKind::kRuntime, "fused pointwise kernel ", signature, ": ", what,
                  " failed: ", cudaGetErrorString(err));
}

int device_attribute(cudaDeviceAttr attr, int device, const std::string& signature) {
  int value = 0;
  check_cuda(cudaDeviceGetAttribute(&value, attr, device), "cudaDeviceGetAttribute", signature);
  return value;
}

// Loaded libraries live as long as the process: a cached graph may launch
// its kernels again at any time, and the driver frees them at exit.
struct KernelCache {
  std::mutex mutex;
  std::map<std::string, cudaKernel_t> kernels;  // "<arch>/<signature>"
};

KernelCache& cache() {
  static auto* c = new KernelCache;  // never destroyed: launches may come from static destructors' threads
  return *c;
}

cudaKernel_t compiled_kernel(const FusedKernelSpec& spec, const std::string& signature, int arch) {
  const std::string key = std::to_string(arch) + "/" + signature;
  KernelCache& c = cache();
  std::lock_guard lock(c.mutex);
  if (auto it = c.kernels.find(key); it != c.kernels.end()) return it->second;
  const NvrtcImage image = nvrtc_compile(fused_kernel_source(spec), arch, "loom_fused.cu");
  cudaLibrary_t library = nullptr;
  check_cuda(cudaLibraryLoadData(&library, image.code.data(), nullptr, nullptr, 0, nullptr, nullptr, 0),
             "cudaLibraryLoadData", signature);
  cudaKernel_t kernel = nullptr;
  check_cuda(cudaLibraryGetKernel(&kernel, library, "loom_fused"), "cudaLibraryGetKernel", signature);
  c.kernels.emplace(key, kernel);
  return kernel;
}

}  // namespace

bool fused_cuda_available() { return true; }

void run_fused_cuda(const FusedKernelSpec& spec, const std::vector<const void*>& inputs, void* out,
                    std::int64_t n, int device) {
  const std::string signature = spec.signature();
  LOOM_CHECK_KIND(inputs.size() == spec.scalar.size(), ErrorKind::kValue, "fused pointwise kernel ", signature,
                  ": ", inputs.size(), " input pointers for ", spec.scalar.size(), " inputs");
  if (n <= 0) return;
  check_cuda(cudaSetDevice(device), "cudaSetDevice", signature);
  const int arch = 10 * device_attribute(cudaDevAttrComputeCapabilityMajor, device, signature) +
                   device_attribute(cudaDevAttrComputeCapabilityMinor, device, signature);
  cudaKernel_t kernel = compiled_kernel(spec, signature, arch);
  // As the unfused dense kernels: 256 threads, four elements each per step,
  // at most the blocks the device keeps resident (8 per multiprocessor).
  constexpr int kThreads = 256;
  const int sms = std::max(1, device_attribute(cudaDevAttrMultiProcessorCount, device, signature));
  const std::int64_t want = (n + 4 * kThreads - 1) / (4 * kThreads);
  const auto blocks = static_cast<unsigned>(std::clamp<std::int64_t>(want, 1, std::int64_t{sms} * 8));
  std::vector<const void*> in(inputs);
  void* out_arg = out;
  long long count = n;
  std::vector<void*> args;
  for (const void*& p : in) args.push_back(&p);
  args.push_back(&out_arg);
  args.push_back(&count);
  check_cuda(cudaLaunchKernel(reinterpret_cast<const void*>(kernel), dim3(blocks), dim3(kThreads), args.data(), 0,
                              nullptr),
             "cudaLaunchKernel", signature);
}

std::int64_t fused_cuda_cache_size() {
  std::lock_guard lock(cache().mutex);
  return static_cast<std::int64_t>(cache().kernels.size());
}

#else

bool fused_cuda_available() { return false; }

void run_fused_cuda(const FusedKernelSpec& spec, const std::vector<const void*>&, void*, std::int64_t, int) {
  LOOM_CHECK_KIND(false, ErrorKind::kNotImplemented, "fused pointwise kernel ", spec.signature(),
                  ": this build of loom has no CUDA with NVRTC");
}

std::int64_t fused_cuda_cache_size() { return 0; }

#endif

}  // namespace loom::graph
