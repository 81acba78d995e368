// NEON pieces shared by the arm64 kernel files. Internal linkage (see kquant_blocks.h).
#pragma once
#include <arm_neon.h>

#include <cstdint>

namespace vserve {
namespace {

// sum over 32 lanes of a * b (signed bytes), widened so nothing overflows.
inline int32_t blockDot(int8x16_t a0, int8x16_t a1, int8x16_t b0, int8x16_t b1) {
  int32x4_t acc = vpaddlq_s16(vmull_s8(vget_low_s8(a0), vget_low_s8(b0)));
  acc = vpadalq_s16(acc, vmull_high_s8(a0, b0));
  acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a1), vget_low_s8(b1)));
  acc = vpadalq_s16(acc, vmull_high_s8(a1, b1));
  return vaddvq_s32(acc);
}

}  // namespace
}  // namespace vserve
