// Whole-vocabulary passes of the sampler (src/engine/sampling-kernels.ts): at a 150K-token vocabulary a
// JavaScript loop with Math.exp per logit costs a noticeable part of a decode step; these loops
// vectorize. Only the passes over every logit live here; the sampler's decisions stay in TypeScript.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <numeric>
#include <queue>
#include <vector>

#include "avx512_clone.h"
#include "cpu_features.h"
#include "fast_exp.h"
#include "kernel_set.h"
#include "js_args.h"
#include "modules.h"

namespace vserve {
namespace {

// Sixteen floats (ints) as one GCC/Clang vector: the whole-vocabulary scans below compile to the
// baseline ISA's vector compares (SSE or NEON registers; one AVX-512 register in the clones), where
// per-lane scalar loops stayed scalar.
typedef float Floats16 __attribute__((vector_size(64)));
typedef int32_t Ints16 __attribute__((vector_size(64)));
constexpr size_t kLanes = 16;

// NaN values are skipped, as std::max skips them when they come second.
VSERVE_AVX512_CLONE
float maxOf(const float* x, size_t n) {
  Floats16 lanes = Floats16{} - INFINITY;
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    Floats16 v;
    std::memcpy(&v, x + i, sizeof v);
    lanes = v > lanes ? v : lanes;
  }
  float m = -INFINITY;
  for (size_t j = 0; j < kLanes; j++) m = std::max(m, lanes[j]);
  for (; i < n; i++) m = std::max(m, x[i]);
  return m;
}

// Whether any value is NaN (expApprox clamps NaN to a finite value, so the sum alone would hide it).
VSERVE_AVX512_CLONE
bool anyNaN(const float* x, size_t n) {
  Ints16 lanes = {};
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    Floats16 v;
    std::memcpy(&v, x + i, sizeof v);
    lanes |= v != v;
  }
  int any = 0;
  for (size_t j = 0; j < kLanes; j++) any |= lanes[j];
  for (; i < n; i++) any |= x[i] != x[i];
  return any != 0;
}

// The index of the first x[i] == value (n when there is none). Runs of kRun values are tested as a
// whole with vector compares; the lanes are looked at one by one only once per run.
VSERVE_AVX512_CLONE
size_t firstEqual(const float* x, size_t n, float value) {
  constexpr size_t kRun = 16 * kLanes;
  size_t i = 0;
  for (; i + kRun <= n; i += kRun) {
    Ints16 hits = {};
    for (size_t j = 0; j < kRun; j += kLanes) {
      Floats16 v;
      std::memcpy(&v, x + i + j, sizeof v);
      hits |= v == value;
    }
    int any = 0;
    for (size_t j = 0; j < kLanes; j++) any |= hits[j];
    if (any) break;
  }
  while (i < n && !(x[i] == value)) i++;
  return i;
}

// A chunk of the vocabulary small enough to stay in L1 while several vector loops go over it: each
// whole-vocabulary pass below then reads the logits from memory once. (Rows of a 150K vocabulary come
// from L3 or memory after a decode step, and reading them again costs more than the arithmetic.)
constexpr size_t kChunk = 2048;

struct Stats {
  float max = -INFINITY;
  size_t argmax = 0;
  double logSumExp = -INFINITY;
  bool nan = false;
};

// max, first index of the max, log(sum(exp(x))) and whether any value is NaN, in one read of x: per
// chunk its max, and the running sum of exps rescaled whenever the max rises.
Stats logitStats(const float* x, size_t n) {
  float e[kChunk];
  const KernelSet& k = kernels();
  Stats s;
  double sum = 0;
  for (size_t p = 0; p < n; p += kChunk) {
    const size_t count = std::min(kChunk, n - p);
    const float* v = x + p;
    s.nan = s.nan || anyNaN(v, count);
    const float chunkMax = maxOf(v, count);
    if (chunkMax > s.max) {
      s.argmax = p + firstEqual(v, count, chunkMax);
      if (std::isfinite(s.max)) sum *= std::exp(double(s.max) - double(chunkMax));
      s.max = chunkMax;
    }
    if (std::isfinite(s.max)) sum += k.expWeights(v, count, s.max, 1.0f, -INFINITY, e);
  }
  s.logSumExp = std::isfinite(s.max) ? double(s.max) + std::log(sum) : double(s.max);
  return s;
}

