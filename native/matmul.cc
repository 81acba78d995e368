// matmul(out, x, n, weight): out[n, rows] = x[n, cols] . W^T for every weight type; matmulMany does
// several weights sharing x. Splits weight rows into tasks for the pool; int8 paths (Q8_0, Q4_0, Q4_1,
// Q5_0, Q5_1, IQ4_NL, and the 256-value super-block types Q2_K-Q6_K and IQ4_XS where the kernel set has
// kernels for them) quantize the activations once per call; other super-block cases dequantize a few
// weight rows at a time into a per-thread buffer and run the f32 kernel. Where the kernel set has bf16
// tiles (KernelSet::bf16), packed weights of any of those types take them from BF16Kernels::from rows on,
// with the activations laid out as bf16 tiles once per call instead.
#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "cpu_features.h"
#include "dequantize.h"
#include "ggml_types.h"
#include "half_rounding.h"
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

// The most weights one matmulMany call takes.
constexpr size_t kMaxMany = 8;

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

// Runs fn(r0, r1) over activation rows [0, n) in tasks of about 64K values, on the pool: the passes that
// prepare a matmul's activations are as long as a small matmul on a prefill batch.
template <class Fn>
void forActivationRows(size_t n, size_t cols, Fn&& fn) {
  const size_t rowsPerTask = std::max<size_t>(1, 65536 / cols);
  pool().parallelFor((n + rowsPerTask - 1) / rowsPerTask, [&](size_t t) { fn(t * rowsPerTask, std::min(n, (t + 1) * rowsPerTask)); });
}

// The quantized activations of the op in progress. One process-wide copy, held under a lock for the
// whole op (ops already run one at a time on the shared pool): a thread_local in a dlopen'ed addon goes
// through __tls_get_addr, which measured ~1% of a decode step at three lookups per matmul.
struct ActivationScratch {
  std::mutex mutex;
  std::vector<uint8_t> q;
  std::vector<float> d;
  std::vector<float> blockSums;  // QuantizedRows::s
  std::vector<int8_t> signedQ;
  std::vector<int32_t> sums;
  std::vector<float> scaledSums;  // KQuantRows::s
  std::vector<int16_t> superBlockSums;  // KQuantRows::blockSums
  std::vector<int16_t> halfBlockSums;   // KQuantRows::halfBlockSums
  std::vector<uint16_t> bf16Tiles;  // BF16Tiles::tiles
  std::vector<float> halfRounded;   // f16 weights' activations, rounded to f16
  uint64_t generation = 0;        // the last SignedRows / KQuantRows::generation handed out
};

ActivationScratch& activationScratch() {
  static ActivationScratch scratch;
  return scratch;
}

QuantizedRows quantizeActivations(ActivationScratch& scratch, const float* x, size_t n, size_t cols) {
  const size_t blocks = cols / kQKBlock;
  if (scratch.q.size() < n * cols) scratch.q.resize(n * cols);
  if (scratch.d.size() < n * blocks) scratch.d.resize(n * blocks);
  if (scratch.blockSums.size() < n * blocks) scratch.blockSums.resize(n * blocks);
  const KernelSet& k = kernels();
  uint8_t* q = scratch.q.data();
  float* d = scratch.d.data();
  float* s = scratch.blockSums.data();
  forActivationRows(n, cols, [&](size_t r0, size_t r1) { k.quantizeRows(x + r0 * cols, r1 - r0, cols, q + r0 * cols, d + r0 * blocks, s + r0 * blocks); });
  return {q, d, s, n, cols};
}

// Activations for the 256-value super-block kernels (KQuantRows: llama.cpp's Q8_K), with each 16
// values' sum times their scale computed in the same pass.
KQuantRows kquantActivations(ActivationScratch& scratch, const float* x, size_t n, size_t cols) {
  const size_t blocks = cols / kQKBlock, groups = cols / 16;
  if (scratch.q.size() < n * cols) scratch.q.resize(n * cols);
  if (scratch.d.size() < n * blocks) scratch.d.resize(n * blocks);
  if (scratch.scaledSums.size() < n * groups) scratch.scaledSums.resize(n * groups);
  const KernelSet& k = kernels();
  int8_t* q = reinterpret_cast<int8_t*>(scratch.q.data());
  float* d = scratch.d.data();
  if (scratch.superBlockSums.size() < n * blocks) scratch.superBlockSums.resize(n * blocks);
  float* s = scratch.scaledSums.data();
  if (scratch.halfBlockSums.size() < n * groups) scratch.halfBlockSums.resize(n * groups);
  int16_t* sums = scratch.superBlockSums.data();
  int16_t* halfSums = scratch.halfBlockSums.data();
  forActivationRows(n, cols, [&](size_t r0, size_t r1) {
    k.quantizeSuperRows(x + r0 * cols, r1 - r0, cols, q + r0 * cols, d + r0 * blocks, s + r0 * groups);
    // Integer sums from the rows just written (still in cache), per 16 values and per 32.
    for (size_t g = r0 * groups; g < r1 * groups; g++) {
      int32_t sum = 0;
      for (size_t i = 0; i < 16; i++) sum += q[g * 16 + i];
      halfSums[g] = int16_t(sum);
    }
    for (size_t b = r0 * blocks; b < r1 * blocks; b++) sums[b] = int16_t(halfSums[2 * b] + halfSums[2 * b + 1]);
  });
  return {q, d, s, n, cols, ++scratch.generation, sums, halfSums};
}

