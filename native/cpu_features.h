// Run-time choice of the kernel set: the best ISA the CPU supports, or the one VSERVE_ISA names
// (portable | avx2 | avx512 | neon) so tests can exercise every path on one machine.
#pragma once
#include <string>
#include <vector>

#include "kernel_set.h"

namespace vserve {

// The kernel set in use (chosen on first call).
const KernelSet& kernels();
// ISAs this CPU can run, best last.
std::vector<std::string> supportedIsas();
// Switches the kernel set; throws std::invalid_argument when the CPU cannot run `isa`.
void selectIsa(const std::string& isa);

}  // namespace vserve
