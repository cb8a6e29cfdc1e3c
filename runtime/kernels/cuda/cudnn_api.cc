// See cudnn_api.h.
#include "runtime/kernels/cuda/cudnn_api.h"

#if LOOM_WITH_CUDNN
#include <mutex>
#include <string>

#include "microkernel/base/error.h"
#include "microkernel/base/shared_library.h"

#ifndef LOOM_CUDNN_LIBRARY
#define LOOM_CUDNN_LIBRARY ""
#endif

namespace loom::kernels {
namespace {

#define LOOM_STR2(x) #x
#define LOOM_STR(x) LOOM_STR2(x)
constexpr const char* kSoname = "libcudnn.so." LOOM_STR(CUDNN_MAJOR);

struct Loaded {
  CudnnApi api;
  std::string error;
};

const Loaded& load() {
  static Loaded loaded;
  static std::once_flag once;
  std::call_once(once, [] {
    std::string& error = loaded.error;
    void* lib = open_shared_library(kSoname, LOOM_CUDNN_LIBRARY, "cuDNN", &error);
    if (lib == nullptr) return;
    CudnnApi& a = loaded.api;
#define LOOM_BIND(name) bind_symbol(lib, a.name, "cudnn" #name, "cuDNN", &error)
    LOOM_BIND(GetVersion);
    LOOM_BIND(GetErrorString);
    LOOM_BIND(Create);
    LOOM_BIND(CreateTensorDescriptor);
    LOOM_BIND(DestroyTensorDescriptor);
    LOOM_BIND(SetTensorNdDescriptor);
    LOOM_BIND(CreateFilterDescriptor);
    LOOM_BIND(DestroyFilterDescriptor);
    LOOM_BIND(SetFilterNdDescriptor);
    LOOM_BIND(CreateConvolutionDescriptor);
    LOOM_BIND(DestroyConvolutionDescriptor);
    LOOM_BIND(SetConvolutionNdDescriptor);
    LOOM_BIND(SetConvolutionGroupCount);
    LOOM_BIND(SetConvolutionMathType);
    LOOM_BIND(FindConvolutionForwardAlgorithm);
    LOOM_BIND(FindConvolutionBackwardDataAlgorithm);
    LOOM_BIND(FindConvolutionBackwardFilterAlgorithm);
    LOOM_BIND(ConvolutionForward);
    LOOM_BIND(ConvolutionBackwardData);
    LOOM_BIND(ConvolutionBackwardFilter);
    LOOM_BIND(AddTensor);
#undef LOOM_BIND
    if (!error.empty()) return;
    // cuDNN keeps its API within a major version. Its version number is
    // major * 10000 + minor * 100 + patch from 9 on, major * 1000 + ... before.
    const std::size_t version = a.GetVersion();
    const std::size_t per_major = CUDNN_MAJOR >= 9 ? 10000 : 1000;
    if (version / per_major != CUDNN_MAJOR) {
      error = "the loaded cuDNN is version " + std::to_string(version) + ", loom was built for cuDNN " +
              std::to_string(CUDNN_MAJOR) + ".x";
    }
  });
  return loaded;
}

}  // namespace

const CudnnApi& cudnn(const char* op) {
  const Loaded& l = load();
  LOOM_CHECK_KIND(l.error.empty(), ErrorKind::kRuntime, op, ": ", l.error);
  return l.api;
}

}  // namespace loom::kernels
#endif