// The K-quant integer kernel for a weight, or nullptr (other type, or none in this kernel set).
using KQuantKernel = void (*)(const KQuantRows&, const uint8_t*, const MatmulRange&);

// The Q2_K / Q3_K / Q5_K / IQ4_XS kernel of a kernel set, or nullptr.
KQuantKernel superBlockKernel(const KernelSet& k, int type) {
  if (k.superBlocks == nullptr) return nullptr;
  switch (type) {
    case kQ2_K: return k.superBlocks->matmulQ2_K;
    case kQ3_K: return k.superBlocks->matmulQ3_K;
    case kQ5_K: return k.superBlocks->matmulQ5_K;
    case kIQ4_XS: return k.superBlocks->matmulIQ4_XS;
    default: return nullptr;
  }
}

KQuantKernel kquantKernel(int type) {
  // VSERVE_KQUANT_DEQUANT=1 keeps the dequantize + f32 path (A/B benchmarks of the K-quant kernels).
  static const bool disabled = std::getenv("VSERVE_KQUANT_DEQUANT") != nullptr;
  if (disabled) return nullptr;
  const KernelSet& k = kernels();
  if (type == kQ4_K) return k.matmulQ4_K;
  if (type == kQ6_K) return k.matmulQ6_K;
  return superBlockKernel(k, type);
}

// The Q4_1 / Q5_0 / Q5_1 / IQ4_NL integer kernel for a weight (Block32Kernels), or nullptr (other type, or
// none in this kernel set).
using QuantKernel = void (*)(const QuantizedRows&, const uint8_t*, const MatmulRange&);
QuantKernel block32Kernel(int type) {
  const Block32Kernels* b = kernels().block32;
  if (b == nullptr) return nullptr;
  switch (type) {
    case kQ4_1: return b->matmulQ4_1;
    case kQ5_0: return b->matmulQ5_0;
    case kQ5_1: return b->matmulQ5_1;
    case kIQ4_NL: return b->matmulIQ4_NL;
    default: return nullptr;
  }
}

// The signed form of quantized activations for the packed kernels, with each block's bias term.
SignedRows signedActivations(ActivationScratch& scratch, const QuantizedRows& xq, int bias) {
  std::vector<int8_t>& q = scratch.signedQ;
  std::vector<int32_t>& sums = scratch.sums;
  const size_t blocks = xq.cols / kQKBlock;
  if (q.size() < xq.rows * xq.cols) q.resize(xq.rows * xq.cols);
  if (sums.size() < xq.rows * blocks) sums.resize(xq.rows * blocks);
  int8_t* signedQ = q.data();
  int32_t* bias32 = sums.data();
  forActivationRows(xq.rows, xq.cols, [&](size_t r0, size_t r1) {
    for (size_t b = r0 * blocks; b < r1 * blocks; b++) {
      const uint8_t* in = xq.q + b * kQKBlock;
      int8_t* out = signedQ + b * kQKBlock;
      int32_t sum = 0;
      for (size_t i = 0; i < kQKBlock; i++) {
        out[i] = int8_t(in[i] ^ 0x80);
        sum += out[i];
      }
      bias32[b] = bias * sum;
    }
  });
  return {signedQ, xq.d, bias32, xq.s, xq.rows, xq.cols, ++scratch.generation};
}

