// A loop in a file built for the baseline ISA (SSE2 on x86-64: 4 lanes) can carry VSERVE_AVX512_CLONE:
// on x86-64 Linux with GCC it then also gets an AVX-512 build, and the CPU picks one of the two once, at
// load. Elsewhere the macro is empty and only the baseline loop exists. A clone may fuse multiply-adds,
// so float results can differ from the baseline loop's in the last bits.
#pragma once

//
// VSERVE_FMA_CLONE adds an FMA build between the two, for loops whose std::fma must be one instruction
// on AVX2 CPUs too (in the baseline build it is a library call).
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__)
#define VSERVE_AVX512_CLONE __attribute__((target_clones("avx512f", "default")))
#define VSERVE_FMA_CLONE __attribute__((target_clones("avx512f", "fma", "default")))
#else
#define VSERVE_AVX512_CLONE
#define VSERVE_FMA_CLONE
#endif
