// peakCompute(threads?) -> { isa, threads, f32Flops, int8Ops }: the machine's measured arithmetic peak
// for the instruction set the kernels use, the ceiling compute-bound work (prefill) is judged against.
// Each pool thread runs a register-only loop of independent multiply-adds (more chains than the FMA
// latency x pipes product, so the loop is throughput-bound); the best of several timed passes counts.
//   f32Flops: 2 per lane per FMA.  int8Ops: 2 per u8 x s8 product (the dot instructions the int8
//   matmuls use: vpdpbusd on AVX-512 VNNI, vpmaddubsw + vpmaddwd on AVX2), NaN where the ISA has none here.
// The x86 loops carry target attributes, so this file builds without ISA flags and the loops only run
// when cpu_features chose that ISA.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include "cpu_features.h"
#include "js_args.h"
#include "modules.h"
#include "thread_pool.h"

#if defined(__x86_64__) || defined(_M_X64)
// GCC's AVX-512 reductions start from _mm512_undefined_*, which -Wuninitialized reports from the header
// (the ISA kernels' own library turns the warning off for the same reason).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#endif
#if defined(__aarch64__)
#include <arm_neon.h>
#endif

namespace vserve {
namespace {

constexpr int kChains = 12;

#if defined(__x86_64__) || defined(_M_X64)
__attribute__((target("avx512f"))) double f32Avx512(uint64_t iters) {
  __m512 acc[kChains];
  for (int c = 0; c < kChains; c++) acc[c] = _mm512_set1_ps(float(c) * 1e-3f);
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (uint64_t i = 0; i < iters; i++) {
    for (int c = 0; c < kChains; c++) acc[c] = _mm512_fmadd_ps(acc[c], a, b);
  }
  __m512 sum = acc[0];
  for (int c = 1; c < kChains; c++) sum = _mm512_add_ps(sum, acc[c]);
  volatile float sink = _mm512_reduce_add_ps(sum);
  (void)sink;
  return double(iters) * kChains * 16 * 2;
}

__attribute__((target("avx512f,avx512vnni"))) double int8Avx512(uint64_t iters) {
  __m512i acc[kChains];
  for (int c = 0; c < kChains; c++) acc[c] = _mm512_set1_epi32(c);
  const __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-2);
  for (uint64_t i = 0; i < iters; i++) {
    for (int c = 0; c < kChains; c++) acc[c] = _mm512_dpbusd_epi32(acc[c], a, b);
  }
  __m512i sum = acc[0];
  for (int c = 1; c < kChains; c++) sum = _mm512_add_epi32(sum, acc[c]);
  volatile int sink = _mm512_reduce_add_epi32(sum);
  (void)sink;
  return double(iters) * kChains * 64 * 2;
}

__attribute__((target("avx2,fma"))) double f32Avx2(uint64_t iters) {
  __m256 acc[kChains];
  for (int c = 0; c < kChains; c++) acc[c] = _mm256_set1_ps(float(c) * 1e-3f);
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (uint64_t i = 0; i < iters; i++) {
    for (int c = 0; c < kChains; c++) acc[c] = _mm256_fmadd_ps(acc[c], a, b);
  }
  __m256 sum = acc[0];
  for (int c = 1; c < kChains; c++) sum = _mm256_add_ps(sum, acc[c]);
  float lanes[8];
  _mm256_storeu_ps(lanes, sum);
  volatile float sink = lanes[0] + lanes[7];
  (void)sink;
  return double(iters) * kChains * 8 * 2;
}

// The AVX2 int8 kernels' sequence: u8 x s8 pairs summed to i16, then to i32, then accumulated.
__attribute__((target("avx2"))) double int8Avx2(uint64_t iters) {
  __m256i acc[kChains];
  for (int c = 0; c < kChains; c++) acc[c] = _mm256_set1_epi32(c);
  const __m256i a = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
  for (uint64_t i = 0; i < iters; i++) {
    for (int c = 0; c < kChains; c++) {
      // The accumulator is also the signed operand, so nothing is loop-invariant for the compiler to hoist.
      acc[c] = _mm256_add_epi32(acc[c], _mm256_madd_epi16(_mm256_maddubs_epi16(a, acc[c]), ones));
    }
  }
  __m256i sum = acc[0];
  for (int c = 1; c < kChains; c++) sum = _mm256_add_epi32(sum, acc[c]);
  int32_t lanes[8];
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(lanes), sum);
  volatile int32_t sink = lanes[0] + lanes[7];
  (void)sink;
  return double(iters) * kChains * 32 * 2;
}
#endif

