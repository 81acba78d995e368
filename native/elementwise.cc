// Row-wise and element-wise ops of the Llama block: rmsnorm, add + rmsnorm, rope (normal and neox pair orders),
// swiglu, geglu, softmax, add, addBias. Small inputs run on the calling thread; large (prefill) inputs use the pool.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "avx512_clone.h"
#include "cpu_features.h"
#include "fast_exp.h"
#include "gelu.h"
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

// llama.cpp's rmsnorm: each square rounded to f32, summed in f64, the mean rounded to f32, and the scale
// 1 / sqrt(mean + eps) in f32 arithmetic. Doing the same gives its values to the bit, so ulp-level noise
// here cannot flip an int8 rounding in the next matmul's activations and part the two engines' tokens.
// Its sum runs in order; 8 f64 lanes give the same f32 mean unless the f64 sums straddle an f32 rounding
// boundary (each f32 square has 24 significant bits, the f64 sum keeps 53).
inline double sumSquares(const float* x, size_t len) {
  constexpr size_t kLanes = 8;
  double lanes[kLanes] = {};
  size_t i = 0;
  for (; i + kLanes <= len; i += kLanes)
    for (size_t j = 0; j < kLanes; j++) lanes[j] += double(x[i + j] * x[i + j]);
  double sum = 0;
  for (size_t j = 0; j < kLanes; j++) sum += lanes[j];
  for (; i < len; i++) sum += double(x[i] * x[i]);
  return sum;
}

inline void normalizeRow(float* out, const float* x, const float* weight, size_t dim, float eps) {
  const float mean = float(sumSquares(x, dim) / double(dim));
  const float scale = 1.0f / std::sqrt(mean + eps);
  for (size_t i = 0; i < dim; i++) out[i] = x[i] * scale * weight[i];
}

// rmsnorm(out, x, weight, n, dim, eps), and addRmsnorm(x, y, out, weight, n, dim, eps): the residual
// add and the next norm in one pass over each row (one call and one read of x instead of two). out may
// alias x or y: a row's add finishes before its norm writes.
Napi::Value NormRows(const Napi::CallbackInfo& info, bool addFirst) {
  Args args(info, addFirst ? "addRmsnorm" : "rmsnorm");
  const size_t at = addFirst ? 1 : 0;  // addRmsnorm has y before out
  const ArrayArg<float> x = args.float32(addFirst ? 0 : 1, "x");
  const ArrayArg<float> y = addFirst ? args.float32(1, "y") : ArrayArg<float>{};
  const ArrayArg<float> out = args.float32(addFirst ? 2 : 0, "out");
  const ArrayArg<float> weight = args.float32(at + 2, "weight");
  const size_t n = args.index(at + 3, "n");
  const size_t dim = args.index(at + 4, "dim");
  const float eps = float(args.number(at + 5, "eps"));
  if (dim == 0) args.rangeError("dim must be positive");
  const size_t total = checkedMul(args, n, dim, "n * dim");
  args.requireLength(x, total, "x");
  if (addFirst) args.requireLength(y, total, "y");
  args.requireLength(out, total, "out");
  args.requireLength(weight, dim, "weight");
  forRanges(n, std::max<size_t>(1, kElementGrain / dim), [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; r++) {
      float* xr = x.data + r * dim;
      if (addFirst)
        for (size_t i = 0; i < dim; i++) xr[i] += y.data[r * dim + i];
      normalizeRow(out.data + r * dim, xr, weight.data, dim, eps);
    }
  });
  return info.Env().Undefined();
}

Napi::Value RmsNorm(const Napi::CallbackInfo& info) { return NormRows(info, false); }
Napi::Value AddRmsNorm(const Napi::CallbackInfo& info) { return NormRows(info, true); }

