// CPU kernels are compiled twice when the target allows it: once for the
// baseline ISA (x86-64's SSE2) and once with AVX2 + FMA, and the generated
// entry point picks the widest the running CPU supports. Everything a kernel
// instantiates lives in an ISA-named inline namespace, so the two builds of
// the same template never collide at link time (an ODR clash there would let
// the linker run AVX2 code on a CPU without it).
#pragma once

#if defined(LOOM_CPU_ISA_AVX2)
#define LOOM_CPU_ISA isa_avx2
#else
#define LOOM_CPU_ISA isa_base
#endif

namespace loom::kernels {

// True when the CPU (and OS) support AVX2, FMA and F16C, unless
// LOOM_CPU_ISA=base forces the baseline; checked once.
bool cpu_has_avx2_fma();

}  // namespace loom::kernels
