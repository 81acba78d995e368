// Portable kernels: plain C++ compiled with no ISA flags, correct on every CPU and the fallback
// everywhere. Written so compilers can auto-vectorise the inner loops with the baseline ISA.
#include <cmath>
#include <cstring>

#include "../ggml_types.h"
#include "../gelu.h"
#include "../kernel_set.h"
#include "kquant_blocks.h"
#include "add_rows.h"
#include "softmax_tile.h"

namespace vserve {
namespace {

void quantizeRows(const float* x, size_t rows, size_t cols, uint8_t* q, float* d, float* s) {
  const size_t blocks = rows * (cols / kQKBlock);
  for (size_t b = 0; b < blocks; b++, x += kQKBlock, q += kQKBlock) {
    float amax = 0.0f;
    for (int j = 0; j < kQKBlock; j++) amax = std::fmax(amax, std::fabs(x[j]));
    const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
    const float scale = amax / 127.0f;
    d[b] = roundToHalf(scale);
    int sum = 0;
    for (int j = 0; j < kQKBlock; j++) {
      const int v = int(std::nearbyint(x[j] * inv));
      q[j] = uint8_t(v + 128);
      sum += v;
    }
    s[b] = roundToHalf(scale * float(sum));
  }
}

void quantizeSuperRows(const float* x, size_t rows, size_t cols, int8_t* q, float* d, float* s) {
  const size_t supers = rows * (cols / kQKSuper);
  for (size_t b = 0; b < supers; b++, x += kQKSuper, q += kQKSuper, d += kQKSuper / kQKBlock, s += kQKSuper / 16) {
    float amax = 0.0f, m = 0.0f;
    for (int j = 0; j < kQKSuper; j++) {
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        m = x[j];
      }
    }
    const float iscale = amax > 0.0f ? -127.0f / m : 0.0f;
    const float scale = amax > 0.0f ? 1.0f / iscale : 0.0f;
    for (int j = 0; j < kQKSuper; j++) q[j] = int8_t(std::nearbyint(iscale * x[j]));
    for (int k = 0; k < kQKSuper / kQKBlock; k++) d[k] = scale;
    for (int g = 0; g < kQKSuper / 16; g++) {
      int sum = 0;
      for (int j = 0; j < 16; j++) sum += q[16 * g + j];
      s[g] = scale * float(sum);
    }
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

// ---- K-quants: each weight super-block is unpacked once per tile of activation rows ----

constexpr size_t kKQuantTile = 8;  // activation rows per pass over a weight row

// Block::unpack turns one super-block into 256 unsigned quants and its factors; Block::dot gives that
// super-block's contribution to one activation row's output.

struct Q4_KBlock : Q4_KFactors {
  static constexpr int kBytes = kQ4_KBytes;
  uint8_t q[kQKSuper];  // 0..15, in value order

  void unpack(const uint8_t* blk) {
    unpackFactors(blk);
    const uint8_t* qs = blk + kQ4_KQuantsAt;
    for (int p = 0; p < 4; p++) {
      for (int l = 0; l < 32; l++) {
        q[64 * p + l] = qs[32 * p + l] & 0xf;
        q[64 * p + 32 + l] = qs[32 * p + l] >> 4;
      }
    }
  }

  float dot(const KQuantRows& x, size_t row, size_t b) const {
    return combine(x, row, b, [&](int j, const int8_t* xq) {
      int32_t dotq = 0;
      for (int l = 0; l < 32; l++) dotq += int32_t(q[32 * j + l]) * int32_t(xq[l]);
      return dotq;
    });
  }
};

struct Q6_KBlock : Q6_KFactors {
  static constexpr int kBytes = kQ6_KBytes;
  uint8_t q[kQKSuper];  // 0..63 (the stored value + 32), in value order

  void unpack(const uint8_t* blk) {
    const uint8_t* ql = blk;
    const uint8_t* qh = blk + kQ6_KHighAt;
    for (int half = 0; half < 2; half++, ql += 64, qh += 32) {
      uint8_t* out = q + 128 * half;
      for (int l = 0; l < 32; l++) {
        out[l] = uint8_t((ql[l] & 0xf) | ((qh[l] & 3) << 4));
        out[l + 32] = uint8_t((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4));
        out[l + 64] = uint8_t((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4));
        out[l + 96] = uint8_t((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4));
      }
    }
    unpackFactors(blk);
  }

  float dot(const KQuantRows& x, size_t row, size_t b) const {
    return combine(x, row, b, [&](int j, const int8_t* xq) {
      int32_t dotq = 0;
      for (int l = 0; l < 16; l++) dotq += int32_t(q[16 * j + l]) * int32_t(xq[l]);
      return dotq;
    });
  }
};

void matmulQ4_K(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) { matmulKQuantRows<Q4_KBlock, kKQuantTile>(x, w, range); }
void matmulQ6_K(const KQuantRows& x, const uint8_t* w, const MatmulRange& range) { matmulKQuantRows<Q6_KBlock, kKQuantTile>(x, w, range); }

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

void softmaxTile(float* scores, size_t heads, size_t stride, size_t count, float* max, float* sum, float* correction) {
  softmaxTileScalar(scores, heads, stride, count, max, sum, correction);
}

float expWeights(const float* x, size_t count, float shift, float scale, float floor, float* out) {
  return expWeightsScalar(x, count, shift, scale, floor, out);
}

void geglu(const float* table, float* out, const float* gate, const float* up, size_t len) { gegluScalar(table, out, gate, up, len); }

void addRows(float* y, const float* x, size_t stride, const float* a, size_t rows, size_t n) {
  addRowsGeneric(y, x, stride, a, rows, n);
}

void swiglu(float* out, const float* gate, const float* up, size_t len) { swigluScalar(out, gate, up, len); }

}  // namespace

VSERVE_DEFINE_KERNEL_SET(portableKernels, "portable", matmulQ4_K, matmulQ6_K, nullptr, nullptr, nullptr, nullptr, nullptr,
                         nullptr, nullptr, portableSuperBlockKernels(), portableBlock32Kernels())

}  // namespace vserve
