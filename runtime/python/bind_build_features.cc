#include "runtime/python/bind_build_features.h"

#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "runtime/kernels/cpu/cpu_isa.h"

namespace nb = nanobind;

namespace loom::python {

namespace {

#if defined(LOOM_WITH_AVX2_KERNELS)
constexpr bool kAvx2Kernels = true;
#else
constexpr bool kAvx2Kernels = false;
#endif
#if defined(LOOM_WITH_AVX512_KERNELS)
constexpr bool kAvx512Kernels = true;
#else
constexpr bool kAvx512Kernels = false;
#endif

// (name, enabled, what it is for), in the order `python -m loom.runtime` prints them.
std::vector<std::tuple<std::string, bool, std::string>> features() {
  return {
      {"CUDA", bool(LOOM_WITH_CUDA), "GPU arrays and kernels"},
      {"CUBLAS", bool(LOOM_WITH_CUBLAS), "GPU matmul"},
      {"CUDNN", bool(LOOM_WITH_CUDNN), "GPU convolutions (cuDNN opened on first use)"},
      {"NVRTC", bool(LOOM_WITH_NVRTC), "fused GPU kernels compiled at run time"},
      {"OPENBLAS", bool(LOOM_WITH_BLAS), "CPU matmul through OpenBLAS (else loom's own GEMM)"},
      {"ONEDNN", bool(LOOM_WITH_DNNL), "CPU convolutions through oneDNN where it is faster"},
      {"AVX2_KERNELS", kAvx2Kernels, "CPU kernels built for AVX2 + FMA"},
      {"AVX512_KERNELS", kAvx512Kernels, "CPU kernels built for AVX-512"},
      {"CPU_AVX2", kAvx2Kernels && kernels::cpu_has_avx2_fma(), "this CPU runs the AVX2 kernels"},
      {"CPU_AVX512", kAvx512Kernels && kernels::cpu_has_avx512(), "this CPU runs the AVX-512 kernels"},
  };
}

}  // namespace

void bind_build_features(nb::module_& m) {
  m.def("build_features", &features,
        "(name, enabled, what for) of each optional part libloom was built with, and whether the running CPU "
        "uses the wider kernels (LOOM_CPU_ISA can cap them).");
}

}  // namespace loom::python
