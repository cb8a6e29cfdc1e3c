// CPU kernels are compiled up to three times when the target allows it: for
// the baseline ISA (x86-64's SSE2), with AVX2 + FMA, and with AVX-512 (512-bit
// vectors: twice the lanes of AVX2 for the compute-bound loops such as exp
// and tanh), and the generated entry point picks the widest the running CPU
// supports. The extra builds define LOOM_CPU_ISA_BUILD and their own
// LOOM_CPU_ISA_<NAME>. Everything a kernel
// instantiates lives in an ISA-named inline namespace, so the two builds of
// the same template never collide at link time (an ODR clash there would let
// the linker run AVX2 code on a CPU without it).
#pragma once

#if defined(LOOM_CPU_ISA_AVX512)
#define LOOM_CPU_ISA isa_avx512
#elif defined(LOOM_CPU_ISA_AVX2)
#define LOOM_CPU_ISA isa_avx2
#else
#define LOOM_CPU_ISA isa_base
#endif

namespace loom::kernels {

// True when the CPU (and OS) support AVX2, FMA and F16C, unless
// LOOM_CPU_ISA=base forces the baseline; checked once.
bool cpu_has_avx2_fma();

// True when the CPU (and OS) support AVX-512 F, VL, BW and DQ besides AVX2,
// unless LOOM_CPU_ISA=base or LOOM_CPU_ISA=avx2 caps the choice; checked once.
bool cpu_has_avx512();

}  // namespace loom::kernels
