// See blas_core.h.
#include "runtime/kernels/cpu/blas_core.h"

#include <dlfcn.h>

#include <cstdlib>
#include <cstring>

#include "runtime/kernels/cpu/cpu_isa.h"

namespace loom::kernels {
namespace {

// OpenBLAS's entry points, looked up at run time: a BLAS without them (not
// OpenBLAS, or not DYNAMIC_ARCH) leaves its choice as it is.
using CoreNameFn = char* (*)();
using VoidFn = void (*)();

CoreNameFn core_name_fn() {
  return reinterpret_cast<CoreNameFn>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
}

std::string repair() {
#if LOOM_WITH_BLAS
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return "";
  const CoreNameFn name = core_name_fn();
  auto quit = reinterpret_cast<VoidFn>(dlsym(RTLD_DEFAULT, "gotoblas_dynamic_quit"));
  auto init = reinterpret_cast<VoidFn>(dlsym(RTLD_DEFAULT, "gotoblas_dynamic_init"));
  if (name == nullptr || quit == nullptr || init == nullptr) return "";
  const std::string before = name();
  if (before != "Prescott") return "";  // OpenBLAS knew the CPU (or chose on purpose)
  const char* better = cpu_has_avx512() ? "SkylakeX" : cpu_has_avx2_fma() ? "Haswell" : nullptr;
  if (better == nullptr) return "";
  // OpenBLAS reads OPENBLAS_CORETYPE when it (re)initialises its dispatch
  // table; nothing has called into it yet. The variable stays set, as if
  // the user had set it, so a later re-initialisation agrees.
  setenv("OPENBLAS_CORETYPE", better, 0);
  quit();
  init();
  return before + " -> " + name();
#else
  return "";
#endif
}

// Runs while libloom loads (after OpenBLAS's own initialisation: it is a
// dependency), single-threaded, before any GEMM.
const std::string kRepair = repair();

}  // namespace

std::string blas_core() {
#if LOOM_WITH_BLAS
  const CoreNameFn name = core_name_fn();
  return name == nullptr ? "" : name();
#else
  return "";
#endif
}

std::string blas_core_repair() { return kRepair; }

}  // namespace loom::kernels