// One weight's part of a packed Q8_0 / Q4_0 / Q4_1 / Q5_0 / Q5_1 / IQ4_NL / Q4_K / Q6_K / IQ4_XS matmul: whole 16-row groups from the packed copy (tasks of
// whole groups), the rows after the last group in one extra task with the ordinary kernel.
struct PackedPart {
  const WeightRef* w;
  float* out;
  const uint8_t* packed;
  size_t groups;
  // Tasks [0, bigTasks) take `big` groups each, the rest `small` groups each; one more for tail rows.
  size_t bigTasks, big, small;
  size_t tasks;

  // Groups [g0, g1) of task t (g0 == groups for the tail task).
  void range(size_t t, size_t& g0, size_t& g1) const {
    g0 = t < bigTasks ? t * big : bigTasks * big + (t - bigTasks) * small;
    g0 = std::min(g0, groups);
    g1 = std::min(groups, g0 + (t < bigTasks ? big : small));
  }
};

// The packed kernel of a 32-value block type on signed activations (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL), and the
// row kernel its tail rows take; nullptr where the kernel set has either not.
using SignedPackedKernel = void (*)(const SignedRows&, const uint8_t*, const MatmulRange&);
struct Block32Packed {
  SignedPackedKernel packed = nullptr;
  QuantKernel rows = nullptr;
};
Block32Packed block32Packed(int type) {
  const KernelSet& k = kernels();
  if (type == kQ8_0) return {k.matmulQ8_0Packed, k.matmulQ8_0};
  if (type == kQ4_0) return {k.matmulQ4_0Packed, k.matmulQ4_0};
  const QuantKernel rows = block32Kernel(type);  // nullptr unless k.block32 has this type
  if (rows == nullptr) return {};
  const Block32Kernels* b = k.block32;
  switch (type) {
    case kQ4_1: return {b->matmulQ4_1Packed, rows};
    case kQ5_0: return {b->matmulQ5_0Packed, rows};
    case kQ5_1: return {b->matmulQ5_1Packed, rows};
    default: return {b->matmulIQ4_NLPacked, rows};  // kIQ4_NL, the one other type block32Kernel has
  }
}

// Whether the kernel set has a packed kernel for this type. Q4_K is packed at every batch size: besides
// decode, the packed kernel measured about 2x the row kernel's GFLOP/s at n = 16 and 128 too (it
// splits nibbles once per 16 rows and needs no per-row shuffles or scale permutes). Q6_K likewise: on the
// 32000x2048 output matrix, 1.6x the row kernel at n = 1, 2.8x at n = 4, 1.8x at 16 and 1.7x at 128.
bool hasPackedKernel(int type) {
  const KernelSet& k = kernels();
  switch (type) {
    case kQ4_K: return k.matmulQ4_KPacked != nullptr && kquantKernel(kQ4_K) != nullptr;
    case kQ6_K: return k.matmulQ6_KPacked != nullptr && kquantKernel(kQ6_K) != nullptr;
    case kIQ4_XS: return k.superBlocks != nullptr && k.superBlocks->matmulIQ4_XSPacked != nullptr && kquantKernel(kIQ4_XS) != nullptr;
    case kQ3_K: return k.superBlocks != nullptr && k.superBlocks->matmulQ3_KPacked != nullptr && kquantKernel(kQ3_K) != nullptr;
    case kQ2_K: return k.superBlocks != nullptr && k.superBlocks->matmulQ2_KPacked != nullptr && kquantKernel(kQ2_K) != nullptr;
    case kQ5_K: return k.superBlocks != nullptr && k.superBlocks->matmulQ5_KPacked != nullptr && kquantKernel(kQ5_K) != nullptr;
    default: {
      const Block32Packed b = block32Packed(type);
      return b.packed != nullptr && b.rows != nullptr;
    }
  }
}

// The fewest weight groups in one task on bf16 tiles (planPacked): 14 pairs, of which only the first is
// converted while no tiles run.
constexpr size_t kBF16RunGroups = 28;

// The kernel set's bf16 prefill path for n activation rows of a packed weight type, or nullptr.
const BF16Kernels* bf16Path(int type, size_t n) {
  const BF16Kernels* b = kernels().bf16;
  return b != nullptr && n >= b->from && b->packed(type) != nullptr ? b : nullptr;
}

