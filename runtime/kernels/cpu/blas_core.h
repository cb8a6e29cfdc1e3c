// Which of OpenBLAS's CPU kernels loom's GEMMs run on, and a repair for
// CPUs OpenBLAS does not know.
//
// A DYNAMIC_ARCH OpenBLAS (Debian's) picks its kernels from the CPU model
// number. A model newer than the library (Debian 12's 0.3.21 on Emerald
// Rapids, model 207) falls back to Prescott, the SSE3 kernels: a 1024^3
// SGEMM ran at 44 GFLOP/s instead of 220-275 with the AVX-512 kernels, 5x
// slower, silently. When the library reports that fallback and the CPU has
// AVX-512 (or AVX2 + FMA), loom selects SkylakeX (or Haswell) through
// OpenBLAS's own OPENBLAS_CORETYPE mechanism, once, while the library loads
// and before any GEMM runs. A user's OPENBLAS_CORETYPE is left alone.
#pragma once

#include <string>

namespace loom::kernels {

// The kernel set OpenBLAS uses ("SkylakeX", "Haswell", ...); "" without
// OpenBLAS (or with a BLAS that does not say).
std::string blas_core();

// What the load-time check did: "" (nothing to do), or the kernel set it
// moved from and to ("Prescott -> SkylakeX").
std::string blas_core_repair();

}  // namespace loom::kernels
