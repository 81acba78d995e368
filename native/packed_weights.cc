#include "packed_weights.h"

#include <cstdlib>
#include <cstring>

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

#include "ggml_types.h"
#include "isa/kquant_blocks.h"
#include "superblock_unpack.h"
#include "thread_pool.h"

namespace vserve {

namespace {
bool hasMin(int type) { return type == kQ4_1 || type == kQ5_1; }
bool hasFifthBit(int type) { return type == kQ5_0 || type == kQ5_1; }
}  // namespace

size_t packedBlockBytes(int type) {
  const size_t scales = (hasMin(type) ? 2 : 1) * 2 * kPackRows;
  return scales + kPackRows * (type == kQ8_0 ? 32 : 16) + (hasFifthBit(type) ? 8 * 8 : 0);
}

size_t packedGroupBytes(int type, size_t cols) {
  switch (type) {
    case kQ8_0:
    case kQ4_0:
    case kQ4_1:
    case kQ5_0:
    case kQ5_1:
    case kIQ4_NL: return cols % kQKBlock == 0 ? cols / kQKBlock * packedBlockBytes(type) : 0;
    case kQ4_K: return cols % kQKSuper == 0 ? cols / kQKSuper * kQ4_KPackedBytes : 0;
    case kQ2_K: return cols % kQKSuper == 0 ? cols / kQKSuper * kQ2_KPackedBytes : 0;
    case kQ3_K: return cols % kQKSuper == 0 ? cols / kQKSuper * kQ3_KPackedBytes : 0;
    case kQ5_K: return cols % kQKSuper == 0 ? cols / kQKSuper * kQ5_KPackedBytes : 0;
    case kQ6_K: return cols % kQKSuper == 0 ? cols / kQKSuper * kQ6_KPackedBytes : 0;
    case kIQ4_XS: return cols % kQKSuper == 0 ? cols / kQKSuper * kIQ4_XSPackedBytes : 0;
    default: return 0;
  }
}

int packedBias(int type) { return type == kQ4_0 ? 8 : type == kQ5_0 ? 16 : hasMin(type) ? 0 : 128; }

namespace {
// The loop all packers share: for every group of kPackRows weight rows (groups in parallel), every block
// column b of `blocks`, and every row r of the group, pack(out, blk, r) with out the group's packed block
// b (outBlockBytes each) and blk row r's source block b (srcBlockBytes each).
template <class Pack>
void forEachRowBlock(const uint8_t* src, size_t rowBytes, size_t blocks, size_t srcBlockBytes, size_t outBlockBytes,
                     size_t groups, uint8_t* dst, Pack&& pack) {
  pool().parallelFor(groups, [&](size_t g) {
    uint8_t* out = dst + g * blocks * outBlockBytes;
    for (size_t b = 0; b < blocks; b++, out += outBlockBytes) {
      for (size_t r = 0; r < kPackRows; r++) pack(out, src + (g * kPackRows + r) * rowBytes + b * srcBlockBytes, r);
    }
  });
}
}  // namespace

void packRows16(int type, const uint8_t* src, size_t rowBytes, size_t cols, size_t groups, uint8_t* dst) {
  static_assert(kIQ4_NLBytes == kQ4_0Bytes, "IQ4_NL packs as Q4_0");
  const size_t blockBytes = type == kQ8_0 ? kQ8_0Bytes : kQ4_0Bytes;
  const size_t quantBytes = blockBytes - 2;
  const uint32_t flip = type == kQ8_0 ? 0x80808080u : 0u;
  forEachRowBlock(src, rowBytes, cols / kQKBlock, blockBytes, packedBlockBytes(type), groups, dst,
                  [&](uint8_t* out, const uint8_t* blk, size_t r) {
                    std::memcpy(out + 2 * r, blk, 2);
                    for (size_t k = 0; k < quantBytes / 4; k++) {
                      uint32_t word;  // 4 quants at a time: byte-wise copying made packing a 1 GB model take ~1 s
                      std::memcpy(&word, blk + 2 + 4 * k, 4);
                      word ^= flip;
                      std::memcpy(out + 2 * kPackRows + (k * kPackRows + r) * 4, &word, 4);
                    }
                  });
}

namespace {
// Row r's part of a packed Q4_K column, which is also the first part of a packed Q5_K column: d, dmin,
// the unpacked scales and mins, and the nibbles (`quants`: GGUF quant bytes, 128 of them).
void packQ4_KRow(uint8_t* out, const uint8_t* dAndDmin, const uint8_t* packedScales, const uint8_t* quants, size_t r) {
  std::memcpy(out + 2 * r, dAndDmin, 2);
  std::memcpy(out + 2 * kPackRows + 2 * r, dAndDmin + 2, 2);
  uint64_t scales, mins;
  unpackQ4_KScales(packedScales, &scales, &mins);
  for (size_t j = 0; j < 8; j++) {
    out[64 + j * kPackRows + r] = uint8_t(scales >> (8 * j));
    out[64 + 8 * kPackRows + j * kPackRows + r] = uint8_t(mins >> (8 * j));
  }
  uint8_t* dst = out + 64 + 16 * kPackRows;
  for (size_t p = 0; p < 4; p++) {
    for (size_t k = 0; k < 8; k++) std::memcpy(dst + p * 32 * kPackRows + (k * kPackRows + r) * 4, quants + 32 * p + 4 * k, 4);
  }
}
}  // namespace

void packRowsQ4_K16(const uint8_t* src, size_t rowBytes, size_t cols, size_t groups, uint8_t* dst) {
  forEachRowBlock(src, rowBytes, cols / kQKSuper, kQ4_KBytes, kQ4_KPackedBytes, groups, dst,
                  [](uint8_t* out, const uint8_t* blk, size_t r) { packQ4_KRow(out, blk, blk + kQ4_KScalesAt, blk + kQ4_KQuantsAt, r); });
}

void packRowsQ5_K16(const uint8_t* src, size_t rowBytes, size_t cols, size_t groups, uint8_t* dst) {
  static_assert(kQ5_KScalesAt == kQ4_KScalesAt, "Q5_K keeps Q4_K's scale packing");
  forEachRowBlock(src, rowBytes, cols / kQKSuper, kQ5_KBytes, kQ5_KPackedBytes, groups, dst,
                  [](uint8_t* out, const uint8_t* blk, size_t r) {
                    packQ4_KRow(out, blk, blk + kQ5_KScalesAt, blk + kQ5_KQuantsAt, r);
                    for (size_t k = 0; k < 8; k++) std::memcpy(out + kQ5_KPackedHighAt + (k * kPackRows + r) * 4, blk + kQ5_KHighAt + 4 * k, 4);
                  });
}

void packRowsQ2_K16(const uint8_t* src, size_t rowBytes, size_t cols, size_t groups, uint8_t* dst) {
  forEachRowBlock(src, rowBytes, cols / kQKSuper, kQ2_KBytes, kQ2_KPackedBytes, groups, dst,
                  [](uint8_t* out, const uint8_t* blk, size_t r) {
                    std::memcpy(out + 2 * r, blk + kQ2_KDAt, 2);
                    std::memcpy(out + 2 * kPackRows + 2 * r, blk + kQ2_KDAt + 2, 2);
                    for (size_t j = 0; j < 16; j++) out[kQ2_KPackedScalesAt + j * kPackRows + r] = blk[j];
                    for (size_t k = 0; k < 16; k++) std::memcpy(out + kQ2_KPackedQuantsAt + (k * kPackRows + r) * 4, blk + kQ2_KQuantsAt + 4 * k, 4);
                  });
}

void packRowsQ3_K16(const uint8_t* src, size_t rowBytes, size_t cols, size_t groups, uint8_t* dst) {
  forEachRowBlock(src, rowBytes, cols / kQKSuper, kQ3_KBytes, kQ3_KPackedBytes, groups, dst,
                  [](uint8_t* out, const uint8_t* blk, size_t r) {
                    const float d = halfToFloat(loadU16(blk + kQ3_KDAt));
                    std::memcpy(out + 4 * r, &d, 4);
                    uint8_t scales[16];
                    unpackQ3_KScales(blk + kQ3_KScalesAt, scales);
                    for (size_t g = 0; g < 16; g++) out[kQ3_KPackedScalesAt + g * kPackRows + r] = uint8_t(int8_t(scales[g] - 32));
                    for (size_t k = 0; k < 16; k++) std::memcpy(out + kQ3_KPackedLowAt + (k * kPackRows + r) * 4, blk + kQ3_KQuantsAt + 4 * k, 4);
                    for (size_t k = 0; k < 8; k++) std::memcpy(out + kQ3_KPackedHighAt + (k * kPackRows + r) * 4, blk + 4 * k, 4);
                  });
}

void packRowsQ6_K16(const uint8_t* src, size_t rowBytes, size_t cols, size_t groups, uint8_t* dst) {
  forEachRowBlock(src, rowBytes, cols / kQKSuper, kQ6_KBytes, kQ6_KPackedBytes, groups, dst,
                  [](uint8_t* out, const uint8_t* blk, size_t r) {
                    const float d = halfToFloat(loadU16(blk + kQ6_KDAt));
                    std::memcpy(out + 4 * r, &d, 4);
                    for (size_t j = 0; j < 16; j++) out[kQ6_KPackedScalesAt + j * kPackRows + r] = blk[kQ6_KScalesAt + j];
                    for (size_t k = 0; k < 32; k++) std::memcpy(out + kQ6_KPackedLowAt + (k * kPackRows + r) * 4, blk + 4 * k, 4);
                    for (size_t k = 0; k < 16; k++) {
                      std::memcpy(out + kQ6_KPackedHighAt + (k * kPackRows + r) * 4, blk + kQ6_KHighAt + 4 * k, 4);
                    }
                  });
}

void packRowsIQ4_XS16(const uint8_t* src, size_t rowBytes, size_t cols, size_t groups, uint8_t* dst) {
  forEachRowBlock(src, rowBytes, cols / kQKSuper, kIQ4_XSBytes, kIQ4_XSPackedBytes, groups, dst,
                  [](uint8_t* out, const uint8_t* blk, size_t r) {
                    const float d = halfToFloat(loadU16(blk));
                    std::memcpy(out + 4 * r, &d, 4);
                    for (int j = 0; j < 8; j++) {
                      out[kIQ4_XSPackedScalesAt + j * kPackRows + r] = uint8_t(int8_t(iq4xsScale(blk, j) - 32));
                      for (size_t k = 0; k < 4; k++) {
                        std::memcpy(out + kIQ4_XSPackedQuantsAt + j * 16 * kPackRows + (k * kPackRows + r) * 4,
                                    blk + kIQ4_XSQuantsAt + 16 * j + 4 * k, 4);
                      }
                    }
                  });
}

// Q5_0, Q4_1 and Q5_1: the scales d, then (Q4_1, Q5_1) the mins m as 16 more f16s, then the nibbles as
// packRows16 lays out Q4_0's; then (Q5_0, Q5_1) the fifth bits as 8 masks of 64 bits, one per unpacked
// quant vector: mask k < 4 holds qh bits 4k..4k+3 (values 4k..4k+3, low nibbles) of row r at bits
// 4r..4r+3, mask k + 4 qh bits 16 + 4k.. (the high nibbles' values).
void packRowsNibbles16(int type, const uint8_t* src, size_t rowBytes, size_t cols, size_t groups, uint8_t* dst) {
  const bool min = hasMin(type), fifth = hasFifthBit(type);
  const size_t srcBytes = type == kQ5_0 ? kQ5_0Bytes : type == kQ4_1 ? kQ4_1Bytes : kQ5_1Bytes;
  // Source block: d, then m (Q4_1, Q5_1), then qh (Q5_0, Q5_1), then the 16 nibble bytes.
  const size_t highAt = min ? 4 : 2, nibblesAt = srcBytes - 16;
  const size_t quantsAt = (min ? 4 : 2) * kPackRows, masksAt = quantsAt + 16 * kPackRows;
  forEachRowBlock(src, rowBytes, cols / kQKBlock, srcBytes, packedBlockBytes(type), groups, dst,
                  [&](uint8_t* out, const uint8_t* blk, size_t r) {
                    std::memcpy(out + 2 * r, blk, 2);
                    if (min) std::memcpy(out + 2 * kPackRows + 2 * r, blk + 2, 2);
                    for (size_t k = 0; k < 4; k++) std::memcpy(out + quantsAt + (k * kPackRows + r) * 4, blk + nibblesAt + 4 * k, 4);
                    if (!fifth) return;
                    uint32_t high;
                    std::memcpy(&high, blk + highAt, 4);
                    for (size_t k = 0; k < 8; k++) {
                      uint64_t mask = 0;
                      if (r > 0) std::memcpy(&mask, out + masksAt + 8 * k, 8);  // rows 0..r-1 so far
                      const uint32_t bits = (high >> (k < 4 ? 4 * k : 16 + 4 * (k - 4))) & 0xf;
                      mask |= uint64_t(bits) << (4 * r);
                      std::memcpy(out + masksAt + 8 * k, &mask, 8);
                    }
                  });
}

namespace {
// Drops the whole pages inside [p, p + bytes) of a read-only MAP_PRIVATE file mapping: nothing was
// written to them, so MADV_DONTNEED only discards the process's copy and a later read refetches the file.
void releaseFilePages(const uint8_t* p, size_t bytes) {
#if defined(__linux__)
  const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = (uintptr_t(p) + page - 1) & ~(page - 1);
  const uintptr_t end = (uintptr_t(p) + bytes) & ~(page - 1);
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
#else
  (void)p;
  (void)bytes;
#endif
}
}  // namespace

const uint8_t* PackedCache::get(int type, const uint8_t* src, size_t rows, size_t cols, size_t rowBytes,
                                bool srcIsFileMapping) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!tried_) {
    tried_ = true;
    const size_t groups = rows / kPackRows;
    if (packedGroupBytes(type, cols) > 0 && groups > 0) {
      const size_t bytes = groups * packedGroupBytes(type, cols);
      // 2 MiB-aligned and advised for huge pages: decode streams the whole copy every token, and 4 KiB
      // pages would cost a TLB miss every 4 KiB.
      constexpr size_t kHuge = size_t(2) << 20;
      void* p = std::aligned_alloc(kHuge, (bytes + kHuge - 1) & ~(kHuge - 1));
      if (p != nullptr) {
#ifdef MADV_HUGEPAGE
        madvise(p, (bytes + kHuge - 1) & ~(kHuge - 1), MADV_HUGEPAGE);
#endif
        if (type == kQ4_K) {
          packRowsQ4_K16(src, rowBytes, cols, groups, static_cast<uint8_t*>(p));
        } else if (type == kQ2_K) {
          packRowsQ2_K16(src, rowBytes, cols, groups, static_cast<uint8_t*>(p));
        } else if (type == kQ3_K) {
          packRowsQ3_K16(src, rowBytes, cols, groups, static_cast<uint8_t*>(p));
        } else if (type == kQ5_K) {
          packRowsQ5_K16(src, rowBytes, cols, groups, static_cast<uint8_t*>(p));
        } else if (type == kQ6_K) {
          packRowsQ6_K16(src, rowBytes, cols, groups, static_cast<uint8_t*>(p));
        } else if (type == kIQ4_XS) {
          packRowsIQ4_XS16(src, rowBytes, cols, groups, static_cast<uint8_t*>(p));
        } else if (type == kQ5_0 || type == kQ4_1 || type == kQ5_1) {
          packRowsNibbles16(type, src, rowBytes, cols, groups, static_cast<uint8_t*>(p));
        } else {
          packRows16(type, src, rowBytes, cols, groups, static_cast<uint8_t*>(p));
        }
        data_ = {static_cast<uint8_t*>(p), std::free};
        if (srcIsFileMapping) releaseFilePages(src, groups * kPackRows * rowBytes);
      }
    }
  }
  return data_.get();
}

}  // namespace vserve
