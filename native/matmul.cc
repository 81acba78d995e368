// matmul(out, x, n, weight): out[n, rows] = x[n, cols] . W^T for every weight type. Splits weight
// rows into tasks for the pool; int8 paths quantize the activations once per call, the K-quant path
// dequantizes a few weight rows at a time into a per-thread buffer and runs the f32 kernel on them.
#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "cpu_features.h"
#include "dequantize.h"
#include "ggml_types.h"
#include "js_args.h"
#include "modules.h"
#include "packed_weights.h"
#include "thread_pool.h"
#include "weight_tensor.h"

namespace vserve {
namespace {

// Rows per task: several tasks per thread for balance, a multiple of the kernels' 4-row groups.
size_t rowsPerTask(size_t rows, size_t n, int threads) {
  const size_t perThread = n <= 4 ? 8 : 4;
  size_t chunk = rows / (size_t(threads) * perThread);
  chunk = std::max<size_t>(4, (chunk + 3) & ~size_t(3));
  return std::min<size_t>(chunk, n <= 4 ? 1024 : 64);
}

// Below this many multiply-adds a matmul runs on the calling thread: waking workers costs more.
constexpr size_t kMinParallelWork = size_t(1) << 17;

template <class Fn>
void forRowChunks(size_t rows, size_t n, size_t cols, Fn&& fn) {
  if (rows * n * cols < kMinParallelWork) return fn(size_t(0), rows);
  ThreadPool& p = pool();
  const size_t chunk = rowsPerTask(rows, n, p.threads());
  const size_t tasks = (rows + chunk - 1) / chunk;
  p.parallelFor(tasks, [&](size_t t) { fn(t * chunk, std::min(rows, (t + 1) * chunk)); });
}

struct QuantScratch {
  std::vector<uint8_t> q;
  std::vector<float> d;
};

QuantizedRows quantizeActivations(const float* x, size_t n, size_t cols) {
  thread_local QuantScratch scratch;
  const size_t blocks = cols / kQKBlock;
  if (scratch.q.size() < n * cols) scratch.q.resize(n * cols);
  if (scratch.d.size() < n * blocks) scratch.d.resize(n * blocks);
  const KernelSet& k = kernels();
  uint8_t* q = scratch.q.data();
  float* d = scratch.d.data();
  const size_t rowsPerTask = std::max<size_t>(1, 65536 / cols);
  pool().parallelFor((n + rowsPerTask - 1) / rowsPerTask, [&](size_t t) {
    const size_t r0 = t * rowsPerTask, r1 = std::min(n, r0 + rowsPerTask);
    k.quantizeRows(x + r0 * cols, r1 - r0, cols, q + r0 * cols, d + r0 * blocks);
  });
  return {q, d, n, cols};
}

// The signed form of quantized activations for the packed kernels, with each block's bias term.
SignedRows signedActivations(const QuantizedRows& xq, int bias) {
  thread_local std::vector<int8_t> q;
  thread_local std::vector<int32_t> sums;
  const size_t blocks = xq.cols / kQKBlock;
  if (q.size() < xq.rows * xq.cols) q.resize(xq.rows * xq.cols);
  if (sums.size() < xq.rows * blocks) sums.resize(xq.rows * blocks);
  for (size_t b = 0; b < xq.rows * blocks; b++) {
    int32_t sum = 0;
    for (size_t i = b * kQKBlock; i < (b + 1) * kQKBlock; i++) {
      q[i] = int8_t(xq.q[i] ^ 0x80);
      sum += q[i];
    }
    sums[b] = bias * sum;
  }
  return {q.data(), xq.d, sums.data(), xq.rows, xq.cols};
}

// Q8_0 / Q4_0 through the packed kernels: whole 16-row groups from the packed copy (tasks of whole
// groups), the rows after the last group with the ordinary kernel. False when there is no packed form.
bool packedMatmul(const QuantizedRows& xq, const WeightRef& w, float* out) {
  const KernelSet& k = kernels();
  const auto kernel = w.type == kQ8_0 ? k.matmulQ8_0Packed : k.matmulQ4_0Packed;
  // VSERVE_NO_PACK=1 keeps the file layout (A/B benchmarks of the packed kernels).
  static const bool disabled = std::getenv("VSERVE_NO_PACK") != nullptr;
  if (kernel == nullptr || w.packed == nullptr || disabled) return false;
  const uint8_t* packed = w.packed->get(w.type, w.data, w.rows, w.cols, w.rowBytes, w.fileBacked);
  if (packed == nullptr) return false;
  const SignedRows xs = signedActivations(xq, packedBias(w.type));
  const size_t groups = w.rows / kPackRows;
  const auto tail = w.type == kQ8_0 ? k.matmulQ8_0 : k.matmulQ4_0;
  ThreadPool& p = pool();
  // Groups per task: about 8 tasks per thread for balance (fewer rows per task for big batches).
  const size_t perTask = std::max<size_t>(1, std::min<size_t>(groups / (size_t(p.threads()) * 8), xq.rows <= 4 ? 64 : 4));
  const size_t tasks = (groups + perTask - 1) / perTask;
  const bool hasTail = groups * kPackRows < w.rows;
  p.parallelFor(tasks + (hasTail ? 1 : 0), [&](size_t t) {
    if (t == tasks) return tail(xq, w.data, MatmulRange{groups * kPackRows, w.rows, out, w.rows});
    const size_t g0 = t * perTask, g1 = std::min(groups, g0 + perTask);
    kernel(xs, packed, MatmulRange{g0 * kPackRows, g1 * kPackRows, out, w.rows});
  });
  return true;
}

void dequantizedMatmul(const FloatRows& x, const WeightRef& w, float* out) {
  const KernelSet& k = kernels();
  constexpr size_t kRowsPerPass = 8;
  forRowChunks(w.rows, x.rows, w.cols, [&](size_t r0, size_t r1) {
    thread_local std::vector<float> rowsF32;
    if (rowsF32.size() < kRowsPerPass * w.cols) rowsF32.resize(kRowsPerPass * w.cols);
    for (size_t r = r0; r < r1; r += kRowsPerPass) {
      const size_t count = std::min(kRowsPerPass, r1 - r);
      for (size_t j = 0; j < count; j++) dequantizeRow(w.type, w.data + (r + j) * w.rowBytes, &rowsF32[j * w.cols], w.cols);
      k.matmulF32(x, rowsF32.data(), MatmulRange{0, count, out + r, w.rows});
    }
  });
}

Napi::Value Matmul(const Napi::CallbackInfo& info) {
  Args args(info, "matmul");
  const ArrayArg<float> out = args.float32(0, "out");
  const ArrayArg<float> x = args.float32(1, "x");
  const size_t n = args.index(2, "n", size_t(1) << 31);
  const WeightRef w = weightArg(args, 3, "weight");
  args.requireLength(x, checkedMul(args, n, w.cols, "x size"), "x");
  args.requireLength(out, checkedMul(args, n, w.rows, "out size"), "out");
  if (n == 0) return info.Env().Undefined();
  args.requireDisjoint(out, n * w.rows, x, n * w.cols, "out and x");

  const KernelSet& k = kernels();
  const FloatRows xf{x.data, n, w.cols};
  switch (w.type) {
    case kQ8_0:
    case kQ4_0: {
      const QuantizedRows xq = quantizeActivations(x.data, n, w.cols);
      if (packedMatmul(xq, w, out.data)) break;
      const auto kernel = w.type == kQ8_0 ? k.matmulQ8_0 : k.matmulQ4_0;
      forRowChunks(w.rows, n, w.cols, [&](size_t r0, size_t r1) { kernel(xq, w.data, MatmulRange{r0, r1, out.data, w.rows}); });
      break;
    }
    case kF32:
      forRowChunks(w.rows, n, w.cols, [&](size_t r0, size_t r1) {
        k.matmulF32(xf, reinterpret_cast<const float*>(w.data), MatmulRange{r0, r1, out.data, w.rows});
      });
      break;
    case kF16:
    case kBF16: {
      const auto kernel = w.type == kF16 ? k.matmulF16 : k.matmulBF16;
      forRowChunks(w.rows, n, w.cols, [&](size_t r0, size_t r1) {
        kernel(xf, reinterpret_cast<const uint16_t*>(w.data), MatmulRange{r0, r1, out.data, w.rows});
      });
      break;
    }
    default:
      dequantizedMatmul(xf, w, out.data);
      break;
  }
  return info.Env().Undefined();
}

}  // namespace

void InitMatmul(Napi::Env env, Napi::Object exports) { exports.Set("matmul", Napi::Function::New(env, Matmul, "matmul")); }

}  // namespace vserve
