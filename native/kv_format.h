// KV cache formats (DESIGN.md §8.4): a table indexed by format id, in the order of src/kv/format.ts's
// KV_FORMATS. A row of K or V (kvHeads x headDim values) is encoded as whole blocks of the format;
// kvStore encodes with `encode`, and attention either reads a format directly with a kernel set's tile
// kernels (kernel_set.h) or decodes a tile's head slices with `decode` into floats (the portable path).
#pragma once
#include <cstddef>
#include <cstdint>

namespace vserve {

enum KVFormatId : uint32_t { kKVF32 = 0, kKVF16 = 1, kKVQ8_0 = 2, kKVQ4_0 = 3, kKVFormatCount = 4 };

struct KVFormatTraits {
  const char* name;
  size_t blockValues;  // values encoded together (1 for f32/f16, 32 for q8_0/q4_0)
  size_t blockBytes;
  // Encodes n values (a multiple of blockValues) as n / blockValues blocks at dst.
  void (*encode)(const float* x, size_t n, uint8_t* dst);
  // Decodes values [first, first + n) of the row starting at `row` into out.
  void (*decode)(const uint8_t* row, size_t first, size_t n, float* out);
  size_t rowBytes(size_t values) const { return values / blockValues * blockBytes; }
  // Whether a head slice of d values starting at value `first` begins on a block boundary and is whole
  // blocks, so a kernel can be pointed at its first byte.
  bool sliceAligned(size_t first, size_t d) const { return first % blockValues == 0 && d % blockValues == 0; }
};

const KVFormatTraits& kvFormat(uint32_t id);

// IEEE half from float, round to nearest even (the same bits as F16C's and ARM's conversions).
uint16_t floatToHalf(float x);

}  // namespace vserve
