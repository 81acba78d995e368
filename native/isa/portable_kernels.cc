// Portable kernels: plain C++ compiled with no ISA flags, correct on every CPU and the fallback
// everywhere. Written so compilers can auto-vectorise the inner loops with the baseline ISA.
#include <cmath>
#include <cstring>

#include "../ggml_types.h"
#include "../kernel_set.h"

namespace vserve {
namespace {

void quantizeRows(const float* x, size_t rows, size_t cols, uint8_t* q, float* d) {
  const size_t blocks = rows * (cols / kQKBlock);
  for (size_t b = 0; b < blocks; b++, x += kQKBlock, q += kQKBlock) {
    float amax = 0.0f;
    for (int j = 0; j < kQKBlock; j++) amax = std::fmax(amax, std::fabs(x[j]));
    const float scale = amax / 127.0f;
    const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
    d[b] = scale;
    for (int j = 0; j < kQKBlock; j++) q[j] = uint8_t(int(std::nearbyint(x[j] * inv)) + 128);
  }
}

// Sum over one block of (u - 128) * w, the weights given as 32 signed values.
inline int blockDot(const uint8_t* u, const int8_t* w) {
  int sum = 0;
  for (int j = 0; j < kQKBlock; j++) sum += (int(u[j]) - 128) * int(w[j]);
  return sum;
}

// Unpacks one weight block's 32 quants to signed bytes.
inline void unpackQ8_0(const uint8_t* blk, int8_t* q) { std::memcpy(q, blk + 2, kQKBlock); }
inline void unpackQ4_0(const uint8_t* blk, int8_t* q) {
  for (int j = 0; j < 16; j++) {
    q[j] = int8_t((blk[2 + j] & 0xf) - 8);
    q[j + 16] = int8_t((blk[2 + j] >> 4) - 8);
  }
}

template <int kBlockBytes, void (*Unpack)(const uint8_t*, int8_t*)>
void matmulQuant(const QuantizedRows& x, const uint8_t* w, const MatmulRange& range) {
  const size_t blocks = x.cols / kQKBlock;
  const size_t rowBytes = blocks * kBlockBytes;
  int8_t unpacked[kQKBlock];
  for (size_t r = range.rowBegin; r < range.rowEnd; r++) {
    const uint8_t* wr = w + r * rowBytes;
    for (size_t i = 0; i < x.rows; i++) {
      const uint8_t* xq = x.q + i * x.cols;
      const float* xd = x.d + i * blocks;
      float acc = 0.0f;
      for (size_t b = 0; b < blocks; b++) {
        const uint8_t* blk = wr + b * kBlockBytes;
        Unpack(blk, unpacked);
        acc += halfToFloat(loadU16(blk)) * xd[b] * float(blockDot(xq + b * kQKBlock, unpacked));
      }
      range.out[i * range.outStride + r] = acc;
    }
  }
}

void matmulQ8_0(const QuantizedRows& x, const uint8_t* w, const MatmulRange& range) {
  matmulQuant<kQ8_0Bytes, unpackQ8_0>(x, w, range);
}
void matmulQ4_0(const QuantizedRows& x, const uint8_t* w, const MatmulRange& range) {
  matmulQuant<kQ4_0Bytes, unpackQ4_0>(x, w, range);
}

float dot(const float* a, const float* b, size_t n) {
  // Four partial sums so the compiler may vectorise without reassociation flags.
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
  }
  for (; i < n; i++) s0 += a[i] * b[i];
  return (s0 + s1) + (s2 + s3);
}

// Float-weight matmul with weights converted element by element by Convert.
template <class T, float (*Convert)(T)>
void matmulFloat(const FloatRows& x, const T* w, const MatmulRange& range) {
  float row[256];
  for (size_t r = range.rowBegin; r < range.rowEnd; r++) {
    const T* wr = w + r * x.cols;
    for (size_t i = 0; i < x.rows; i++) {
      const float* xr = x.x + i * x.cols;
      float acc = 0.0f;
      for (size_t c = 0; c < x.cols; c += 256) {
        const size_t len = x.cols - c < 256 ? x.cols - c : 256;
        for (size_t k = 0; k < len; k++) row[k] = Convert(wr[c + k]);
        acc += dot(row, xr + c, len);
      }
      range.out[i * range.outStride + r] = acc;
    }
  }
}

inline float identity(float v) { return v; }

void matmulF32(const FloatRows& x, const float* w, const MatmulRange& range) {
  matmulFloat<float, identity>(x, w, range);
}
void matmulF16(const FloatRows& x, const uint16_t* w, const MatmulRange& range) {
  matmulFloat<uint16_t, halfToFloat>(x, w, range);
}
void matmulBF16(const FloatRows& x, const uint16_t* w, const MatmulRange& range) {
  matmulFloat<uint16_t, bf16ToFloat>(x, w, range);
}

void axpy(float* y, const float* x, float a, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] += a * x[i];
}

void scale(float* y, float a, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] *= a;
}

uint64_t readAll(const uint8_t* p, size_t bytes) {
  uint64_t acc = 0;
  size_t i = 0;
  for (; i + 8 <= bytes; i += 8) {
    uint64_t v;
    std::memcpy(&v, p + i, 8);
    acc ^= v;
  }
  for (; i < bytes; i++) acc ^= p[i];
  return acc;
}

}  // namespace

VSERVE_DEFINE_KERNEL_SET(portableKernels, "portable")

}  // namespace vserve
