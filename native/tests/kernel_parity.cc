// Stand-alone check that every compiled kernel set agrees with the portable one on random data,
// without Node, and that its KV-format tile kernels agree with scalar references. The NEON kernels are
// checked from an x86 machine by test/native/neon-cross.test.ts, which builds this file with
// aarch64-linux-gnu-g++ (with the NEON and portable kernel sources, ggml_types.cc and kv_format.cc) and
// runs it under qemu-aarch64.
// On x86-64, define VSERVE_PARITY_X86 and link the avx2/avx512 kernel objects compiled with their
// flags (see binding.gyp); run it only on a CPU with AVX-512.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../attention_core.h"
#include "../ggml_types.h"
#include "../kernel_set.h"
#include "../kv_format.h"

using namespace vserve;

namespace {

std::mt19937 rng(42);

std::vector<float> randomFloats(size_t n) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& f : v) f = u(rng);
  return v;
}

std::vector<uint8_t> randomQuantBlocks(size_t blocks, int blockBytes) {
  std::vector<uint8_t> b(blocks * size_t(blockBytes));
  for (uint8_t& x : b) x = uint8_t(rng());
  for (size_t i = 0; i < blocks; i++) {
    const uint16_t d = 0x2000 + uint16_t(rng() % 256);  // a small positive half
    std::memcpy(&b[i * size_t(blockBytes)], &d, 2);
  }
  return b;
}

int failures = 0;

// The largest difference relative to the largest reference magnitude (NaN anywhere: infinite).
float relativeError(const std::vector<float>& got, const std::vector<float>& want) {
  float worst = 0, scale = 1e-30f;
  for (size_t i = 0; i < want.size(); i++) {
    const float diff = std::fabs(got[i] - want[i]);
    worst = std::isnan(diff) ? INFINITY : std::fmax(worst, diff);
    scale = std::fmax(scale, std::fabs(want[i]));
  }
  return worst / scale;
}

void report(const std::string& what, const char* isa, float err, float tol) {
  const bool ok = err <= tol;
  if (!ok) failures++;
  std::printf("%-6s %-28s rel err %.2e %s\n", isa, what.c_str(), double(err), ok ? "ok" : "FAIL");
}

void expectClose(const char* what, const char* isa, const std::vector<float>& got, const std::vector<float>& want, float tol) {
  report(what, isa, relativeError(got, want), tol);
}

// The Q2_K / Q3_K / Q5_K / IQ4_XS kernels (SuperBlockKernels, where both sets have them) on random
// super-blocks with a sane f16 d (and dmin) in each.
void checkSuperBlocks(const KernelSet& k, const KernelSet& ref, const KQuantRows& xk, size_t rows) {
  if (k.superBlocks == nullptr || ref.superBlocks == nullptr) return;
  struct Format {
    const char* name;
    int blockBytes, dAt, dminAt;  // dminAt < 0: none
    void (*SuperBlockKernels::*fn)(const KQuantRows&, const uint8_t*, const MatmulRange&);
  };
  const Format formats[] = {{"matmulQ2_K", kQ2_KBytes, 80, 82, &SuperBlockKernels::matmulQ2_K},
                            {"matmulQ3_K", kQ3_KBytes, 108, -1, &SuperBlockKernels::matmulQ3_K},
                            {"matmulQ5_K", kQ5_KBytes, 0, 2, &SuperBlockKernels::matmulQ5_K},
                            {"matmulIQ4_XS", kIQ4_XSBytes, 0, -1, &SuperBlockKernels::matmulIQ4_XS}};
  for (const Format& f : formats) {
    std::vector<uint8_t> w(rows * xk.cols / kQKSuper * size_t(f.blockBytes));
    for (uint8_t& v : w) v = uint8_t(rng());
    for (size_t o = 0; o < w.size(); o += size_t(f.blockBytes)) {
      const uint16_t d = 0x2000 + uint16_t(rng() % 256);
      std::memcpy(&w[o + size_t(f.dAt)], &d, 2);
      if (f.dminAt >= 0) std::memcpy(&w[o + size_t(f.dminAt)], &d, 2);
    }
    std::vector<float> out(xk.rows * rows), outRef(xk.rows * rows);
    (k.superBlocks->*f.fn)(xk, w.data(), MatmulRange{0, rows, out.data(), rows});
    (ref.superBlocks->*f.fn)(xk, w.data(), MatmulRange{0, rows, outRef.data(), rows});
    expectClose(f.name, k.isa, out, outRef, 1e-5f);
  }
}