// False when the weight has no packed form (other type, too few rows, no packed kernel).
bool planPacked(const WeightRef& w, float* out, size_t n, PackedPart& part) {
  // VSERVE_NO_PACK=1 keeps the file layout (A/B benchmarks of the packed kernels).
  static const bool disabled = std::getenv("VSERVE_NO_PACK") != nullptr;
  if (!hasPackedKernel(w.type) || w.packed == nullptr || disabled) return false;
  const uint8_t* packed = w.packed->get(w.type, w.data, w.rows, w.cols, w.rowBytes, w.fileBacked);
  if (packed == nullptr) return false;
  const size_t groups = w.rows / kPackRows;
  const size_t threads = size_t(pool().threads());
  const bool hasTail = groups * kPackRows < w.rows;
  part = PackedPart{&w, out, packed, groups, 0, 0, 1, 0};
  if (n <= 4) {
    // Decode reads memory: each thread first takes one long contiguous run of groups (one stream per
    // thread for the prefetchers; measured 5-15% more bandwidth than 8 interleaved tasks per thread),
    // the last quarter goes in small tasks that even out a thread that started late or was descheduled.
    part.big = groups * 3 / 4 / threads;
    part.bigTasks = part.big > 0 ? threads : 0;
    part.small = std::max<size_t>(1, groups / (threads * 32));
  } else if (kernels().packedLongTasksFrom != 0 && n >= kernels().packedLongTasksFrom) {
    // Three runs per thread still even out a late one. On bf16 tiles a run converts its first group pair
    // before any tile work (later pairs are converted during the tiles), so runs keep a floor of groups.
    const size_t least = bf16Path(w.type, n) != nullptr ? kBF16RunGroups : 1;
    part.small = std::max<size_t>(least, groups / (threads * 3));
  } else {
    part.small = std::max<size_t>(1, std::min<size_t>(groups / (threads * 8), 4));  // compute-bound: balance
  }
  const size_t rest = groups - part.bigTasks * part.big;
  part.tasks = part.bigTasks + (rest + part.small - 1) / part.small + (hasTail ? 1 : 0);
  return true;
}

// out columns [r0, r1) = x . those rows of w, dequantized to f32 a few rows at a time on this thread.
void dequantizedRows(const FloatRows& x, const WeightRef& w, size_t r0, size_t r1, float* out) {
  constexpr size_t kRowsPerPass = 8;
  thread_local std::vector<float> rowsF32;
  if (rowsF32.size() < kRowsPerPass * w.cols) rowsF32.resize(kRowsPerPass * w.cols);
  for (size_t r = r0; r < r1; r += kRowsPerPass) {
    const size_t count = std::min(kRowsPerPass, r1 - r);
    for (size_t j = 0; j < count; j++) dequantizeRow(w.type, w.data + (r + j) * w.rowBytes, &rowsF32[j * w.cols], w.cols);
    kernels().matmulF32(x, rowsF32.data(), MatmulRange{0, count, out + r, w.rows});
  }
}

void dequantizedMatmul(const FloatRows& x, const WeightRef& w, float* out) {
  forRowChunks(w.rows, x.rows, w.cols, [&](size_t r0, size_t r1) { dequantizedRows(x, w, r0, r1, out); });
}

// Runs every task of the parts as one pool job: fn(part, g0, g1) for groups [g0, g1) of a part, or with
// g0 == part.groups for its tail rows past the last group.
template <class Fn>
void forPackedTasks(const PackedPart* parts, size_t count, Fn&& fn) {
  size_t tasks = 0;
  for (size_t i = 0; i < count; i++) tasks += parts[i].tasks;
  pool().parallelFor(tasks, [&](size_t t) {
    const PackedPart* part = parts;
    while (t >= part->tasks) t -= part++->tasks;
    size_t g0, g1;
    part->range(t, g0, g1);
    fn(*part, g0, g1);
  });
}

// The parts (any packed types, all on x) on bf16 tiles; tail rows past the last group are dequantized.
void runPackedBF16(ActivationScratch& scratch, const BF16Kernels& bf16, const float* x, size_t n, const PackedPart* parts, size_t count) {
  const size_t cols = parts[0].w->cols, tiles = (n + 15) / 16, tileValues = cols * 16;
  if (scratch.bf16Tiles.size() < tiles * tileValues) scratch.bf16Tiles.resize(tiles * tileValues);
  uint16_t* t = scratch.bf16Tiles.data();
  pool().parallelFor(tiles, [&](size_t i) { bf16.layout(x, n, cols, i, i + 1, t); });
  const BF16Tiles xt{t, n, cols};
  forPackedTasks(parts, count, [&](const PackedPart& part, size_t g0, size_t g1) {
    const WeightRef& w = *part.w;
    if (g0 == part.groups) return dequantizedRows(FloatRows{x, n, cols}, w, part.groups * kPackRows, w.rows, part.out);
    bf16.packed(w.type)(xt, part.packed, MatmulRange{g0 * kPackRows, g1 * kPackRows, part.out, w.rows});
  });
}

