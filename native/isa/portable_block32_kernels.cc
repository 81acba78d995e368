// Portable Q4_1 / Q5_0 / Q5_1 / IQ4_NL matmuls (Block32Kernels): each weight block is decoded to
// 32 signed quants once per weight row and activation row, and dotted with the activation quants as
// int32; (d * d_x) scales the dot, and m * s_x adds the min of the types that have one, in the order of
// llama.cpp's scalar dot.
#include "../block32_unpack.h"
#include "../ggml_types.h"
#include "../kernel_set.h"

namespace vserve {
namespace {

template <int kType>
void matmulBlock32(const QuantizedRows& x, const uint8_t* w, const MatmulRange& range) {
  constexpr bool kHasMin = kType == kQ4_1 || kType == kQ5_1;
  const size_t blocks = x.cols / kQKBlock;
  const size_t blockBytes = size_t(block32Bytes(kType));
  const size_t rowBytes = blocks * blockBytes;
  Block32Values v;
  for (size_t r = range.rowBegin; r < range.rowEnd; r++) {
    const uint8_t* wr = w + r * rowBytes;
    for (size_t i = 0; i < x.rows; i++) {
      const uint8_t* xq = x.q + i * x.cols;
      const float* xd = x.d + i * blocks;
      const float* xs = x.s + i * blocks;
      float acc = 0.0f;
      for (size_t b = 0; b < blocks; b++, xq += kQKBlock) {
        unpackBlock32(kType, wr + b * blockBytes, v);
        int32_t dot = 0;
        for (int j = 0; j < kQKBlock; j++) dot += (int32_t(xq[j]) - 128) * v.q[j];
        acc += (v.d * xd[b]) * float(dot) + (kHasMin ? v.m * xs[b] : 0.0f);
      }
      range.out[i * range.outStride + r] = acc;
    }
  }
}

}  // namespace

const Block32Kernels* portableBlock32Kernels() {
  static const Block32Kernels kKernels{matmulBlock32<kQ4_1>, matmulBlock32<kQ5_0>, matmulBlock32<kQ5_1>,
                                       matmulBlock32<kIQ4_NL>, nullptr, nullptr, nullptr, nullptr};
  return &kKernels;
}

}  // namespace vserve