// The K-quant kernels (where both sets have them) on the signed form of the same quantized rows.
void checkKQuants(const KernelSet& k, const KernelSet& ref, const QuantizedRows& xq, size_t n, size_t cols) {
  std::vector<int8_t> q(n * cols);
  std::vector<float> s(n * cols / 16);
  for (size_t g = 0; g < s.size(); g++) {
    int sum = 0;
    for (size_t i = g * 16; i < g * 16 + 16; i++) sum += q[i] = int8_t(int(xq.q[i]) - 128);
    s[g] = xq.d[g / 2] * float(sum);
  }
  const KQuantRows xk{q.data(), xq.d, s.data(), n, cols};
  const size_t rows = 7;
  for (int type : {kQ4_K, kQ6_K}) {
    const auto fn = type == kQ4_K ? k.matmulQ4_K : k.matmulQ6_K;
    const auto fnRef = type == kQ4_K ? ref.matmulQ4_K : ref.matmulQ6_K;
    if (fn == nullptr || fnRef == nullptr) continue;
    // Random bytes; then a sane f16 d (and dmin) in each super-block.
    std::vector<uint8_t> w(rows * cols / kQKSuper * (type == kQ4_K ? kQ4_KBytes : kQ6_KBytes));
    for (uint8_t& v : w) v = uint8_t(rng());
    const size_t blockBytes = type == kQ4_K ? kQ4_KBytes : kQ6_KBytes;
    for (size_t o = 0; o < w.size(); o += blockBytes) {
      const uint16_t d = 0x2000 + uint16_t(rng() % 256);
      if (type == kQ4_K) {
        std::memcpy(&w[o], &d, 2);
        std::memcpy(&w[o + 2], &d, 2);
      } else {
        std::memcpy(&w[o + 208], &d, 2);
      }
    }
    std::vector<float> out(n * rows), outRef(n * rows);
    fn(xk, w.data(), MatmulRange{0, rows, out.data(), rows});
    fnRef(xk, w.data(), MatmulRange{0, rows, outRef.data(), rows});
    expectClose(type == kQ4_K ? "matmulQ4_K" : "matmulQ6_K", k.isa, out, outRef, 1e-5f);
  }
  checkSuperBlocks(k, ref, xk, rows);
}

// The Q4_1 / Q5_0 / Q5_1 / IQ4_NL kernels (Block32Kernels) on the same quantized rows: random quants and
// high bits, a small positive d and (Q4_1, Q5_1) a small negative m per block.
void checkBlock32(const KernelSet& k, const KernelSet& ref, const QuantizedRows& xq, size_t n, size_t cols) {
  if (k.block32 == nullptr || ref.block32 == nullptr) return;
  const size_t rows = 7, blocks = cols / kQKBlock;
  struct Case {
    const char* name;
    int bytes;
    bool hasMin;
    void (*Block32Kernels::*fn)(const QuantizedRows&, const uint8_t*, const MatmulRange&);
  };
  const Case cases[] = {{"matmulQ4_1", kQ4_1Bytes, true, &Block32Kernels::matmulQ4_1},
                        {"matmulQ5_0", kQ5_0Bytes, false, &Block32Kernels::matmulQ5_0},
                        {"matmulQ5_1", kQ5_1Bytes, true, &Block32Kernels::matmulQ5_1},
                        {"matmulIQ4_NL", kIQ4_NLBytes, false, &Block32Kernels::matmulIQ4_NL}};
  for (const Case& c : cases) {
    std::vector<uint8_t> w = randomQuantBlocks(rows * blocks, c.bytes);
    if (c.hasMin) {
      for (size_t b = 0; b < rows * blocks; b++) {
        const uint16_t m = 0xa400 + uint16_t(rng() % 256);  // a small negative half
        std::memcpy(&w[b * size_t(c.bytes) + 2], &m, 2);
      }
    }
    std::vector<float> out(n * rows), outRef(n * rows);
    (k.block32->*c.fn)(xq, w.data(), MatmulRange{0, rows, out.data(), rows});
    (ref.block32->*c.fn)(xq, w.data(), MatmulRange{0, rows, outRef.data(), rows});
    expectClose(c.name, k.isa, out, outRef, 1e-5f);
  }
}

