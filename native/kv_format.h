// KV cache formats (DESIGN.md §8.4): a table indexed by format id, in the order of src/kv/format.ts's
// KV_FORMATS. A row of K or V (kvHeads x headDim values) is encoded as whole blocks of the format;
// kvStore encodes with `encode`, and attention either reads a format directly with a kernel set's tile
// kernels (kernel_set.h) or decodes a tile's head slices with `decode` into floats (the portable path).
#pragma once
#include <cstddef>
#include <cstdint>

namespace vserve {

enum KVFormatId : uint32_t {
  kKVF32 = 0,
  kKVF16 = 1,
  kKVQ8_0 = 2,
  kKVQ4_0 = 3,
  kKVKivi2Channel = 4,
  kKVKivi4Channel = 5,
  kKVKivi2Token = 6,
  kKVKivi4Token = 7,
  kKVFormatCount = 8
};

struct KVFormatTraits {
  const char* name;
  size_t blockValues;  // values encoded together along a row (1 for f32/f16, 32 otherwise)
  size_t blockBytes;   // bytes of such a block (amortized over the group for per-channel formats)
  size_t groupTokens;  // rows encoded together: 1, or 32 for KIVI's per-channel formats
  // Encodes groupTokens rows of n values (x: rows n apart) into the rows at dst, dst + rowStride, ...
  void (*encode)(const float* x, size_t n, uint8_t* dst, size_t rowStride);
  // Decodes values [first, first + n) of the row starting at `row` (a row of rowValues values, row
  // indexInGroup of its group, rows rowStride apart) into out.
  void (*decode)(const uint8_t* row, size_t first, size_t n, float* out, size_t rowValues, size_t indexInGroup,
                 size_t rowStride);
  size_t rowBytes(size_t values) const { return values / blockValues * blockBytes; }
  // Whether a head slice of d values starting at value `first` begins on a block boundary and is whole
  // blocks, so a kernel can be pointed at its first byte.
  bool sliceAligned(size_t first, size_t d) const { return first % blockValues == 0 && d % blockValues == 0; }
};

const KVFormatTraits& kvFormat(uint32_t id);

}  // namespace vserve
