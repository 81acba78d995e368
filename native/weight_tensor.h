// JS-visible tensors: ModelFile (a read-only mapping of a GGUF file) and WeightTensor (a zero-copy,
// bounds-checked view of one tensor in a ModelFile, or a native-owned copy of given bytes). Objects
// carry N-API type tags, so an op never mistakes some other object for a weight.
#pragma once
#include <napi.h>

#include <cstddef>
#include <cstdint>

#include "js_args.h"
#include "packed_weights.h"

namespace vserve {

struct WeightRef {
  const uint8_t* data;
  int type;
  size_t rows;
  size_t cols;
  size_t rowBytes;
  PackedCache* packed;  // the weight's row-interleaved copy (made on demand by matmul)
  bool fileBacked;      // data lies in a read-only file mapping
};

// The weight passed as argument i, after checking it is a live WeightTensor.
WeightRef weightArg(const Args& args, size_t i, const char* name);



}  // namespace vserve