// Both activation quantizers must give the portable set's bytes exactly (llama.cpp's formats, which the
// Node tests check the portable set against).
template <class T>
void expectSame(const char* what, const char* isa, const std::vector<T>& got, const std::vector<T>& want) {
  const bool same = got.size() == want.size() && std::memcmp(got.data(), want.data(), got.size() * sizeof(T)) == 0;
  if (!same) failures++;
  std::printf("%-6s %-28s %s\n", isa, what, same ? "identical" : "FAIL (bytes differ)");
}

void checkQuantizers(const KernelSet& k, const KernelSet& ref) {
  for (size_t cols : {256, 2048}) {
    const size_t n = 3;
    std::vector<float> x = randomFloats(n * cols);
    for (size_t i = 0; i < 64; i++) x[i] = float(int(rng() % 255) - 127) * 0.5f;  // halves: ties at scale 1
    x[0] = 127.0f;
    std::fill(x.begin() + 256, x.begin() + 288, 0.0f);  // an all-zero block
    std::vector<uint8_t> u(n * cols), uRef(n * cols);
    std::vector<float> d(n * cols / kQKBlock), dRef(d.size()), bs(d.size()), bsRef(d.size());
    k.quantizeRows(x.data(), n, cols, u.data(), d.data(), bs.data());
    ref.quantizeRows(x.data(), n, cols, uRef.data(), dRef.data(), bsRef.data());
    expectSame("quantizeRows quants", k.isa, u, uRef);
    expectSame("quantizeRows scales", k.isa, d, dRef);
    expectSame("quantizeRows Q8_1 sums", k.isa, bs, bsRef);
    std::vector<int8_t> q(n * cols), qRef(n * cols);
    std::vector<float> s(n * cols / 16), sRef(s.size());
    k.quantizeSuperRows(x.data(), n, cols, q.data(), d.data(), s.data());
    ref.quantizeSuperRows(x.data(), n, cols, qRef.data(), dRef.data(), sRef.data());
    expectSame("quantizeSuperRows quants", k.isa, q, qRef);
    expectSame("quantizeSuperRows scales", k.isa, d, dRef);
    expectSame("quantizeSuperRows sums", k.isa, s, sRef);
  }
}

