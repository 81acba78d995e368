#include "cpu_features.h"

#include <atomic>
#include <cstdlib>
#include <stdexcept>

#if (defined(__x86_64__) || defined(_M_X64)) && defined(__linux__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace vserve {
namespace {

const KernelSet* kernelSetFor(const std::string& isa) {
  if (isa == "portable") return &portableKernels();
#if defined(__x86_64__) || defined(_M_X64)
  if (isa == "avx2") return &avx2Kernels();
  if (isa == "avx512") return &avx512Kernels();
  if (isa == "avx512-amx") return &avx512AmxKernels();
  if (isa == "avx512-amx-bf16") return &avx512AmxBF16Kernels();
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

bool amxUsable() {
#if (defined(__x86_64__) || defined(_M_X64)) && defined(__linux__)
  static const bool usable = [] {
    unsigned a, b, c, d;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d) == 0) return false;
    const bool tile = (d >> 24) & 1, int8 = (d >> 25) & 1;
    if (!tile || !int8) return false;
    // Linux hands out the 8 KiB tile data state only to processes that ask for it; without the grant
    // the first tile instruction faults. The grant covers every thread of the process.
    constexpr long kReqXcompPerm = 0x1023;  // ARCH_REQ_XCOMP_PERM
    constexpr long kXfeatureTileData = 18;  // XFEATURE_XTILEDATA
    return syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureTileData) == 0;
  }();
  return usable;
#else
  return false;
#endif
}

bool amxBF16Usable() {
#if (defined(__x86_64__) || defined(_M_X64)) && defined(__linux__)
  static const bool usable = [] {
    unsigned a, b, c, d;
    if (!amxUsable() || __get_cpuid_count(7, 0, &a, &b, &c, &d) == 0) return false;
    const bool amxBF16 = (d >> 22) & 1;
    // The kernels round f32 to bf16 with AVX512_BF16's conversion (leaf 7, sub-leaf 1, EAX bit 5).
    if (!amxBF16 || __get_cpuid_count(7, 1, &a, &b, &c, &d) == 0) return false;
    return ((a >> 5) & 1) != 0;
  }();
  return usable;
#else
  return false;
#endif
}

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
      if (amxUsable()) isas.push_back("avx512-amx");
      if (amxBF16Usable()) isas.push_back("avx512-amx-bf16");
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

namespace {
std::atomic<bool> gPrefillInLlamaCppOrder{false};
}  // namespace

bool prefillInLlamaCppOrder() { return gPrefillInLlamaCppOrder.load(std::memory_order_relaxed); }
void setPrefillInLlamaCppOrder(bool on) { gPrefillInLlamaCppOrder.store(on, std::memory_order_relaxed); }

const KernelSet& kernels() {
  if (gCurrent == nullptr) gCurrent = chooseDefault();
  return *gCurrent;
}

}  // namespace vserve
