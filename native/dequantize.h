// Dequantization of whole rows of any supported type to f32 (portable code: used for embedding
// lookups, toFloat32 and the K-quant matmul path, none of which stream the whole model per token).
#pragma once
#include <cstddef>
#include <cstdint>

namespace vserve {

// Writes `count` floats (a multiple of the type's block size) decoded from `src`.
void dequantizeRow(int type, const uint8_t* src, float* dst, size_t count);

}  // namespace vserve
