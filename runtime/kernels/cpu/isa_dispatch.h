// Run-time ISA selection for hand-written kernels under
// runtime/kernels/cpu/isa/ (each built for the baseline, AVX2+FMA and
// AVX-512; cpu_isa.h). A kernel file defines its entry point once per build
// with LOOM_ISA_NAME(f) (f_base, f_avx2 or f_avx512), declares the other
// builds' with LOOM_ISA_DECLARE(f, (params)) in its baseline part, and
// calls the widest the CPU runs with LOOM_ISA_CALL(f, args...).
#pragma once

#include "runtime/kernels/cpu/cpu_isa.h"

#if defined(LOOM_CPU_ISA_AVX512)
#define LOOM_ISA_NAME(f) f##_avx512
#elif defined(LOOM_CPU_ISA_AVX2)
#define LOOM_ISA_NAME(f) f##_avx2
#else
#define LOOM_ISA_NAME(f) f##_base
#endif

#if defined(LOOM_WITH_AVX512_KERNELS)
#define LOOM_ISA_DECLARE_AVX512(f, params) inline namespace isa_avx512 { void f##_avx512 params; }
#define LOOM_ISA_TRY_AVX512(f, ...) if (cpu_has_avx512()) return isa_avx512::f##_avx512(__VA_ARGS__);
#else
#define LOOM_ISA_DECLARE_AVX512(f, params)
#define LOOM_ISA_TRY_AVX512(f, ...)
#endif
#if defined(LOOM_WITH_AVX2_KERNELS)
#define LOOM_ISA_DECLARE_AVX2(f, params) inline namespace isa_avx2 { void f##_avx2 params; }
#define LOOM_ISA_TRY_AVX2(f, ...) if (cpu_has_avx2_fma()) return isa_avx2::f##_avx2(__VA_ARGS__);
#else
#define LOOM_ISA_DECLARE_AVX2(f, params)
#define LOOM_ISA_TRY_AVX2(f, ...)
#endif

// Declarations of the AVX-512 and AVX2 builds' f (the baseline's is in this file).
#define LOOM_ISA_DECLARE(f, params) LOOM_ISA_DECLARE_AVX512(f, params) LOOM_ISA_DECLARE_AVX2(f, params)

// Calls the widest build of f the CPU supports (f returns void).
#define LOOM_ISA_CALL(f, ...)              \
  do {                                     \
    LOOM_ISA_TRY_AVX512(f, __VA_ARGS__)    \
    LOOM_ISA_TRY_AVX2(f, __VA_ARGS__)      \
    return isa_base::f##_base(__VA_ARGS__); \
  } while (0)
