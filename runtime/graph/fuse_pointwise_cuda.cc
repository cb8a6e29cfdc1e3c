#include "runtime/graph/fuse_pointwise_cuda.h"

#include "microkernel/base/error.h"

#if LOOM_WITH_CUDA && LOOM_WITH_NVRTC
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <map>
#include <mutex>
#include <string>

#include "runtime/graph/nvrtc_compile.h"
#include "runtime/kernels/cuda/device_attributes.h"
#endif

namespace loom::graph {

#if LOOM_WITH_CUDA && LOOM_WITH_NVRTC

namespace {

void check_cuda(cudaError_t err, const char* what, const std::string& signature, int device) {
  LOOM_CHECK_KIND(err == cudaSuccess, ErrorKind::kRuntime, "fused pointwise kernel ", signature, " on gpu(", device,
                  "): ", what, " failed: ", cudaGetErrorString(err));
}

// Loaded libraries live as long as the process: a cached graph may launch
// its kernels again at any time, and the driver frees them at exit. A
// failed build is remembered as nullptr so it is neither retried nor
// reported again.
struct KernelCache {
  std::mutex mutex;
  std::map<std::string, cudaKernel_t> kernels;  // "<arch>/<signature>"
  std::int64_t compiled = 0;
  std::int64_t failed = 0;
};

KernelCache& cache() {
  static auto* c = new KernelCache;  // never destroyed: graphs may still run during static destruction
  return *c;
}

cudaKernel_t build(const FusedKernelSpec& spec, const std::string& signature, int arch, int device) {
  const NvrtcImage image = nvrtc_compile(fused_kernel_source(spec), arch, "loom_fused.cu");
  cudaLibrary_t library = nullptr;
  check_cuda(cudaLibraryLoadData(&library, image.code.data(), nullptr, nullptr, 0, nullptr, nullptr, 0),
             "cudaLibraryLoadData", signature, device);
  cudaKernel_t kernel = nullptr;
  const char* name = spec.wants_grad.empty() ? "loom_fused" : "loom_fused_backward";
  const cudaError_t found = cudaLibraryGetKernel(&kernel, library, name);
  if (found != cudaSuccess) cudaLibraryUnload(library);
  check_cuda(found, "cudaLibraryGetKernel", signature, device);
  return kernel;
}

}  // namespace

bool fused_cuda_available() { return true; }

FusedCudaKernel fused_cuda_kernel(const FusedKernelSpec& spec, int device) {
  const std::string signature = spec.signature();
  const int arch = kernels::cuda_device_arch(device);
  const std::string key = std::to_string(arch) + "/" + signature;
  KernelCache& c = cache();
  {
    std::lock_guard lock(c.mutex);
    if (auto it = c.kernels.find(key); it != c.kernels.end()) return reinterpret_cast<FusedCudaKernel>(it->second);
  }
  // Compiled outside the lock (NVRTC takes ~0.1 s): launches of other
  // kernels go on meanwhile. Two threads may build the same kernel once each;
  // the first stored wins.
  cudaKernel_t kernel = nullptr;
  try {
    kernel = build(spec, signature, arch, device);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "loom: running fused pointwise group %s unfused on gpu(%d) (sm_%d): %s\n",
                 signature.c_str(), device, arch, e.what());
  }
  std::lock_guard lock(c.mutex);
  auto [it, fresh] = c.kernels.emplace(key, kernel);
  if (fresh) ++(kernel != nullptr ? c.compiled : c.failed);
  return reinterpret_cast<FusedCudaKernel>(it->second);
}

void launch_fused_cuda(FusedCudaKernel kernel, const FusedKernelSpec& spec, const std::vector<const void*>& inputs,
                       const std::vector<void*>& outs, std::int64_t n, int device) {
  LOOM_CHECK_KIND(kernel != nullptr, ErrorKind::kValue, "fused pointwise kernel ", spec.signature(),
                  ": launched without a compiled kernel (fused_cuda_kernel returned none)");
  const bool backward = !spec.wants_grad.empty();
  const std::size_t want_in = spec.scalar.size() + (backward ? 1 : 0);
  const std::size_t want_out = backward ? spec.gradient_outputs().size() : 1;
  LOOM_CHECK_KIND(inputs.size() == want_in && outs.size() == want_out, ErrorKind::kValue, "fused pointwise kernel ",
                  spec.signature(), ": ", inputs.size(), " input and ", outs.size(), " output pointers (expected ",
                  want_in, " and ", want_out, ")");
  if (n <= 0) return;
  check_cuda(cudaSetDevice(device), "cudaSetDevice", spec.signature(), device);
  // As the unfused dense kernels: 256 threads, four elements each per step
  // (the backward: one), at most the blocks the device keeps resident (8
  // per multiprocessor).
  constexpr int kThreads = 256;
  const std::int64_t per_block = (backward ? 1 : 4) * kThreads;
  const std::int64_t want = (n + per_block - 1) / per_block;
  const std::int64_t resident = std::int64_t{kernels::cuda_device_sm_count(device)} * 8;
  const auto blocks = static_cast<unsigned>(std::clamp<std::int64_t>(want, 1, resident));
  // The kernel's parameters: each input pointer, each output pointer, n,
  // and Attrs by value (at least one double, as the source declares it).
  std::vector<const void*> in(inputs);
  std::vector<void*> out(outs);
  long long count = n;
  std::vector<double> attrs = spec.attr_values();
  if (attrs.empty()) attrs.push_back(0.0);
  std::vector<void*> args;
  for (const void*& p : in) args.push_back(&p);
  for (void*& p : out) args.push_back(&p);
  args.push_back(&count);
  args.push_back(attrs.data());
  const cudaError_t launched = cudaLaunchKernel(static_cast<const void*>(kernel), dim3(blocks), dim3(kThreads),
                                                args.data(), 0, nullptr);
  LOOM_CHECK_KIND(launched == cudaSuccess, ErrorKind::kRuntime, "fused pointwise kernel ", spec.signature(), " on gpu(",
                  device, "): cudaLaunchKernel of ", blocks, " blocks x ", kThreads, " threads over ", n,
                  " elements failed: ", cudaGetErrorString(launched));
}

std::int64_t fused_cuda_cache_size() {
  std::lock_guard lock(cache().mutex);
  return cache().compiled;
}

std::int64_t fused_cuda_failure_count() {
  std::lock_guard lock(cache().mutex);
  return cache().failed;
}

#else

bool fused_cuda_available() { return false; }

FusedCudaKernel fused_cuda_kernel(const FusedKernelSpec&, int) { return nullptr; }

void launch_fused_cuda(FusedCudaKernel, const FusedKernelSpec& spec, const std::vector<const void*>&,
                       const std::vector<void*>&, std::int64_t, int) {
  LOOM_CHECK_KIND(false, ErrorKind::kNotImplemented, "fused pointwise kernel ", spec.signature(),
                  ": this build of loom has no CUDA with NVRTC");
}

std::int64_t fused_cuda_cache_size() { return 0; }

std::int64_t fused_cuda_failure_count() { return 0; }

#endif

}  // namespace loom::graph
