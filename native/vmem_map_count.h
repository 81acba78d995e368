// Keeps the KV cache from driving the process into vm.max_map_count. At the limit every mmap fails,
// including the JS heap's, so a batch that could cross it is refused up front, leaving a margin of
// mappings for the rest of the process.
#pragma once
#include <cstddef>
#include <cstdint>

namespace vserve::vmem {

// Mappings left to the rest of the process.
inline constexpr int64_t kMapCountMargin = 2048;

// Called before a batch of `jobs` mmap calls (each may add up to two VMAs). One estimate serves every
// KV manager of the process (in any thread), since they share the limit; /proc/self/maps is re-read only
// when the estimate runs out. Returns false (nothing reserved) if the batch does not fit.
bool TryReserveMappings(size_t jobs);

}  // namespace vserve::vmem
