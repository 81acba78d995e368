// GELU as llama.cpp's CPU backend evaluates it (GeGLU in Gemma's feed-forward), so that vserve's logits
// match llama.cpp's: the tanh approximation computed in f32 at the input rounded to f16, the result rounded
// to f16 (llama.cpp reads it from a table over every f16 input), and inputs at or below -10 giving 0,
// at or above 10 the input itself. The plain f32 formula differs from it by up to one f16 step, enough
// to move a Gemma model's logits by about 1e-2.
#pragma once
#include <cstdint>

namespace vserve {

// GELU at every f16 input (indexed by its bits), rounded to f16.
const uint16_t* geluHalfTable();

// gelu(x) as above, given the table.
float geluLikeLlamaCpp(const uint16_t* table, float x);

}  // namespace vserve
