// Software prefetch of weight bytes for the matmul kernels. Decode reads every weight from memory once
// per token, so each kernel asks for the bytes kWeightPrefetchBytes ahead of the ones it is using.
// The requests go to L2 (hint T1): with them going into L1 (T0), decode on an AMD EPYC host was measured
// waiting on memory instead of overlapping it (bench/README.md, the AMD EPYC runs of `single`).
// Internal linkage, as kquant_blocks.h explains.
#pragma once
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

namespace vserve {
namespace {

constexpr size_t kWeightPrefetchBytes = 8192;

inline void prefetchWeights(const uint8_t* p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T1); }

// Every cache line of `bytes` from p.
inline void prefetchWeightLines(const uint8_t* p, size_t bytes) {
  for (size_t l = 0; l < bytes; l += 64) prefetchWeights(p + l);
}

}  // namespace
}  // namespace vserve