// logitStats(logits, out: Float64Array(3)): out = [max, index of the first max, log(sum(exp(logits)))];
// the log-sum-exp is NaN when a logit is NaN and +Inf when one is +Inf.
Napi::Value LogitStats(const Napi::CallbackInfo& info) {
  Args args(info, "logitStats");
  const ArrayArg<float> x = args.float32(0, "logits");
  if (x.length == 0) args.rangeError("logits is empty");
  if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
    args.typeError("out must be a Float64Array");
  }
  Napi::Float64Array out = info[1].As<Napi::Float64Array>();
  if (out.ElementLength() < 3) args.rangeError("out needs 3 elements");
  const Stats s = logitStats(x.data, x.length);
  out[0] = s.max;
  out[1] = double(s.argmax);
  out[2] = s.nan ? NAN : s.logSumExp;
  return info.Env().Undefined();
}

// topIndices(values, count, out: Int32Array): the indices of the `count` largest values, largest first
// (ties: lower index first); returns how many were written (count, or the vocabulary if smaller).
Napi::Value TopIndices(const Napi::CallbackInfo& info) {
  Args args(info, "topIndices");
  const ArrayArg<float> x = args.float32(0, "values");
  const size_t count = std::min(args.index(1, "count"), x.length);
  const ArrayArg<int32_t> out = args.int32(2, "out");
  args.requireLength(out, count, "out");
  if (x.length > size_t(INT32_MAX)) args.rangeError("values is too long");
  const float* v = x.data;
  const auto better = [v](int32_t a, int32_t b) { return v[a] > v[b] || (v[a] == v[b] && a < b); };
  if (count == 0) return Napi::Number::New(info.Env(), 0);
  if (count <= 256) {
    // A heap of the best so far with its worst on top: most values lose to the worst at one compare.
    std::priority_queue<int32_t, std::vector<int32_t>, decltype(better)> heap(better);
    const auto offer = [&](int32_t i) {
      if (heap.size() < count) heap.push(i);
      else if (better(i, heap.top())) {
        heap.pop();
        heap.push(i);
      }
    };
    // On a large vocabulary, first each run of kRun values' max (a vectorized pass). The count-th largest
    // run max is at most the count-th largest value (count runs each hold a value that large), so every
    // answer lies in a run whose max reaches it, and only those runs go through the heap. With a NaN the
    // maxes would skip it where the heap does not, so that case scans everything.
    constexpr size_t kRun = 64;
    const size_t runs = x.length / kRun;
    if (runs >= 8 * count && !anyNaN(v, x.length)) {
      std::vector<float> runMax(runs);
      for (size_t r = 0; r < runs; r++) runMax[r] = maxOf(v + r * kRun, kRun);
      std::vector<float> ranked(runMax);
      std::nth_element(ranked.begin(), ranked.begin() + (count - 1), ranked.end(), std::greater<float>());
      const float bound = ranked[count - 1];
      for (size_t r = 0; r < runs; r++) {
        if (runMax[r] >= bound)
          for (size_t i = r * kRun; i < (r + 1) * kRun; i++) offer(int32_t(i));
      }
      for (size_t i = runs * kRun; i < x.length; i++) offer(int32_t(i));
    } else {
      for (int32_t i = 0; i < int32_t(x.length); i++) offer(i);
    }
    for (size_t k = count; k-- > 0;) {
      out.data[k] = heap.top();
      heap.pop();
    }
  } else {
    std::vector<int32_t> idx(x.length);
    std::iota(idx.begin(), idx.end(), 0);
    std::nth_element(idx.begin(), idx.begin() + (count - 1), idx.end(), better);
    std::sort(idx.begin(), idx.begin() + count, better);
    std::copy(idx.begin(), idx.begin() + count, out.data);
  }
  return Napi::Number::New(info.Env(), double(count));
}