// The cos/sin of the rotation angles of a batch's positions. A forward pass ropes q and k of every layer
// at the same positions (decode: one position, 2 x layers times), so the rows of the last positions are
// kept, for two sets of parameters (models that alternate two rope bases between layers): a TinyLlama
// prefill or decode step pays for the pow/cos/sin once instead of 44 times. Kept rows are reused only for
// the same positions, base, scale, frequency factors and YaRN ramp (compared by value, not address) and
// attention factor.
struct RopeRows {
  double freqScale = 0, freqBase = 0, attnFactor = 0;
  size_t ropeDim = 0;
  std::vector<float> factors;  // empty: no per-pair frequency factors
  std::vector<float> ramp;     // empty: no YaRN blend
  std::vector<int32_t> positions;
  std::vector<float> rows;  // per position: ropeDim / 2 cos values, then ropeDim / 2 sin values
};

// Whether kept per-pair values (empty: none) are `values` (null: none), half of them.
bool sameValues(const std::vector<float>& kept, const float* values, size_t half) {
  if (values == nullptr) return kept.empty();
  return kept.size() == half && std::memcmp(kept.data(), values, half * sizeof(float)) == 0;
}

void keepValues(std::vector<float>& kept, const float* values, size_t half) {
  if (values != nullptr) {
    kept.assign(values, values + half);
  } else {
    kept.clear();
  }
}

// The kept rows are process-wide (an addon loaded by several worker threads shares them): the caller holds
// this lock from the lookup until the pool has read the rows.
std::mutex& ropeRowsMutex() {
  static std::mutex m;
  return m;
}

// Called on the op's calling thread under ropeRowsMutex(), before the rows are read on the pool.
const RopeRows& ropeRows(const int32_t* positions, size_t n, size_t ropeDim, double freqBase, double freqScale, const float* factors,
                         const float* ramp, double attnFactor) {
  static RopeRows kept[2];
  static size_t next = 0;
  const size_t half = ropeDim / 2;
  for (const RopeRows& r : kept) {
    if (r.ropeDim == ropeDim && r.freqBase == freqBase && r.freqScale == freqScale && r.attnFactor == attnFactor &&
        sameValues(r.factors, factors, half) && sameValues(r.ramp, ramp, half) && r.positions.size() == n && std::memcmp(r.positions.data(), positions, n * sizeof(int32_t)) == 0) {
      return r;
    }
  }
  RopeRows& r = kept[next];
  next = (next + 1) % 2;
  r.ropeDim = ropeDim;
  r.freqBase = freqBase;
  r.freqScale = freqScale;
  r.attnFactor = attnFactor;
  keepValues(r.factors, factors, half);
  keepValues(r.ramp, ramp, half);
  r.positions.assign(positions, positions + n);
  r.rows.resize(n * ropeDim);
  // In f32 as llama.cpp computes them, so that both engines rotate by the same angles to the bit: pair i's
  // angle is the position times base^(-2/ropeDim) multiplied in i times, over the pair's factor, times
  // the position scale, blended with the unscaled angle where YaRN's ramp says (one fused multiply-add, as
  // llama.cpp's build contracts it). Computed exactly instead, the angles differ in their last bits, and
  // those bits decide now and then how a later activation rounds to int8, after which the two engines'
  // logits part.
  const float thetaScale = std::pow(float(freqBase), -2.0f / float(ropeDim));
  for (size_t t = 0; t < n; t++) {
    float theta = float(positions[t]);
    float* cosv = r.rows.data() + t * ropeDim;
    float* sinv = cosv + half;
    for (size_t i = 0; i < half; i++) {
      const float ff = factors != nullptr ? factors[i] : 1.0f;
      const float extrapolated = theta / ff, interpolated = float(freqScale) * extrapolated;
      const float mix = ramp != nullptr ? ramp[i] : 0.0f;
      const float angle = mix == 0.0f ? interpolated : std::fma(interpolated, 1.0f - mix, extrapolated * mix);
      cosv[i] = std::cos(angle) * float(attnFactor);
      sinv[i] = std::sin(angle) * float(attnFactor);
      theta *= thetaScale;
    }
  }
  return r;
}

