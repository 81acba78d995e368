// Row-wise and element-wise ops of the Llama block: rmsnorm, rope (normal and neox pair orders),
// swiglu, add, addBias. Small inputs run on the calling thread; large (prefill) inputs use the pool.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "js_args.h"
#include "modules.h"
#include "thread_pool.h"

namespace vserve {
namespace {

// Calls fn(begin, end) over [0, total) in pieces of at least `grain` items; the pool is only worth
// waking for inputs much larger than one piece.
template <class Fn>
void forRanges(size_t total, size_t grain, Fn&& fn) {
  const size_t tasks = (total + grain - 1) / grain;
  if (tasks <= 1) {
    fn(size_t(0), total);
    return;
  }
  pool().parallelFor(tasks, [&](size_t t) { fn(t * grain, std::min(total, (t + 1) * grain)); });
}

constexpr size_t kElementGrain = 1 << 16;

// exp(x) in f32 (within a few ulp of std::exp for |x| <= 87) written without branches or calls so the
// swiglu loop auto-vectorizes: std::exp is a scalar libm call per element. exp(x) = 2^n * exp(r) with
// n = round(x / ln 2), r = x - n ln 2 in [-ln2/2, ln2/2] (ln 2 split in two for exactness), exp(r) by
// its degree-6 Taylor polynomial, 2^n built in the exponent bits.
inline float expApprox(float x) {
  x = std::min(87.0f, std::max(-87.0f, x));  // a branch unless -fno-trapping-math (binding.gyp)
  // Rounds to nearest by adding and subtracting 1.5 * 2^23 (nearbyint is a libm call without SSE4.1).
  const float n = (x * 1.44269504f + 12582912.0f) - 12582912.0f;
  const float r = (x - n * 0.693145751953125f) - n * 1.428606765330187e-6f;
  float p = 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (int32_t(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, 4);
  return p * scale;
}

Napi::Value RmsNorm(const Napi::CallbackInfo& info) {
  Args args(info, "rmsnorm");
  const ArrayArg<float> out = args.float32(0, "out");
  const ArrayArg<float> x = args.float32(1, "x");
  const ArrayArg<float> weight = args.float32(2, "weight");
  const size_t n = args.index(3, "n");
  const size_t dim = args.index(4, "dim");
  const double eps = args.number(5, "eps");
  if (dim == 0) args.rangeError("dim must be positive");
  const size_t total = checkedMul(args, n, dim, "n * dim");
  args.requireLength(x, total, "x");
  args.requireLength(out, total, "out");
  args.requireLength(weight, dim, "weight");
  forRanges(n, std::max<size_t>(1, kElementGrain / dim), [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; r++) {
      const float* xr = x.data + r * dim;
      float* o = out.data + r * dim;
      double sumSq = 0;
      for (size_t i = 0; i < dim; i++) sumSq += double(xr[i]) * double(xr[i]);
      const float scale = float(1.0 / std::sqrt(sumSq / double(dim) + eps));
      for (size_t i = 0; i < dim; i++) o[i] = xr[i] * scale * weight.data[i];
    }
  });
  return info.Env().Undefined();
}

// rope(x, positions, nHeads, headDim, ropeDim, freqBase, freqScale, neox)
Napi::Value Rope(const Napi::CallbackInfo& info) {
  Args args(info, "rope");
  const ArrayArg<float> x = args.float32(0, "x");
  const ArrayArg<int32_t> positions = args.int32(1, "positions");
  const size_t nHeads = args.index(2, "nHeads");
  const size_t headDim = args.index(3, "headDim");
  const size_t ropeDim = args.index(4, "ropeDim");
  const double freqBase = args.number(5, "freqBase");
  const double freqScale = args.number(6, "freqScale");
  const bool neox = info.Length() > 7 && info[7].ToBoolean().Value();
  if (ropeDim % 2 != 0 || ropeDim > headDim) args.rangeError("ropeDim must be even and at most headDim");
  if (freqBase <= 0) args.rangeError("freqBase must be positive");
  const size_t n = positions.length;
  const size_t rowLen = checkedMul(args, nHeads, headDim, "nHeads * headDim");
  args.requireLength(x, checkedMul(args, n, rowLen, "x size"), "x");
  for (size_t t = 0; t < n; t++) {
    if (positions.data[t] < 0) args.rangeError("positions[" + std::to_string(t) + "] is negative");
  }
  const size_t half = ropeDim / 2;
  std::vector<double> invFreq(half);
  for (size_t i = 0; i < half; i++) invFreq[i] = std::pow(freqBase, -double(2 * i) / double(ropeDim));
  forRanges(n, std::max<size_t>(1, kElementGrain / std::max<size_t>(1, rowLen)), [&](size_t t0, size_t t1) {
    std::vector<float> cosv(half), sinv(half);
    for (size_t t = t0; t < t1; t++) {
      const double pos = double(positions.data[t]) * freqScale;
      for (size_t i = 0; i < half; i++) {
        cosv[i] = float(std::cos(pos * invFreq[i]));
        sinv[i] = float(std::sin(pos * invFreq[i]));
      }
      for (size_t h = 0; h < nHeads; h++) {
        float* v = x.data + t * rowLen + h * headDim;
        for (size_t i = 0; i < half; i++) {
          float* a = neox ? v + i : v + 2 * i;
          float* b = neox ? v + i + half : v + 2 * i + 1;
          const float x0 = *a, x1 = *b;
          *a = x0 * cosv[i] - x1 * sinv[i];
          *b = x0 * sinv[i] + x1 * cosv[i];
        }
      }
    }
  });
  return info.Env().Undefined();
}

Napi::Value SwiGLU(const Napi::CallbackInfo& info) {
  Args args(info, "swiglu");
  const ArrayArg<float> out = args.float32(0, "out");
  const ArrayArg<float> gate = args.float32(1, "gate");
  const ArrayArg<float> up = args.float32(2, "up");
  const size_t len = args.index(3, "len");
  args.requireLength(out, len, "out");
  args.requireLength(gate, len, "gate");
  args.requireLength(up, len, "up");
  forRanges(len, kElementGrain, [&](size_t i0, size_t i1) {
    for (size_t i = i0; i < i1; i++) {
      const float g = gate.data[i];
      out.data[i] = g / (1.0f + expApprox(-g)) * up.data[i];
    }
  });
  return info.Env().Undefined();
}

Napi::Value Add(const Napi::CallbackInfo& info) {
  Args args(info, "add");
  const ArrayArg<float> x = args.float32(0, "x");
  const ArrayArg<float> y = args.float32(1, "y");
  const size_t len = args.index(2, "len");
  args.requireLength(x, len, "x");
  args.requireLength(y, len, "y");
  forRanges(len, kElementGrain, [&](size_t i0, size_t i1) {
    for (size_t i = i0; i < i1; i++) x.data[i] += y.data[i];
  });
  return info.Env().Undefined();
}

Napi::Value AddBias(const Napi::CallbackInfo& info) {
  Args args(info, "addBias");
  const ArrayArg<float> x = args.float32(0, "x");
  const ArrayArg<float> bias = args.float32(1, "bias");
  const size_t n = args.index(2, "n");
  const size_t dim = bias.length;
  if (dim == 0) args.rangeError("bias is empty");
  args.requireLength(x, checkedMul(args, n, dim, "x size"), "x");
  for (size_t r = 0; r < n; r++)
    for (size_t i = 0; i < dim; i++) x.data[r * dim + i] += bias.data[i];
  return info.Env().Undefined();
}

}  // namespace

void InitElementwise(Napi::Env env, Napi::Object exports) {
  exports.Set("rmsnorm", Napi::Function::New(env, RmsNorm, "rmsnorm"));
  exports.Set("rope", Napi::Function::New(env, Rope, "rope"));
  exports.Set("swiglu", Napi::Function::New(env, SwiGLU, "swiglu"));
  exports.Set("add", Napi::Function::New(env, Add, "add"));
  exports.Set("addBias", Napi::Function::New(env, AddBias, "addBias"));
}

}  // namespace vserve
