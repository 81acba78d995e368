// Run-time choice of the kernel set: the best ISA the CPU supports, or the one VSERVE_ISA names
// (portable | avx2 | avx512 | avx512-amx | avx512-amx-bf16 | neon) so tests can exercise every path on one machine.
#pragma once
#include <string>
#include <vector>

#include "kernel_set.h"

namespace vserve {

// The kernel set in use (chosen on first call).
const KernelSet& kernels();
// ISAs this CPU can run, best last.
std::vector<std::string> supportedIsas();
// Whether the CPU has AMX-TILE and AMX-INT8 and the OS granted this process the tile state (asked once).
bool amxUsable();
// Whether amxUsable() and the CPU also has AMX-BF16 and AVX512_BF16.
bool amxBF16Usable();
// Switches the kernel set; throws std::invalid_argument when the CPU cannot run `isa`.
void selectIsa(const std::string& isa);
// Whether prefill matmuls keep llama.cpp's partial sums (its results to the bit, prefill about half as
// fast) where a kernel set has both orders, rather than one sum per block; decode steps sum as llama.cpp
// does either way. Off by default; one setting for the process, like the kernel set.
bool prefillInLlamaCppOrder();
void setPrefillInLlamaCppOrder(bool on);

}  // namespace vserve