// Runs the parts (one 32-value block type with a packed kernel, block32Packed; all on x) on int8
// activations as one pool job.
void runPacked(ActivationScratch& scratch, const float* x, size_t n, const PackedPart* parts, size_t count) {
  const int type = parts[0].w->type;
  const QuantizedRows xq = quantizeActivations(scratch, x, n, parts[0].w->cols);
  const Block32Packed b = block32Packed(type);
  const SignedRows xs = signedActivations(scratch, xq, packedBias(type));
  forPackedTasks(parts, count, [&](const PackedPart& part, size_t g0, size_t g1) {
    const WeightRef& w = *part.w;
    if (g0 == part.groups) return b.rows(xq, w.data, MatmulRange{part.groups * kPackRows, w.rows, part.out, w.rows});
    b.packed(xs, part.packed, MatmulRange{g0 * kPackRows, g1 * kPackRows, part.out, w.rows});
  });
}

// Task t of a packed K-quant part: groups from the packed copy, or the tail rows with the row kernel.
void runKQuantPackedTask(const KQuantRows& xk, const PackedPart& part, size_t t) {
  const WeightRef& w = *part.w;
  size_t g0, g1;
  part.range(t, g0, g1);
  if (g0 == part.groups) return kquantKernel(w.type)(xk, w.data, MatmulRange{part.groups * kPackRows, w.rows, part.out, w.rows});
  const KernelSet& k = kernels();
  const KQuantKernel kernel = w.type == kQ4_K   ? k.matmulQ4_KPacked
                              : w.type == kQ6_K ? k.matmulQ6_KPacked
                              : w.type == kQ5_K ? k.superBlocks->matmulQ5_KPacked
                              : w.type == kQ3_K ? k.superBlocks->matmulQ3_KPacked
                              : w.type == kQ2_K ? k.superBlocks->matmulQ2_KPacked
                                                : k.superBlocks->matmulIQ4_XSPacked;
  kernel(xk, part.packed, MatmulRange{g0 * kPackRows, g1 * kPackRows, part.out, w.rows});
}

// out = x . w^T for n rows of x (sizes already checked).
void matmulOne(float* out, const float* x, size_t n, const WeightRef& w) {
  const KernelSet& k = kernels();
  const FloatRows xf{x, n, w.cols};
  // Any packed type on bf16 tiles, where the kernel set has them and the batch is long enough.
  if (const BF16Kernels* bf16 = bf16Path(w.type, n)) {
    PackedPart part;
    if (planPacked(w, out, n, part)) {
      ActivationScratch& scratch = activationScratch();
      std::lock_guard<std::mutex> lock(scratch.mutex);
      return runPackedBF16(scratch, *bf16, x, n, &part, 1);
    }
  }
  switch (w.type) {
    case kQ8_0:
    case kQ4_0: {
      ActivationScratch& scratch = activationScratch();
      std::lock_guard<std::mutex> lock(scratch.mutex);
      PackedPart part;
      if (planPacked(w, out, n, part)) return runPacked(scratch, x, n, &part, 1);
      const QuantizedRows xq = quantizeActivations(scratch, x, n, w.cols);
      const auto kernel = w.type == kQ8_0 ? k.matmulQ8_0 : k.matmulQ4_0;
      forRowChunks(w.rows, n, w.cols, [&](size_t r0, size_t r1) { kernel(xq, w.data, MatmulRange{r0, r1, out, w.rows}); });
      break;
    }
    case kQ4_1:
    case kQ5_0:
    case kQ5_1:
    case kIQ4_NL:
      if (const QuantKernel kernel = block32Kernel(w.type)) {
        ActivationScratch& scratch = activationScratch();
        std::lock_guard<std::mutex> lock(scratch.mutex);
        PackedPart part;
        if (planPacked(w, out, n, part)) return runPacked(scratch, x, n, &part, 1);
        const QuantizedRows xq = quantizeActivations(scratch, x, n, w.cols);
        forRowChunks(w.rows, n, w.cols, [&](size_t r0, size_t r1) { kernel(xq, w.data, MatmulRange{r0, r1, out, w.rows}); });
      } else {
        dequantizedMatmul(xf, w, out);
      }
      break;
    case kF32:
      forRowChunks(w.rows, n, w.cols, [&](size_t r0, size_t r1) {
        k.matmulF32(xf, reinterpret_cast<const float*>(w.data), MatmulRange{r0, r1, out, w.rows});
      });
      break;
    case kF16: {
      // llama.cpp converts the activations to f16 before multiplying them by f16 weights; rounding them
      // the same way keeps both engines' sums on the same numbers (their logits were 0.01-0.03 apart).
      ActivationScratch& scratch = activationScratch();
      std::lock_guard<std::mutex> lock(scratch.mutex);
      if (scratch.halfRounded.size() < n * w.cols) scratch.halfRounded.resize(n * w.cols);
      roundToHalfPrecision(x, n * w.cols, scratch.halfRounded.data());
      const FloatRows xh{scratch.halfRounded.data(), n, w.cols};
      forRowChunks(w.rows, n, w.cols, [&](size_t r0, size_t r1) {
        k.matmulF16(xh, reinterpret_cast<const uint16_t*>(w.data), MatmulRange{r0, r1, out, w.rows});
      });
      break;
    }
    case kBF16:
      forRowChunks(w.rows, n, w.cols, [&](size_t r0, size_t r1) {
        k.matmulBF16(xf, reinterpret_cast<const uint16_t*>(w.data), MatmulRange{r0, r1, out, w.rows});
      });
      break;
    case kQ4_K:
    case kQ6_K:
    case kQ2_K:
    case kQ3_K:
    case kQ5_K:
    case kIQ4_XS:
      if (const KQuantKernel kernel = kquantKernel(w.type)) {
        ActivationScratch& scratch = activationScratch();
        std::lock_guard<std::mutex> lock(scratch.mutex);
        const KQuantRows xk = kquantActivations(scratch, x, n, w.cols);
        PackedPart part;
        if (planPacked(w, out, n, part)) {
          pool().parallelFor(part.tasks, [&](size_t t) { runKQuantPackedTask(xk, part, t); });
          break;
        }
        forRowChunks(w.rows, n, w.cols, [&](size_t r0, size_t r1) { kernel(xk, w.data, MatmulRange{r0, r1, out, w.rows}); });
        break;
      }
      [[fallthrough]];
    default:
      dequantizedMatmul(xf, w, out);
      break;
  }
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
  matmulOne(out.data, x.data, n, w);
  return info.Env().Undefined();
}

