// GELU as llama.cpp's CPU backend evaluates it (GeGLU in Gemma's feed-forward), so that vserve's logits
// match llama.cpp's: the tanh approximation computed in f32 at the input rounded to f16, the result rounded
// to f16 (llama.cpp reads it from a table over every f16 input), and inputs at or below -10 giving 0,
// at or above 10 the input itself. The plain f32 formula differs from it by up to one f16 step, which
// moves a Gemma model's logits well past the engines' other differences (bench/README.md, arch-parity).
//
// The kernel sets' geglu (KernelSet::geglu) read the same table: a scalar loop, or vector gathers indexed
// by F16C's conversion of the inputs.
#pragma once
#include <cstddef>
#include <cstdint>

#include "ggml_types.h"

namespace vserve {

// GELU at every f16 input, indexed by its bits: each entry an f16 value, held as f32 so that vector
// gathers read it directly.
const float* geluTable();

// Internal linkage: each kernel file gets its own copy, built with its own ISA flags.
namespace {

// out[i] = gelu(gate[i]) * up[i] (0 where gate[i] <= -10), one element at a time.
inline void gegluScalar(const float* table, float* out, const float* gate, const float* up, size_t len) {
  for (size_t i = 0; i < len; i++) {
    const float g = gate[i];
    out[i] = g <= -10.0f ? 0.0f : (g >= 10.0f ? g : table[floatToHalf(g)]) * up[i];
  }
}

}  // namespace

}  // namespace vserve
