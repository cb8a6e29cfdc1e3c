#include "runtime/graph/nvrtc_compile.h"

#include <algorithm>

#include "microkernel/base/error.h"
#include "runtime/graph/fusion_source.h"

#if LOOM_WITH_CUDA && LOOM_WITH_NVRTC
#include <nvrtc.h>
#endif

namespace loom::graph {

#if LOOM_WITH_CUDA && LOOM_WITH_NVRTC

namespace {

void check_nvrtc(nvrtcResult r, const char* what, const std::string& name, const std::string& arch) {
  LOOM_CHECK_KIND(r == NVRTC_SUCCESS, ErrorKind::kRuntime, "NVRTC ", what, " failed for ", name, " (", arch,
                  "): ", nvrtcGetErrorString(r));
}

// Destroys the program however the compile ends.
struct Program {
  nvrtcProgram p = nullptr;
  ~Program() {
    if (p != nullptr) nvrtcDestroyProgram(&p);
  }
};

}  // namespace

bool nvrtc_available() { return true; }

std::vector<int> nvrtc_supported_archs() {
  int count = 0;
  if (nvrtcGetNumSupportedArchs(&count) != NVRTC_SUCCESS || count <= 0) return {};
  std::vector<int> archs(count);
  if (nvrtcGetSupportedArchs(archs.data()) != NVRTC_SUCCESS) return {};
  std::sort(archs.begin(), archs.end());
  return archs;
}

NvrtcImage nvrtc_compile(const std::string& source, int arch, const std::string& name) {
  const std::vector<int> archs = nvrtc_supported_archs();
  LOOM_CHECK_KIND(!archs.empty(), ErrorKind::kRuntime, "NVRTC reports no supported architecture");
  LOOM_CHECK_KIND(arch >= archs.front(), ErrorKind::kValue, "NVRTC: sm_", arch,
                  " is older than the oldest architecture this NVRTC supports (sm_", archs.front(), ")");
  // Real code for an architecture NVRTC knows; PTX of its newest for a newer GPU.
  const bool known = std::find(archs.begin(), archs.end(), arch) != archs.end();
  const int target = known ? arch : *std::prev(std::upper_bound(archs.begin(), archs.end(), arch));
  NvrtcImage image;
  image.ptx = !known;
  const std::string math(pointwise_math_source()), half(half_source());
  const char* headers[] = {math.c_str(), half.c_str()};
  const char* include_names[] = {"runtime/kernels/pointwise_math.h", "runtime/core/half.h"};
  Program prog;
  const std::string arch_name = std::string(known ? "sm_" : "compute_") + std::to_string(target);
  const std::string arch_flag = "--gpu-architecture=" + arch_name;
  check_nvrtc(nvrtcCreateProgram(&prog.p, source.c_str(), name.c_str(), 2, headers, include_names),
              "nvrtcCreateProgram", name, arch_name);
  // The unfused kernels' nvcc flags where they matter: C++17 or later, no fast math.
  const char* options[] = {arch_flag.c_str(), "--std=c++17"};
  const nvrtcResult compiled = nvrtcCompileProgram(prog.p, 2, options);
  std::size_t log_size = 0;
  if (nvrtcGetProgramLogSize(prog.p, &log_size) == NVRTC_SUCCESS && log_size > 1) {
    image.log.resize(log_size);
    if (nvrtcGetProgramLog(prog.p, image.log.data()) == NVRTC_SUCCESS) {
      image.log.resize(log_size - 1);
    } else {
      image.log = "(NVRTC's log could not be read)";
    }
  }
  LOOM_CHECK_KIND(compiled == NVRTC_SUCCESS, ErrorKind::kRuntime, "NVRTC could not compile ", name, " for ",
                  arch_name, ":\n", image.log,
                  "\n(LOOM_GRAPH_FUSION=0 turns graph fusion off)");
  std::size_t size = 0;
  if (image.ptx) {
    check_nvrtc(nvrtcGetPTXSize(prog.p, &size), "nvrtcGetPTXSize", name, arch_name);
    image.code.resize(size);
    check_nvrtc(nvrtcGetPTX(prog.p, image.code.data()), "nvrtcGetPTX", name, arch_name);
  } else {
    check_nvrtc(nvrtcGetCUBINSize(prog.p, &size), "nvrtcGetCUBINSize", name, arch_name);
    image.code.resize(size);
    check_nvrtc(nvrtcGetCUBIN(prog.p, image.code.data()), "nvrtcGetCUBIN", name, arch_name);
  }
  return image;
}

#else

bool nvrtc_available() { return false; }
std::vector<int> nvrtc_supported_archs() { return {}; }

NvrtcImage nvrtc_compile(const std::string&, int, const std::string& name) {
  LOOM_CHECK_KIND(false, ErrorKind::kNotImplemented, "NVRTC: cannot compile ", name,
                  ": this build of loom has no NVRTC (configure found no CUDA toolkit with nvrtc.h, or --without-nvrtc)");
  return {};
}

#endif

}  // namespace loom::graph