// K-quant weights (any of the 256-value super-block types may mix) sharing x: one quantization of x and one pool job. Tasks are
// row chunks of each weight; the kernels compute each output the same whatever the chunk, so results
// equal matmul's.
void runKQuantMany(const float* x, size_t n, const ArrayArg<float>* outs, const WeightRef* ws, size_t count) {
  ActivationScratch& scratch = activationScratch();
  std::lock_guard<std::mutex> lock(scratch.mutex);
  const KQuantRows xk = kquantActivations(scratch, x, n, ws[0].cols);
  size_t chunks[kMaxMany], weightTasks[kMaxMany], tasks = 0, work = 0;
  PackedPart parts[kMaxMany];
  bool packed[kMaxMany];
  const int threads = pool().threads();
  for (size_t i = 0; i < count; i++) {
    packed[i] = planPacked(ws[i], outs[i].data, n, parts[i]);
    chunks[i] = rowsPerTask(ws[i].rows, n, threads);
    weightTasks[i] = packed[i] ? parts[i].tasks : (ws[i].rows + chunks[i] - 1) / chunks[i];
    tasks += weightTasks[i];
    work += ws[i].rows * n * ws[i].cols;
  }
  auto task = [&](size_t t) {
    size_t i = 0;
    while (t >= weightTasks[i]) t -= weightTasks[i++];
    if (packed[i]) return runKQuantPackedTask(xk, parts[i], t);
    const size_t r0 = t * chunks[i], r1 = std::min(ws[i].rows, r0 + chunks[i]);
    kquantKernel(ws[i].type)(xk, ws[i].data, MatmulRange{r0, r1, outs[i].data, ws[i].rows});
  };
  if (work < kMinParallelWork) {
    for (size_t t = 0; t < tasks; t++) task(t);
  } else {
    pool().parallelFor(tasks, [&](size_t t) { task(t); });
  }
}

