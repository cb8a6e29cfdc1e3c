// Compiling CUDA source at run time with NVRTC (fused GPU kernels).
//
// NVRTC needs no GPU: tests compile every fused kernel's source on a
// machine without one. A build without NVRTC (or without CUDA) has
// nvrtc_available() false, and compiling throws NotImplementedError.
#pragma once

#include <string>
#include <vector>

namespace loom::graph {

bool nvrtc_available();

// The virtual architectures NVRTC can target, as 80 for sm_80 (empty without NVRTC).
std::vector<int> nvrtc_supported_archs();

struct NvrtcImage {
  std::string code;  // CUBIN for a real architecture, or PTX (NUL-terminated) when `ptx`
  bool ptx = false;
  std::string log;   // NVRTC's warnings, if any
};

// Compiles `source` (whose `#include "runtime/kernels/pointwise_math.h"`
// resolves to the embedded header) for sm_<arch>. An arch newer than NVRTC
// knows gets PTX of the newest it does, which the driver compiles on load.
// `name` labels the program in errors. Throws a RuntimeError with NVRTC's
// log (file and line included) when it does not compile.
NvrtcImage nvrtc_compile(const std::string& source, int arch, const std::string& name = "loom_fused.cu");

}  // namespace loom::graph