void check(const KernelSet& k, const KernelSet& ref) {
  checkQuantizers(k, ref);
  for (size_t cols : {32, 96, 2048}) {
    for (size_t n : {1, 3, 5}) {
      const size_t rows = 7, blocks = cols / kQKBlock;
      const std::vector<float> x = randomFloats(n * cols);
      std::vector<uint8_t> q(n * cols), qRef(n * cols);
      std::vector<float> d(n * blocks), dRef(n * blocks), bs(n * blocks), bsRef(n * blocks);
      k.quantizeRows(x.data(), n, cols, q.data(), d.data(), bs.data());
      ref.quantizeRows(x.data(), n, cols, qRef.data(), dRef.data(), bsRef.data());
      expectClose("quantizeRows scales", k.isa, d, dRef, 1e-6f);
      const QuantizedRows xq{qRef.data(), dRef.data(), bsRef.data(), n, cols};
      for (int type : {kQ8_0, kQ4_0}) {
        const int bytes = type == kQ8_0 ? kQ8_0Bytes : kQ4_0Bytes;
        const std::vector<uint8_t> w = randomQuantBlocks(rows * blocks, bytes);
        std::vector<float> out(n * rows), outRef(n * rows);
        const auto fn = type == kQ8_0 ? k.matmulQ8_0 : k.matmulQ4_0;
        const auto fnRef = type == kQ8_0 ? ref.matmulQ8_0 : ref.matmulQ4_0;
        fn(xq, w.data(), MatmulRange{0, rows, out.data(), rows});
        fnRef(xq, w.data(), MatmulRange{0, rows, outRef.data(), rows});
        expectClose(type == kQ8_0 ? "matmulQ8_0" : "matmulQ4_0", k.isa, out, outRef, 1e-5f);
      }
      if (cols % kQKSuper == 0) checkKQuants(k, ref, xq, n, cols);
      checkBlock32(k, ref, xq, n, cols);
      const std::vector<float> wf = randomFloats(rows * cols);
      std::vector<uint16_t> wh(rows * cols);
      for (size_t i = 0; i < wh.size(); i++) wh[i] = uint16_t(0x3000 + rng() % 0x800);
      const FloatRows xf{x.data(), n, cols};
      std::vector<float> out(n * rows), outRef(n * rows);
      k.matmulF32(xf, wf.data(), MatmulRange{0, rows, out.data(), rows});
      ref.matmulF32(xf, wf.data(), MatmulRange{0, rows, outRef.data(), rows});
      expectClose("matmulF32", k.isa, out, outRef, 1e-5f);
      k.matmulF16(xf, wh.data(), MatmulRange{0, rows, out.data(), rows});
      ref.matmulF16(xf, wh.data(), MatmulRange{0, rows, outRef.data(), rows});
      expectClose("matmulF16", k.isa, out, outRef, 1e-5f);
      k.matmulBF16(xf, wh.data(), MatmulRange{0, rows, out.data(), rows});
      ref.matmulBF16(xf, wh.data(), MatmulRange{0, rows, outRef.data(), rows});
      expectClose("matmulBF16", k.isa, out, outRef, 1e-5f);
    }
  }
  const std::vector<float> a = randomFloats(67), b = randomFloats(67);
  expectClose("dot", k.isa, {k.dot(a.data(), b.data(), 67)}, {ref.dot(a.data(), b.data(), 67)}, 1e-5f);
  std::vector<float> y = a, yRef = a;
  k.axpy(y.data(), b.data(), 0.5f, 67);
  ref.axpy(yRef.data(), b.data(), 0.5f, 67);
  k.scale(y.data(), 3.0f, 67);
  ref.scale(yRef.data(), 3.0f, 67);
  expectClose("axpy + scale", k.isa, y, yRef, 1e-6f);
  // addRows: whole blocks of 64 and 16 and a tail, rows 101 apart.
  for (size_t rows : {1, 3, 8, 16}) {
    const std::vector<float> x = randomFloats(rows * 101), w = randomFloats(rows);
    std::vector<float> sum = randomFloats(93), sumRef = sum;
    k.addRows(sum.data(), x.data(), 101, w.data(), rows, 93);
    ref.addRows(sumRef.data(), x.data(), 101, w.data(), rows, 93);
    expectClose("addRows", k.isa, sum, sumRef, 1e-6f);
  }
  std::vector<uint8_t> bytes(1000);
  for (uint8_t& v : bytes) v = uint8_t(rng());
  // readAll only promises to depend on every byte; check that flipping the last one changes it.
  const uint64_t before = k.readAll(bytes.data(), bytes.size());
  bytes.back() ^= 1;
  if (k.readAll(bytes.data(), bytes.size()) == before) {
    failures++;
    std::printf("%-6s readAll ignores the tail FAIL\n", k.isa);
  }
}

// One head slice of d values per position in KV format f, each row at an odd address (slices in a
// cache are not aligned either), with the values they decode to.
struct FormatRows {
  std::vector<uint8_t> bytes;
  std::vector<const uint8_t*> rows;
  std::vector<float> decoded;  // [count][d]
};

FormatRows formatRows(uint32_t f, size_t count, size_t d) {
  const KVFormatTraits& fmt = kvFormat(f);
  const size_t stride = fmt.rowBytes(d) + 7;
  FormatRows r{std::vector<uint8_t>(count * stride + 1), {}, std::vector<float>(count * d)};
  for (size_t p = 0; p < count; p++) {
    uint8_t* row = r.bytes.data() + 1 + p * stride;
    fmt.encode(randomFloats(d).data(), d, row, stride);  // one-row groups: the stride is not used
    fmt.decode(row, 0, d, r.decoded.data() + p * d, d, 0, stride);
    r.rows.push_back(row);
  }
  return r;
}

// Value i of a q8_0 / q4_0 block as its integer quant (q4_0: the nibble less 8).
int blockQuant(uint32_t f, const uint8_t* blk, size_t i) {
  if (f == kKVQ8_0) return int8_t(blk[2 + i]);
  const uint8_t byte = blk[2 + i % 16];
  return int(i < 16 ? byte & 0x0f : byte >> 4) - 8;
}

