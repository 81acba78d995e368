// The loops of the q8_0/q4_0 tile kernels that the ISAs share (avx2_kv_tiles.cc and avx512_kv_tiles.cc;
// NEON uses forKeyGroups): how a tile's positions are grouped, how heads are chunked and how value
// scales are folded into the weights. Each ISA supplies the work on one group. Internal linkage (see
// kquant_blocks.h).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../kernel_set.h"
#include "tile_helpers.h"

namespace vserve {
namespace {

// Four query bytes as one dword, for broadcasting against 4-byte groups of keys.
inline int32_t loadI32(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Calls f(rows, n, p) for each group of kGroup positions from p: rows are the group's kGroup row
// addresses, n of them real. A last partial group repeats its last row, so kernels always do whole
// groups (and store n results) without reading past the tile's rows.
template <size_t kGroup, class F>
inline void forRowGroups(const uint8_t* const* rows, size_t count, F&& f) {
  for (size_t p = 0; p < count; p += kGroup) {
    const size_t n = count - p < kGroup ? count - p : kGroup;
    if (n == kGroup) {
      f(rows + p, n, p);
      continue;
    }
    const uint8_t* padded[kGroup];
    for (size_t i = 0; i < kGroup; i++) padded[i] = rows[p + (i < n ? i : n - 1)];
    f(static_cast<const uint8_t* const*>(padded), n, p);
  }
}

// The loops of the q8_0/q4_0 key kernels: groups of kGroup positions (forRowGroups) and chunks of up
// to kMaxHeads heads. Calls score(hc, chunk, rows, n, scores, next, nextCount): hc the chunk's head
// count as a std::integral_constant, chunk its heads' QueryBlocks, scores at (its first head, the
// group's first position), next the next tile's rows at the group (prefetched by the first chunk).
template <size_t kGroup, int kMaxHeads, class Score>
void forKeyGroups(const QueryBlocks& qb, size_t heads, size_t d, const uint8_t* const* keys, size_t count, float* scores,
                  size_t stride, const NextBytes& next, Score&& score) {
  const size_t blocks = d / 32;
  forRowGroups<kGroup>(keys, count, [&](const uint8_t* const* rows, size_t n, size_t p) {
    const size_t ahead = next.count > p ? (next.count - p < kGroup ? next.count - p : kGroup) : 0;
    for (size_t h0 = 0; h0 < heads; h0 += kMaxHeads) {
      const QueryBlocks chunk{qb.q + h0 * d, qb.s + h0 * blocks, qb.sums + h0 * blocks};
      withHeadCount<kMaxHeads>(heads - h0, [&](auto hc) {
        score(hc, chunk, rows, n, scores + h0 * stride + p, next.rows + p, h0 == 0 ? ahead : 0);
      });
    }
  });
}

// Positions the q8_0/q4_0 value kernels take at a time (the tile, kPositionTile, in practice).
constexpr size_t kValueChunk = 64;

// The loops of the q8_0/q4_0 value kernels, which fold each row's block scale into the weights: for
// each chunk of positions, block b and chunk of up to kMaxHeads heads, `scaled` ([head][kValueChunk])
// gets the heads' weights times the rows' scales of block b (blockScales(rows, n, at, scales) writes
// n floats), and accumulate(hc, h0, b, rows, scaled, n, next, nextCount) adds the block's values.
template <int kMaxHeads, class BlockScales, class Accumulate>
void forValueBlocks(size_t heads, const uint8_t* const* values, const float* weights, size_t stride, size_t count,
                    size_t blocks, size_t blockBytes, const NextBytes& next, BlockScales&& blockScales,
                    Accumulate&& accumulate) {
  for (size_t p0 = 0; p0 < count; p0 += kValueChunk) {
    const size_t n = count - p0 < kValueChunk ? count - p0 : kValueChunk;
    const size_t ahead = next.count > p0 ? (next.count - p0 < kValueChunk ? next.count - p0 : kValueChunk) : 0;
    for (size_t b = 0; b < blocks; b++) {
      alignas(64) float scales[kValueChunk];
      blockScales(values + p0, n, b * blockBytes, scales);
      alignas(64) float scaled[kMaxHeads * kValueChunk];
      for (size_t h0 = 0; h0 < heads; h0 += kMaxHeads) {
        const size_t hc = heads - h0 < size_t(kMaxHeads) ? heads - h0 : size_t(kMaxHeads);
        for (size_t h = 0; h < hc; h++) {
          const float* w = weights + (h0 + h) * stride + p0;
          for (size_t p = 0; p < n; p++) scaled[h * kValueChunk + p] = w[p] * scales[p];
        }
        withHeadCount<kMaxHeads>(hc, [&](auto c) {
          accumulate(c, h0, b, values + p0, static_cast<const float*>(scaled), n, next.rows + p0, h0 == 0 ? ahead : 0);
        });
      }
    }
  }
}

}  // namespace
}  // namespace vserve
