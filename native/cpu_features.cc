#include "cpu_features.h"

#include <cstdlib>
#include <stdexcept>

namespace vserve {
namespace {

const KernelSet* kernelSetFor(const std::string& isa) {
  if (isa == "portable") return &portableKernels();
#if defined(__x86_64__) || defined(_M_X64)
  if (isa == "avx2") return &avx2Kernels();
  if (isa == "avx512") return &avx512Kernels();
#endif
#if defined(__aarch64__)
  if (isa == "neon") return &neonKernels();
#endif
  return nullptr;
}

const KernelSet* chooseDefault() {
  const char* forced = std::getenv("VSERVE_ISA");
  if (forced != nullptr && *forced != '\0') {
    selectIsa(forced);  // throws with the list of usable ISAs when the name is wrong
    return &kernels();
  }
  return kernelSetFor(supportedIsas().back());
}

const KernelSet* gCurrent = nullptr;

}  // namespace

std::vector<std::string> supportedIsas() {
  std::vector<std::string> isas{"portable"};
#if defined(__x86_64__) || defined(_M_X64)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) {
    isas.push_back("avx2");
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vnni")) {
      isas.push_back("avx512");
    }
  }
#endif
#if defined(__aarch64__)
  isas.push_back("neon");  // Advanced SIMD is part of the arm64 baseline
#endif
  return isas;
}

void selectIsa(const std::string& isa) {
  std::string usable;
  for (const std::string& s : supportedIsas()) {
    if (s == isa) {
      gCurrent = kernelSetFor(isa);
      return;
    }
    usable += (usable.empty() ? "" : ", ") + s;
  }
  throw std::invalid_argument("ISA '" + isa + "' is not available on this CPU/build (usable: " + usable + ")");
}

const KernelSet& kernels() {
  if (gCurrent == nullptr) gCurrent = chooseDefault();
  return *gCurrent;
}

}  // namespace vserve