// Rotates one head's pairs: (v[2i], v[2i + 1]) or, neox, (v[i], v[i + half]). Each result is one fused
// multiply-add, as llama.cpp's build contracts the same expressions, so that the rounding matches too;
// the clones make std::fma one instruction where the CPU has it (avx512_clone.h).
VSERVE_FMA_CLONE
void rotatePairs(float* v, const float* cosv, const float* sinv, size_t half, bool neox) {
  for (size_t i = 0; i < half; i++) {
    float* a = neox ? v + i : v + 2 * i;
    float* b = neox ? v + i + half : v + 2 * i + 1;
    const float x0 = *a, x1 = *b;
    *a = std::fma(x0, cosv[i], -(x1 * sinv[i]));
    *b = std::fma(x0, sinv[i], x1 * cosv[i]);
  }
}

// rope(x, positions, nHeads, headDim, ropeDim, freqBase, freqScale, neox, freqFactors?, attnFactor?, yarnRamp?)
// freqFactors (null or ropeDim/2 positive floats) divide each pair's frequency; attnFactor scales cos and
// sin; yarnRamp (null or ropeDim/2 values in [0, 1]) blends each pair's scaled angle with its unscaled one.
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
  const bool hasFactors = args.given(8) && !info[8].IsNull();
  const double attnFactor = args.given(9) ? args.number(9, "attnFactor") : 1.0;
  if (ropeDim % 2 != 0 || ropeDim > headDim) args.rangeError("ropeDim must be even and at most headDim");
  if (freqBase <= 0) args.rangeError("freqBase must be positive");
  if (!std::isfinite(attnFactor)) args.rangeError("attnFactor must be finite");
  const size_t half = ropeDim / 2;
  const float* factors = nullptr;
  if (hasFactors) {
    const ArrayArg<float> f = args.float32(8, "freqFactors");
    if (f.length != half) {
      args.rangeError("freqFactors has " + std::to_string(f.length) + " elements, needs ropeDim / 2 = " + std::to_string(half));
    }
    for (size_t i = 0; i < half; i++) {
      if (!(f.data[i] > 0) || !std::isfinite(f.data[i])) args.rangeError("freqFactors[" + std::to_string(i) + "] must be a positive number");
    }
    factors = f.data;
  }
  const float* ramp = nullptr;
  if (args.given(10) && !info[10].IsNull()) {
    const ArrayArg<float> f = args.float32(10, "yarnRamp");
    if (f.length != half) args.rangeError("yarnRamp has " + std::to_string(f.length) + " elements, needs ropeDim / 2 = " + std::to_string(half));
    for (size_t i = 0; i < half; i++) {
      if (!(f.data[i] >= 0 && f.data[i] <= 1)) args.rangeError("yarnRamp[" + std::to_string(i) + "] must be in [0, 1]");
    }
    ramp = f.data;
  }
  const size_t n = positions.length;
  const size_t rowLen = checkedMul(args, nHeads, headDim, "nHeads * headDim");
  args.requireLength(x, checkedMul(args, n, rowLen, "x size"), "x");
  for (size_t t = 0; t < n; t++) {
    if (positions.data[t] < 0) args.rangeError("positions[" + std::to_string(t) + "] is negative");
  }
  std::lock_guard<std::mutex> lock(ropeRowsMutex());
  const RopeRows& angles = ropeRows(positions.data, n, ropeDim, freqBase, freqScale, factors, ramp, attnFactor);
  forRanges(n, std::max<size_t>(1, kElementGrain / std::max<size_t>(1, rowLen)), [&](size_t t0, size_t t1) {
    for (size_t t = t0; t < t1; t++) {
      const float* cosv = angles.rows.data() + t * ropeDim;
      const float* sinv = cosv + half;
      for (size_t h = 0; h < nHeads; h++) rotatePairs(x.data + t * rowLen + h * headDim, cosv, sinv, half, neox);
    }
  });
  return info.Env().Undefined();
}

