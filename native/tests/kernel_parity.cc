// Stand-alone check that every compiled kernel set agrees with the portable one on random data,
// without Node. Used to verify the NEON kernels from an x86 machine:
//   aarch64-linux-gnu-g++ -std=c++17 -O2 -static -o parity native/tests/kernel_parity.cc
//       native/isa/portable_kernels.cc native/isa/neon_kernels.cc native/ggml_types.cc
//   qemu-aarch64 ./parity
// On x86-64, define VSERVE_PARITY_X86 and link the avx2/avx512 kernel objects compiled with their
// flags (see binding.gyp); run it only on a CPU with AVX-512.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "../ggml_types.h"
#include "../kernel_set.h"

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

void expectClose(const char* what, const char* isa, const std::vector<float>& got, const std::vector<float>& want, float tol) {
  float worst = 0, scale = 1e-30f;
  for (size_t i = 0; i < want.size(); i++) {
    worst = std::fmax(worst, std::fabs(got[i] - want[i]));
    scale = std::fmax(scale, std::fabs(want[i]));
  }
  const bool ok = worst / scale <= tol;
  if (!ok) failures++;
  std::printf("%-6s %-28s rel err %.2e %s\n", isa, what, double(worst / scale), ok ? "ok" : "FAIL");
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
}

void check(const KernelSet& k, const KernelSet& ref) {
  for (size_t cols : {32, 96, 2048}) {
    for (size_t n : {1, 3, 5}) {
      const size_t rows = 7, blocks = cols / kQKBlock;
      const std::vector<float> x = randomFloats(n * cols);
      std::vector<uint8_t> q(n * cols), qRef(n * cols);
      std::vector<float> d(n * blocks), dRef(n * blocks);
      k.quantizeRows(x.data(), n, cols, q.data(), d.data());
      ref.quantizeRows(x.data(), n, cols, qRef.data(), dRef.data());
      expectClose("quantizeRows scales", k.isa, d, dRef, 1e-6f);
      const QuantizedRows xq{qRef.data(), dRef.data(), n, cols};
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

}  // namespace

int main() {
  const KernelSet& ref = portableKernels();
#if defined(__aarch64__)
  check(neonKernels(), ref);
#endif
#if defined(VSERVE_PARITY_X86)
  check(avx2Kernels(), ref);
  check(avx512Kernels(), ref);
#endif
  std::printf("%s\n", failures == 0 ? "all kernels agree" : "MISMATCH");
  return failures == 0 ? 0 : 1;
}