// The passes below take the weights a chunk at a time into a buffer on the stack, through the kernel
// set's vector exp; a loop that branched per logit around a scalar exp cost several times more.

bool drawable(float v, float floor) { return v > -INFINITY && v >= floor; }

// The smallest finite value (-Inf when there is none: then no floor excludes anything).
float lowestFinite(const float* x, size_t n) {
  float lowest = INFINITY;
  for (size_t i = 0; i < n; i++)
    if (x[i] > -INFINITY && x[i] < lowest) lowest = x[i];
  return lowest == INFINITY ? -INFINITY : lowest;
}

// bins[i] = (top - x[i]) * perBin, kept within [0, lastBin] (-Inf lands in lastBin).
VSERVE_AVX512_CLONE
void binsBelow(const float* x, size_t n, float top, float perBin, float lastBin, uint16_t* bins) {
  for (size_t i = 0; i < n; i++) bins[i] = uint16_t(std::max(0.0f, std::min(lastBin, (top - x[i]) * perBin)));
}

// nucleusFloor(values, logSumExp, p): the smallest value t such that the values >= t hold at least p of
// softmax(values)'s mass (top-p's nucleus, tokens tied at t all kept). One pass puts each value's
// probability into a histogram of value bins below the log-sum-exp (which is at most log(vocabulary)
// above the max); the bin where the running mass reaches p is then sorted on its own, so no pass sorts
// the vocabulary.
Napi::Value NucleusFloor(const Napi::CallbackInfo& info) {
  Args args(info, "nucleusFloor");
  const ArrayArg<float> x = args.float32(0, "values");
  const double lse = args.number(1, "logSumExp");
  const double p = args.number(2, "p");
  if (x.length == 0) args.rangeError("values is empty");
  if (!std::isfinite(lse)) args.rangeError("logSumExp must be finite");
  if (!(p > 0 && p <= 1)) args.rangeError("p must be in (0, 1]");
  // Values further than kSpan below the log-sum-exp weigh under e^-kSpan each: all of them in the last
  // bin. (The weights are shifted by the log-sum-exp, which is at least the max, so none overflows.)
  constexpr int kBins = 4096;
  constexpr float kSpan = 40.0f;
  const float perBin = kBins / kSpan;
  const float shift = float(lse);
  // Kept per thread: a sample per token would otherwise allocate a vocabulary-sized array each time.
  thread_local std::vector<double> mass;
  thread_local std::vector<uint16_t> bins;
  thread_local std::vector<float> edge;
  mass.assign(kBins + 1, 0.0);
  bins.resize(x.length);
  edge.clear();
  float e[kChunk];
  const KernelSet& k = kernels();
  for (size_t at = 0; at < x.length; at += kChunk) {
    const size_t count = std::min(kChunk, x.length - at);
    const float* v = x.data + at;
    uint16_t* b = bins.data() + at;
    k.expWeights(v, count, shift, 1.0f, -INFINITY, e);
    binsBelow(v, count, shift, perBin, float(kBins), b);
    for (size_t i = 0; i < count; i++) mass[b[i]] += e[i];
  }
  double run = 0;
  int bin = 0;
  for (; bin < kBins; bin++) {
    if (run + mass[size_t(bin)] >= p) break;
    run += mass[size_t(bin)];
  }
  // The edge bin's values, found sixteen bins at a time (few blocks hold one).
  const uint16_t wanted = uint16_t(bin);
  for (size_t at = 0; at < x.length; at += kLanes) {
    const size_t count = std::min(kLanes, x.length - at);
    int any = 0;
    for (size_t i = 0; i < count; i++) any |= bins[at + i] == wanted;
    if (!any) continue;
    for (size_t i = 0; i < count; i++)
      if (bins[at + i] == wanted && x.data[at + i] > -INFINITY) edge.push_back(x.data[at + i]);
  }
  std::sort(edge.begin(), edge.end(), std::greater<float>());
  // Rounding can leave the total a hair below p (p = 1 especially): then every value is in.
  float floor = edge.empty() ? lowestFinite(x.data, x.length) : edge.back();
  for (const float v : edge) {
    run += expApprox(v - shift);
    if (run >= p) {
      floor = v;
      break;
    }
  }
  return Napi::Number::New(info.Env(), double(floor));
}