// Q4_1 / Q5_0 / Q5_1 / IQ4_NL weights (they may mix) sharing x: one quantization of x and one pool job of
// row chunks of each weight, as runKQuantMany; results equal matmul's.
void runBlock32Many(const float* x, size_t n, const ArrayArg<float>* outs, const WeightRef* ws, size_t count) {
  ActivationScratch& scratch = activationScratch();
  std::lock_guard<std::mutex> lock(scratch.mutex);
  const QuantizedRows xq = quantizeActivations(scratch, x, n, ws[0].cols);
  size_t chunks[kMaxMany], weightTasks[kMaxMany], tasks = 0, work = 0;
  const int threads = pool().threads();
  for (size_t i = 0; i < count; i++) {
    chunks[i] = rowsPerTask(ws[i].rows, n, threads);
    weightTasks[i] = (ws[i].rows + chunks[i] - 1) / chunks[i];
    tasks += weightTasks[i];
    work += ws[i].rows * n * ws[i].cols;
  }
  auto task = [&](size_t t) {
    size_t i = 0;
    while (t >= weightTasks[i]) t -= weightTasks[i++];
    const size_t r0 = t * chunks[i], r1 = std::min(ws[i].rows, r0 + chunks[i]);
    block32Kernel(ws[i].type)(xq, ws[i].data, MatmulRange{r0, r1, outs[i].data, ws[i].rows});
  };
  if (work < kMinParallelWork) {
    for (size_t t = 0; t < tasks; t++) task(t);
  } else {
    pool().parallelFor(tasks, [&](size_t t) { task(t); });
  }
}

// matmulMany(x, n, out0, w0, out1, w1, ...): several weights with the same input (q/k/v, gate/up).
// Packed weights of one type share one quantization of x and one pool job, so small matrices such as
// K and V no longer each pay a dispatch and a mostly idle second thread; K-quant weights likewise.
Napi::Value MatmulMany(const Napi::CallbackInfo& info) {
  Args args(info, "matmulMany");
  const ArrayArg<float> x = args.float32(0, "x");
  const size_t n = args.index(1, "n", size_t(1) << 31);
  const size_t count = info.Length() >= 2 ? (info.Length() - 2) / 2 : 0;
  if (count == 0 || count > kMaxMany || info.Length() != 2 + 2 * count) {
    args.rangeError("needs 1 to " + std::to_string(kMaxMany) + " (out, weight) pairs after x and n");
  }
  ArrayArg<float> outs[kMaxMany];
  WeightRef ws[kMaxMany];
  for (size_t i = 0; i < count; i++) {
    outs[i] = args.float32(2 + 2 * i, "out");
    ws[i] = weightArg(args, 3 + 2 * i, "weight");
    if (ws[i].cols != ws[0].cols) args.rangeError("weights must have the same number of columns");
    args.requireLength(outs[i], checkedMul(args, n, ws[i].rows, "out size"), "out");
  }
  args.requireLength(x, checkedMul(args, n, ws[0].cols, "x size"), "x");
  if (n == 0) return info.Env().Undefined();
  for (size_t i = 0; i < count; i++) {
    args.requireDisjoint(outs[i], n * ws[i].rows, x, n * ws[i].cols, "out and x");
    for (size_t j = 0; j < i; j++) args.requireDisjoint(outs[i], n * ws[i].rows, outs[j], n * ws[j].rows, "outs");
  }

  PackedPart parts[kMaxMany];
  // On bf16 tiles every packed type runs on one layout of x, whatever the mix.
  bool bf16 = true;
  for (size_t i = 0; i < count && bf16; i++) bf16 = bf16Path(ws[i].type, n) != nullptr && planPacked(ws[i], outs[i].data, n, parts[i]);
  // (Packed Q3_K / Q4_K / Q5_K / Q6_K / IQ4_XS run in the K-quant path below, which takes KQuantRows activations.)
  bool fused = block32Packed(ws[0].type).packed != nullptr;
  for (size_t i = 0; i < count && fused; i++) fused = ws[i].type == ws[0].type && planPacked(ws[i], outs[i].data, n, parts[i]);
  bool kquant = true;
  for (size_t i = 0; i < count && kquant; i++) kquant = kquantKernel(ws[i].type) != nullptr;
  // A packed 32-value weight among other types goes alone (matmul's path), so results still equal matmul's.
  bool block32 = true;
  for (size_t i = 0; i < count && block32; i++) block32 = block32Kernel(ws[i].type) != nullptr && !planPacked(ws[i], outs[i].data, n, parts[i]);
  if (bf16) {
    ActivationScratch& scratch = activationScratch();
    std::lock_guard<std::mutex> lock(scratch.mutex);
    runPackedBF16(scratch, *kernels().bf16, x.data, n, parts, count);
  } else if (fused) {
    ActivationScratch& scratch = activationScratch();
    std::lock_guard<std::mutex> lock(scratch.mutex);
    runPacked(scratch, x.data, n, parts, count);
  } else if (kquant) {
    runKQuantMany(x.data, n, outs, ws, count);
  } else if (block32) {
    runBlock32Many(x.data, n, outs, ws, count);
  } else {
    for (size_t i = 0; i < count; i++) matmulOne(outs[i].data, x.data, n, ws[i]);
  }
  return info.Env().Undefined();
}

