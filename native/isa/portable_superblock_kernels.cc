// Portable Q2_K / Q3_K / Q5_K / IQ4_XS matmuls on KQuantRows activations: each weight super-block is
// unpacked to integer quants once per tile of activation rows (superblock_unpack.h), then every row
// takes integer dots per 16 values, one scale per 16 and the sub-block offsets through the
// activation sums KQuantRows carries.
#include <cstddef>
#include <cstdint>

#include "../ggml_types.h"
#include "../kernel_set.h"
#include "../superblock_unpack.h"
#include "kquant_blocks.h"

namespace vserve {
namespace {

constexpr size_t kSuperBlockTile = 8;  // activation rows per pass over a weight row

template <int kType, int kBlockBytes>
struct SuperBlock {
  static constexpr int kBytes = kBlockBytes;
  SuperBlockInts sb;

  void unpack(const uint8_t* blk) { unpackSuperBlock(kType, blk, sb); }

  // sum_g d * scale_g * xd(g) * dot_g - dmin * min_g * xs_g over the 16 groups of 16 values.
  float dot(const KQuantRows& x, size_t row, size_t b) const {
    const int8_t* xq = x.q + row * x.cols + b * kQKSuper;
    const float* xd = x.d + row * (x.cols / kQKBlock) + b * 8;
    const float* xs = x.s + row * (x.cols / 16) + b * 16;
    float scaled = 0.0f, offsets = 0.0f;
    for (int g = 0; g < 16; g++) {
      int32_t dotq = 0;
      for (int l = 0; l < 16; l++) dotq += int32_t(sb.q[16 * g + l]) * int32_t(xq[16 * g + l]);
      scaled += float(sb.scale[g]) * xd[g / 2] * float(dotq);
      offsets += float(sb.min[g]) * xs[g];
    }
    return sb.d * scaled - sb.dmin * offsets;
  }
};

void matmulQ2_K(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) {
  matmulKQuantRows<SuperBlock<kQ2_K, kQ2_KBytes>, kSuperBlockTile>(x, w, range);
}
void matmulQ3_K(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) {
  matmulKQuantRows<SuperBlock<kQ3_K, kQ3_KBytes>, kSuperBlockTile>(x, w, range);
}
void matmulQ5_K(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) {
  matmulKQuantRows<SuperBlock<kQ5_K, kQ5_KBytes>, kSuperBlockTile>(x, w, range);
}
void matmulIQ4_XS(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) {
  matmulKQuantRows<SuperBlock<kIQ4_XS, kIQ4_XSBytes>, kSuperBlockTile>(x, w, range);
}

}  // namespace

const SuperBlockKernels* portableSuperBlockKernels() {
  static const SuperBlockKernels kKernels{matmulQ2_K, matmulQ3_K, matmulQ5_K, matmulIQ4_XS, nullptr, nullptr, nullptr, nullptr};
  return &kKernels;
}

}  // namespace vserve