// Scores as the kernels define them, in double: f16 keys against the f32 query, q8_0/q4_0 keys as
// integer dots with the query's q8_0 blocks (what the kernels compute, so exact up to f32 rounding).
std::vector<float> referenceScores(uint32_t f, const FormatRows& keys, const float* q, const QueryBlocks& qb, size_t heads,
                                   size_t count, size_t d, float scale, size_t stride) {
  std::vector<float> scores(heads * stride);
  for (size_t h = 0; h < heads; h++) {
    for (size_t p = 0; p < count; p++) {
      double sum = 0;
      if (f == kKVF16) {
        for (size_t i = 0; i < d; i++) sum += double(q[h * d + i]) * keys.decoded[p * d + i];
      } else {
        const size_t blockBytes = kvFormat(f).blockBytes;
        for (size_t b = 0; b < d / 32; b++) {
          const uint8_t* blk = keys.rows[p] + b * blockBytes;
          long dot = 0;
          for (size_t i = 0; i < 32; i++) dot += long(blockQuant(f, blk, i)) * qb.q[h * d + b * 32 + i];
          sum += double(halfToFloat(loadU16(blk))) * qb.s[h * (d / 32) + b] * double(dot);
        }
      }
      scores[h * stride + p] = float(sum * scale);
    }
  }
  return scores;
}

void checkKVTiles(const KernelSet& k) {
  if (k.kvTiles == nullptr) return;
  // A scratch tile's stride, and a longer one: a unit that reports scores has the kernels write them
  // into rows of its whole range (native/score_tiles.h).
  for (size_t stride : {kPositionTile, kPositionTile + 37})
  for (uint32_t f : {kKVF16, kKVQ8_0, kKVQ4_0}) {
    const KVTileKernels& t = k.kvTiles[f];
    if (t.score == nullptr && t.accumulate == nullptr) continue;
    float scoreErr = 0, accumulateErr = 0;  // the worst over all shapes
    const std::vector<size_t> dims = f == kKVF16 ? std::vector<size_t>{7, 8, 12, 40, 64, 72, 128} : std::vector<size_t>{32, 64, 96, 128, 256};
    for (size_t d : dims) {
      for (size_t heads : {1, 2, 5, 8, 11}) {
        for (size_t count : {1, 13, 16, 37, 64}) {
          const FormatRows rows = formatRows(f, count, d);
          const NextBytes next{rows.rows.data(), count};  // prefetched only
          const std::vector<float> q = randomFloats(heads * d);
          AttentionScratch scratch;
          QueryBlocks qb{nullptr, nullptr, nullptr};
          if (f != kKVF16) {
            quantizeQuery(q.data(), heads, d, scratch);
            qb = {scratch.queryQuants.data(), scratch.queryScales.data(), scratch.querySums.data()};
          }
          if (t.score != nullptr) {
            std::vector<float> scores(heads * stride);
            t.score(q.data(), qb, heads, rows.rows.data(), count, d, 0.3f, scores.data(), stride, next);
            const float err = relativeError(scores, referenceScores(f, rows, q.data(), qb, heads, count, d, 0.3f, stride));
            scoreErr = std::fmax(scoreErr, err);
          }
          if (t.accumulate != nullptr) {
            std::vector<float> weights = randomFloats(heads * stride), out = randomFloats(heads * d);
            std::vector<float> want(out.size());
            for (size_t h = 0; h < heads; h++) {
              for (size_t i = 0; i < d; i++) {
                double sum = out[h * d + i];
                for (size_t p = 0; p < count; p++) sum += double(weights[h * stride + p]) * rows.decoded[p * d + i];
                want[h * d + i] = float(sum);
              }
            }
            t.accumulate(out.data(), heads, rows.rows.data(), weights.data(), stride, count, d, next);
            accumulateErr = std::fmax(accumulateErr, relativeError(out, want));
          }
        }
      }
    }
    const std::string name = kvFormat(f).name;
    if (t.score != nullptr) report("kvTiles " + name + " score", k.isa, scoreErr, 1e-5f);
    if (t.accumulate != nullptr) report("kvTiles " + name + " accumulate", k.isa, accumulateErr, 1e-5f);
  }
}

}  // namespace

int main() {
  const KernelSet& ref = portableKernels();
#if defined(__aarch64__)
  check(neonKernels(), ref);
  checkKVTiles(neonKernels());
#endif
#if defined(VSERVE_PARITY_X86)
  check(avx2Kernels(), ref);
  checkKVTiles(avx2Kernels());
  check(avx512Kernels(), ref);
  checkKVTiles(avx512Kernels());
#endif
  std::printf("%s\n", failures == 0 ? "all kernels agree" : "MISMATCH");
  return failures == 0 ? 0 : 1;
}
