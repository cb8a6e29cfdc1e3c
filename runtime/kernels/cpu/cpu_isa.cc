#include "runtime/kernels/cpu/cpu_isa.h"

#include <cstdlib>
#include <cstring>

namespace loom::kernels {

bool cpu_has_avx2_fma() {
#if defined(__x86_64__) || defined(__i386__)
  // LOOM_CPU_ISA=base forces the baseline kernels (tests compare the two).
  static const bool supported = [] {
    const char* forced = std::getenv("LOOM_CPU_ISA");
    if (forced != nullptr && std::strcmp(forced, "base") == 0) return false;
    // F16C (half <-> float conversion) came with the same generation (Ivy
    // Bridge, Piledriver); the AVX2 build uses it for float16 elements.
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  }();
  return supported;
#else
  return false;
#endif
}

bool cpu_has_avx512() {
#if defined(__x86_64__) || defined(__i386__)
  // LOOM_CPU_ISA=base or =avx2 caps the kernels (tests compare the builds).
  static const bool supported = [] {
    const char* forced = std::getenv("LOOM_CPU_ISA");
    if (forced != nullptr && (std::strcmp(forced, "base") == 0 || std::strcmp(forced, "avx2") == 0)) return false;
    return cpu_has_avx2_fma() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
  }();
  return supported;
#else
  return false;
#endif
}

}  // namespace loom::kernels