#if defined(__aarch64__)
double f32Neon(uint64_t iters) {
  float32x4_t acc[kChains];
  for (int c = 0; c < kChains; c++) acc[c] = vdupq_n_f32(float(c) * 1e-3f);
  const float32x4_t a = vdupq_n_f32(0.999999f), b = vdupq_n_f32(1e-7f);
  for (uint64_t i = 0; i < iters; i++) {
    for (int c = 0; c < kChains; c++) acc[c] = vfmaq_f32(b, acc[c], a);
  }
  float32x4_t sum = acc[0];
  for (int c = 1; c < kChains; c++) sum = vaddq_f32(sum, acc[c]);
  volatile float sink = vaddvq_f32(sum);
  (void)sink;
  return double(iters) * kChains * 4 * 2;
}
#endif

using Loop = double (*)(uint64_t iters);

struct Loops {
  Loop f32 = nullptr;
  Loop int8 = nullptr;
};

Loops loopsFor(const std::string& isa) {
  Loops l;
#if defined(__x86_64__) || defined(_M_X64)
  // (avx512-amx and avx512-amx-bf16: the probe is the AVX-512 one; their tile kernels only take prefill matmuls.)
  if (isa == "avx512" || isa == "avx512-amx" || isa == "avx512-amx-bf16") l = {f32Avx512, int8Avx512};
  if (isa == "avx2") l = {f32Avx2, int8Avx2};
#endif
#if defined(__aarch64__)
  if (isa == "neon") l.f32 = f32Neon;
#endif
  return l;
}

// Operations per second of `loop` on every thread of `p`: iterations sized to ~20 ms per pass from a
// short calibration pass, best of three.
double measure(ThreadPool& p, Loop loop) {
  const size_t threads = size_t(p.threads());
  auto pass = [&](uint64_t iters) {
    double ops[1024] = {};
    const auto start = std::chrono::steady_clock::now();
    p.parallelFor(threads, [&](size_t t) { ops[t] = loop(iters); });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    double total = 0;
    for (size_t t = 0; t < threads; t++) total += ops[t];
    return std::make_pair(total, s);
  };
  const auto [calOps, calS] = pass(20000);
  const double perIter = calS / 20000.0;
  const uint64_t iters = std::max<uint64_t>(20000, uint64_t(0.02 / std::max(perIter, 1e-12)));
  double best = calOps / calS;
  for (int i = 0; i < 3; i++) {
    const auto [ops, s] = pass(iters);
    best = std::max(best, ops / s);
  }
  return best;
}

Napi::Value PeakCompute(const Napi::CallbackInfo& info) {
  Args args(info, "peakCompute");
  const int threads = info.Length() > 0 && !info[0].IsUndefined() ? int(args.index(0, "threads", 1024)) : pool().threads();
  if (threads < 1) args.rangeError("threads must be at least 1");
  std::unique_ptr<ThreadPool> own;
  ThreadPool* p = &pool();
  if (threads != p->threads()) {
    own = std::make_unique<ThreadPool>(threads);
    p = own.get();
  }
  const std::string isa = kernels().isa;
  const Loops loops = loopsFor(isa);
  Napi::Object result = Napi::Object::New(info.Env());
  result.Set("isa", isa);
  result.Set("threads", double(p->threads()));
  result.Set("f32Flops", loops.f32 ? measure(*p, loops.f32) : NAN);
  result.Set("int8Ops", loops.int8 ? measure(*p, loops.int8) : NAN);
  return result;
}

}  // namespace

void InitPeakCompute(Napi::Env env, Napi::Object exports) {
  exports.Set("peakCompute", Napi::Function::New(env, PeakCompute, "peakCompute"));
}

}  // namespace vserve