// quantizeActivations(x, n, cols, type) -> { q: Int8Array, d: Float32Array, s?: Float32Array }: the
// int8 activations a matmul with a weight of `type` runs on, for tests against llama.cpp's formulas:
// signed quants, a scale per 32 values, and s: for the 256-value super-block types each 16 values' scaled
// sum, for Q4_1 / Q5_1 (Q8_1) each block's s field (QuantizedRows::s).
Napi::Value QuantizeActivations(const Napi::CallbackInfo& info) {
  Args args(info, "quantizeActivations");
  const ArrayArg<float> x = args.float32(0, "x");
  const size_t n = args.index(1, "n", size_t(1) << 31);
  const size_t cols = args.index(2, "cols", size_t(1) << 31);
  const int type = int(args.index(3, "type", 255));
  const bool super = type == kQ2_K || type == kQ3_K || type == kQ4_K || type == kQ5_K || type == kQ6_K || type == kIQ4_XS;
  const bool block32 = type == kQ8_0 || type == kQ4_0 || type == kQ4_1 || type == kQ5_0 || type == kQ5_1 || type == kIQ4_NL;
  if (!super && !block32) args.rangeError("type " + std::to_string(type) + " has no int8 activations");
  const size_t unit = super ? kQKSuper : kQKBlock;
  if (cols == 0 || cols % unit != 0) args.rangeError("cols must be a positive multiple of " + std::to_string(unit));
  args.requireLength(x, checkedMul(args, n, cols, "x size"), "x");
  Napi::Env env = info.Env();
  Napi::Int8Array q = Napi::Int8Array::New(env, n * cols);
  Napi::Float32Array d = Napi::Float32Array::New(env, n * (cols / kQKBlock));
  Napi::Object result = Napi::Object::New(env);
  ActivationScratch& scratch = activationScratch();
  std::lock_guard<std::mutex> lock(scratch.mutex);
  if (super) {
    Napi::Float32Array s = Napi::Float32Array::New(env, n * (cols / 16));
    const KQuantRows xk = kquantActivations(scratch, x.data, n, cols);
    std::copy(xk.q, xk.q + n * cols, q.Data());
    std::copy(xk.d, xk.d + n * (cols / kQKBlock), d.Data());
    std::copy(xk.s, xk.s + n * (cols / 16), s.Data());
    result.Set("s", s);
  } else {
    const QuantizedRows xq = quantizeActivations(scratch, x.data, n, cols);
    for (size_t i = 0; i < n * cols; i++) q.Data()[i] = int8_t(int(xq.q[i]) - 128);
    std::copy(xq.d, xq.d + n * (cols / kQKBlock), d.Data());
    if (type == kQ4_1 || type == kQ5_1) {  // llama.cpp's Q8_1: its s field too
      Napi::Float32Array s = Napi::Float32Array::New(env, n * (cols / kQKBlock));
      std::copy(xq.s, xq.s + n * (cols / kQKBlock), s.Data());
      result.Set("s", s);
    }
  }
  result.Set("q", q);
  result.Set("d", d);
  return result;
}

// prepackWeight(weight): makes the weight's packed copy now, at load, rather than in its first matmul
// (a request's critical path). Returns the packed copy's size in bytes, 0 where the weight runs from
// the file layout.
Napi::Value PrepackWeight(const Napi::CallbackInfo& info) {
  Args args(info, "prepackWeight");
  const WeightRef w = weightArg(args, 0, "weight");
  PackedPart part;
  const bool packed = planPacked(w, nullptr, 1, part);
  const size_t bytes = packed ? (w.rows / kPackRows) * packedGroupBytes(w.type, w.cols) : 0;
  return Napi::Number::New(info.Env(), double(bytes));
}

}  // namespace

void InitMatmul(Napi::Env env, Napi::Object exports) {
  exports.Set("prepackWeight", Napi::Function::New(env, PrepackWeight, "prepackWeight"));
  exports.Set("matmul", Napi::Function::New(env, Matmul, "matmul"));
  exports.Set("quantizeActivations", Napi::Function::New(env, QuantizeActivations, "quantizeActivations"));
  exports.Set("matmulMany", Napi::Function::New(env, MatmulMany, "matmulMany"));
}

}  // namespace vserve