// drawTempered(values, invTemperature, r, floor?, max?): a token drawn from softmax(values * invTemperature)
// over the values >= floor (default: all), with the uniform r in [0, 1): the first such index whose
// running weight passes r times their total. One pass sums the weights; the second adds whole chunks
// until the one where the running weight passes (from the first pass's chunk totals), and only that
// chunk is walked token by token. `max`, when the caller knows the values' max, saves a pass finding it.
Napi::Value DrawTempered(const Napi::CallbackInfo& info) {
  Args args(info, "drawTempered");
  const ArrayArg<float> x = args.float32(0, "values");
  const double invT = args.number(1, "invTemperature");
  const double r = args.number(2, "r");
  const float floor = args.given(3) ? float(args.number(3, "floor")) : -INFINITY;
  if (x.length == 0) args.rangeError("values is empty");
  if (!(invT > 0) || !std::isfinite(invT)) args.rangeError("invTemperature must be a positive number");
  if (!(r >= 0 && r < 1)) args.rangeError("r must be in [0, 1)");
  const float max = args.given(4) ? float(args.number(4, "max")) : maxOf(x.data, x.length);
  if (!std::isfinite(max)) args.rangeError("values has no finite maximum");
  const float scale = float(invT);
  float e[kChunk];
  const KernelSet& k = kernels();
  // Kept per thread, as nucleusFloor's arrays are.
  thread_local std::vector<double> chunkTotals;
  chunkTotals.clear();
  double total = 0;
  for (size_t at = 0; at < x.length; at += kChunk) {
    chunkTotals.push_back(k.expWeights(x.data + at, std::min(kChunk, x.length - at), max, scale, floor, e));
    total += chunkTotals.back();
  }
  const double target = r * total;
  // Whole chunks up to the one where the running weight passes the target; only from there are the
  // weights computed again, token by token.
  double run = 0;
  size_t first = 0;
  while (first + 1 < chunkTotals.size() && run + chunkTotals[first] <= target) run += chunkTotals[first++];
  for (size_t at = first * kChunk; at < x.length; at += kChunk) {
    const size_t count = std::min(kChunk, x.length - at);
    const float* v = x.data + at;
    k.expWeights(v, count, max, scale, floor, e);
    for (size_t i = 0; i < count; i++) {
      if (!drawable(v[i], floor)) continue;
      run += e[i];
      if (run > target) return Napi::Number::New(info.Env(), double(at + i));
    }
  }
  // Rounding left the total a hair above the run: the last drawable token.
  size_t end = x.length;
  while (end > 0 && !drawable(x.data[end - 1], floor)) end--;
  return Napi::Number::New(info.Env(), double(end > 0 ? end - 1 : 0));
}

}  // namespace

void InitSampling(Napi::Env env, Napi::Object exports) {
  exports.Set("logitStats", Napi::Function::New(env, LogitStats, "logitStats"));
  exports.Set("topIndices", Napi::Function::New(env, TopIndices, "topIndices"));
  exports.Set("drawTempered", Napi::Function::New(env, DrawTempered, "drawTempered"));
  exports.Set("nucleusFloor", Napi::Function::New(env, NucleusFloor, "nucleusFloor"));
}

}  // namespace vserve
