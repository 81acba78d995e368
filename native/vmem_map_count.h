// Keeps the KV cache from driving the process into vm.max_map_count. At the limit every mmap fails,
// including the JS heap's, so a batch that could cross it is refused up front with a clear error, leaving
// a margin of mappings for the rest of the process.
#pragma once
#include <cstddef>
#include <cstdint>

namespace vserve::vmem {

class MapCountBudget {
 public:
  // Mappings left to the rest of the process.
  static constexpr int64_t kMargin = 2048;

  // Called before a batch of `jobs` mmap calls (each may add up to two VMAs). Re-reads /proc/self/maps
  // only when its running estimate runs out; throws ERR_KV_MAX_MAP_COUNT if the batch does not fit.
  void Reserve(size_t jobs, size_t pageBytes);

 private:
  int64_t headroom_ = -1;  // VMAs that may still be added before the margin, as last measured
};

}  // namespace vserve::vmem