void swigluRange(float* out, const float* gate, const float* up, size_t len) { kernels().swiglu(out, gate, up, len); }

// swiglu / geglu(out, gate, up, len): out = activation(gate) * up, element by element. out may alias gate.
Napi::Value GatedActivation(const Napi::CallbackInfo& info, const char* name,
                            void (*range)(float*, const float*, const float*, size_t)) {
  Args args(info, name);
  const ArrayArg<float> out = args.float32(0, "out");
  const ArrayArg<float> gate = args.float32(1, "gate");
  const ArrayArg<float> up = args.float32(2, "up");
  const size_t len = args.index(3, "len");
  args.requireLength(out, len, "out");
  args.requireLength(gate, len, "gate");
  args.requireLength(up, len, "up");
  forRanges(len, kElementGrain, [&](size_t i0, size_t i1) { range(out.data + i0, gate.data + i0, up.data + i0, i1 - i0); });
  return info.Env().Undefined();
}

Napi::Value SwiGLU(const Napi::CallbackInfo& info) { return GatedActivation(info, "swiglu", swigluRange); }

// GELU (gelu.h: as llama.cpp evaluates it) times up, by the kernel set's loop.
void gegluRange(float* out, const float* gate, const float* up, size_t len) { kernels().geglu(geluTable(), out, gate, up, len); }

Napi::Value GeGLU(const Napi::CallbackInfo& info) { return GatedActivation(info, "geglu", gegluRange); }

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

// softmax(out, x, n, len): each of n rows of len values, as llama.cpp's CPU soft_max computes it (the
// expert routers of mixture-of-experts models): exp(x - max) per value, the exps summed in f64, each exp
// times the f32 reciprocal of the sum. The kernel set may take whole 16-value runs by llama.cpp's vector
// exp (KernelSet::softmaxRowInLlamaCppOrder); the rest use expf, as llama.cpp's scalar tail does. out may
// alias x.
void softmaxRow(float* out, const float* x, size_t len) {
  if (const auto row = kernels().softmaxRowInLlamaCppOrder) return row(out, x, len);
  float max = -INFINITY;
  for (size_t i = 0; i < len; i++) max = std::max(max, x[i]);
  double sum = 0;
  for (size_t i = 0; i < len; i++) sum += double(out[i] = std::exp(x[i] - max));
  const float inv = float(1.0 / sum);
  for (size_t i = 0; i < len; i++) out[i] *= inv;
}

Napi::Value Softmax(const Napi::CallbackInfo& info) {
  Args args(info, "softmax");
  const ArrayArg<float> out = args.float32(0, "out");
  const ArrayArg<float> x = args.float32(1, "x");
  const size_t n = args.index(2, "n");
  const size_t len = args.index(3, "len");
  if (len == 0) args.rangeError("len must be positive");
  const size_t total = checkedMul(args, n, len, "n * len");
  args.requireLength(out, total, "out");
  args.requireLength(x, total, "x");
  for (size_t r = 0; r < n; r++) softmaxRow(out.data + r * len, x.data + r * len, len);
  return info.Env().Undefined();
}

}  // namespace

void InitElementwise(Napi::Env env, Napi::Object exports) {
  exports.Set("rmsnorm", Napi::Function::New(env, RmsNorm, "rmsnorm"));
  exports.Set("addRmsnorm", Napi::Function::New(env, AddRmsNorm, "addRmsnorm"));
  exports.Set("rope", Napi::Function::New(env, Rope, "rope"));
  exports.Set("swiglu", Napi::Function::New(env, SwiGLU, "swiglu"));
  exports.Set("geglu", Napi::Function::New(env, GeGLU, "geglu"));
  exports.Set("softmax", Napi::Function::New(env, Softmax, "softmax"));
  exports.Set("add", Napi::Function::New(env, Add, "add"));
  exports.Set("addBias", Napi::Function::New(env, AddBias, "addBias"));
}

}  // namespace vserve
